// LTI Platform Storage (postMessage to the frame the LMS names), shared by the login and launch pages.

function target(name) {
  if (!name || name === "_parent") return window.parent;
  try { return window.parent.frames[name] || window.parent; } catch (e) { return window.parent; }
}

// Resolves with the response to `message`, or null after `ms` (or when the frame answers an error).
function ask(frame, message, origin, ms) {
  return new Promise((resolve) => {
    const id = "ss-" + Math.random().toString(36).slice(2);
    const timer = setTimeout(() => { window.removeEventListener("message", listen); resolve(null); }, ms);
    function listen(event) {
      const data = event.data || {};
      if (data.message_id !== id || data.subject !== message.subject + ".response") return;
      if (origin !== "*" && event.origin !== origin) return;
      clearTimeout(timer);
      window.removeEventListener("message", listen);
      resolve(data.error ? null : data);
    }
    window.addEventListener("message", listen);
    frame.postMessage(Object.assign({ message_id: id }, message), origin);
  });
}

// Confirm the platform really offers a message before trusting lti_storage_target (mobile apps lie).
async function supports(name, subject) {
  if (window.parent === window) return false;
  const answer = await ask(target(name), { subject: "lti.capabilities" }, "*", 1000);
  return Boolean(answer && (answer.supported_messages || []).some((m) => m.subject === subject));
}

export async function put(name, origin, key, value) {
  if (!(await supports(name, "lti.put_data"))) return false;
  return Boolean(await ask(target(name), { subject: "lti.put_data", key, value }, origin, 1500));
}

export async function get(name, origin, key) {
  if (!(await supports(name, "lti.get_data"))) return null;
  const answer = await ask(target(name), { subject: "lti.get_data", key }, origin, 1500);
  return answer && typeof answer.value === "string" ? answer.value : null;
}
