// The launch arrived without our cookie (third-party cookies blocked): find the browser binding in
// sessionStorage or Platform Storage and post the launch again with it.
(async function () {
  const box = document.querySelector("[data-lti-launch]");
  if (!box) return;
  const d = box.dataset;
  const form = document.querySelector("[data-lti-launch-form]");
  let binding = null;
  try { binding = sessionStorage.getItem(d.key); } catch (e) { /* storage blocked */ }
  if (!binding && d.storageTarget && window.StudyShelfLtiStorage) {
    binding = await window.StudyShelfLtiStorage.get(d.storageTarget, d.storageOrigin, d.key);
  }
  if (!binding) {
    document.querySelector("[data-lti-blocked]").hidden = false;
    return;
  }
  form.elements.binding.value = binding;
  form.submit();
})();
