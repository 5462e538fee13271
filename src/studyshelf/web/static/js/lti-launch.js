// The launch arrived without our cookie (third-party cookies blocked): find the browser binding in
// sessionStorage or Platform Storage and post the launch again with it. When there is none, post anyway
// saying whether this frame's storage could be read at all, so StudyShelf can tell a launch started in
// another browser (not verifiable) from a browser that blocks the storage.
import * as platformStorage from "./lti-storage.js";

async function relaunch(box) {
  const d = box.dataset;
  const form = document.querySelector("[data-lti-launch-form]");
  let binding = null;
  let readable = true;
  try { binding = sessionStorage.getItem(d.key); } catch (e) { readable = false; }
  if (!binding && d.storageTarget) {
    binding = await platformStorage.get(d.storageTarget, d.storageOrigin, d.key);
  }
  form.elements.checked.value = "1";
  if (binding) {
    form.elements.binding.value = binding;
  } else {
    form.elements.storage.value = readable ? "available" : "blocked";
  }
  form.submit();
}

const box = document.querySelector("[data-lti-launch]");
if (box) relaunch(box);
