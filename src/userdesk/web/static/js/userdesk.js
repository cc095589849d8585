// Behaviour the pages would otherwise write inline (the Content-Security-Policy allows
// scripts from this site only, and no eval):
// - [data-remove-after="ms"] removes itself after that many milliseconds (toasts).
// - [data-needs-selection] (a submit button of a form) is disabled while none of the
//   form's checkboxes is ticked (the server refuses an empty selection too).
// - [data-row-menu="key"] (a row's action menu in the Users list) is filled from the
//   <template data-row-menu-of="key"> the page sends once per distinct menu, {id} in
//   its links and forms becoming the row's user.
(function () {
  "use strict";
  function within(root, selector) {
    const found = Array.from(root.querySelectorAll ? root.querySelectorAll(selector) : []);
    if (root.matches && root.matches(selector)) found.push(root);
    return found;
  }
  function selectionChanged(form) {
    const ticked = form.elements && Array.from(form.elements).some(function (el) {
      return el.type === "checkbox" && el.checked;
    });
    form.querySelectorAll("[data-needs-selection]").forEach(function (button) {
      button.disabled = !ticked;
    });
  }
  function fillRowMenu(menu) {
    if (menu.childElementCount) return;
    const key = menu.dataset.rowMenu;
    const template = Array.from(document.querySelectorAll("template[data-row-menu-of]")).find(
      function (t) { return t.dataset.rowMenuOf === key; });
    const row = menu.closest("[data-user-id]");
    if (!template || !row) return;
    const items = template.content.cloneNode(true);
    items.querySelectorAll("[href], [action]").forEach(function (el) {
      ["href", "action"].forEach(function (name) {
        const value = el.getAttribute(name);
        if (value !== null) el.setAttribute(name, value.split("{id}").join(row.dataset.userId));
      });
    });
    menu.appendChild(items);
  }
  function init(root) {
    within(root, "[data-row-menu]").forEach(fillRowMenu);
    within(root, "[data-needs-selection]").forEach(function (button) {
      if (button.form) selectionChanged(button.form);
    });
    within(root, "[data-remove-after]").forEach(function (el) {
      if (el.dataset.removeArmed) return;
      el.dataset.removeArmed = "1";
      setTimeout(function () { el.remove(); }, Number(el.dataset.removeAfter) || 4000);
    });
  }
  document.addEventListener("change", function (event) {
    const box = event.target;
    if (box.type === "checkbox" && box.form) selectionChanged(box.form);
  });
  document.addEventListener("htmx:load", function (event) { init(event.detail.elt); });
  document.addEventListener("DOMContentLoaded", function () { init(document); });
})();
