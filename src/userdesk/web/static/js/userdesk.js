// Behaviour the pages would otherwise write inline (the Content-Security-Policy allows
// scripts from this site only, and no eval):
// - [data-remove-after="ms"] removes itself after that many milliseconds (toasts).
(function () {
  "use strict";
  function within(root, selector) {
    const found = Array.from(root.querySelectorAll ? root.querySelectorAll(selector) : []);
    if (root.matches && root.matches(selector)) found.push(root);
    return found;
  }
  function init(root) {
    within(root, "[data-remove-after]").forEach(function (el) {
      if (el.dataset.removeArmed) return;
      el.dataset.removeArmed = "1";
      setTimeout(function () { el.remove(); }, Number(el.dataset.removeAfter) || 4000);
    });
  }
  document.addEventListener("htmx:load", function (event) { init(event.detail.elt); });
  document.addEventListener("DOMContentLoaded", function () { init(document); });
})();
