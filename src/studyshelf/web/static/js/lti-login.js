// Step 2 of the LTI login: keep the browser binding where the launch can find it again (LTI Platform
// Storage, sessionStorage, and the cookie the server set), then go to the platform's auth endpoint.
// When none of them works inside the LMS frame, offer to open the material in a new window.
import * as platformStorage from "./lti-storage.js";

function cookieWorks(secure) {
  // The same attributes as the server's cookie: if this one sticks in the frame, that one did too.
  const probe = "studyshelf_lti_probe=1; path=/lti/; max-age=60; " + (secure ? "SameSite=None; Secure" : "SameSite=Lax");
  try {
    document.cookie = probe;
    return document.cookie.indexOf("studyshelf_lti_probe=1") !== -1;
  } catch (e) {
    return false;
  }
}

async function keepBindingThenLogIn(box) {
  const d = box.dataset;
  let kept = false;
  if (d.storageTarget) {
    kept = await platformStorage.put(d.storageTarget, d.storageOrigin, d.key, d.binding);
  }
  try {
    sessionStorage.setItem(d.key, d.binding);
    kept = true;
  } catch (e) {
    /* storage blocked in this frame */
  }
  if (!kept && !cookieWorks(d.secure)) {
    document.querySelector("[data-lti-blocked]").hidden = false;
    document.querySelector("[data-lti-status]").textContent = d.blockedTitle;  // translated by the template
    return;
  }
  window.location.replace(d.authUrl);
}

const box = document.querySelector("[data-lti-login]");
if (box) keepBindingThenLogIn(box);
