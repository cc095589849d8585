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

// Keyboard (task 20B):
// - "/" focuses the page's search box (input[type=search], or the first field of a
//   form with role="search"), unless focus is in a text field already or a dialog is
//   open; the box says so to screen readers (aria-keyshortcuts).
// - Escape closes an open <details> that holds the focus (a confirmation folded under
//   its <summary>) and puts the focus back on its summary. Tabler's modals and menus
//   (Bootstrap's) close on Escape and give the focus back themselves; Tab and Shift+Tab
//   go round an open dialog (keepInDialog).
(function () {
  "use strict";
  const TYPED = /^(text|search|email|password|number|tel|url|date|datetime-local|month|time|week)$/;
  function typingIn(el) {
    if (!el) return false;
    if (el.isContentEditable || el.tagName === "TEXTAREA" || el.tagName === "SELECT") return true;
    return el.tagName === "INPUT" && TYPED.test(el.type || "text");
  }
  function shown(el) { return el.getClientRects().length > 0 && !el.disabled; }
  const SEARCH = 'input[type="search"], [role="search"] input:not([type="hidden"])';
  function searchBox() {
    return Array.from(document.querySelectorAll(SEARCH)).find(shown);
  }
  function markShortcut() {
    const box = searchBox();
    if (box) box.setAttribute("aria-keyshortcuts", "/");
  }
  const FOCUSABLE = 'a[href], button:not([disabled]), input:not([disabled]):not([type="hidden"]), ' +
    'select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';
  // Bootstrap's focus trap takes the focus back only when it lands elsewhere in the page:
  // Tab from a dialog's last control (or Shift+Tab from its first) would leave the page
  // for the browser's own bar. Here it goes round the dialog instead.
  function keepInDialog(event) {
    const dialog = document.querySelector(".modal.show, dialog[open]");
    if (!dialog) return;
    const stops = Array.from(dialog.querySelectorAll(FOCUSABLE)).filter(shown);
    if (!stops.length) return;
    const first = stops[0], last = stops[stops.length - 1];
    const at = document.activeElement;
    const outside = !dialog.contains(at) || at === dialog;
    if (event.shiftKey && (at === first || outside)) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && (at === last || outside)) {
      event.preventDefault();
      first.focus();
    }
  }
  document.addEventListener("keydown", function (event) {
    if (event.key === "Tab") { keepInDialog(event); return; }
    if (event.key === "Escape") {
      const open = event.target.closest && event.target.closest("details[open]");
      if (!open || event.defaultPrevented) return;
      open.open = false;
      const summary = open.querySelector("summary");
      if (summary) summary.focus();
      return;
    }
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.defaultPrevented || typingIn(document.activeElement)) return;
    if (document.querySelector(".modal.show, dialog[open]")) return;
    const box = searchBox();
    if (!box) return;
    event.preventDefault();
    box.focus();
    box.select();
  });
  document.addEventListener("htmx:load", markShortcut);
  document.addEventListener("DOMContentLoaded", markShortcut);

  // A dialog, once open, has the focus on its first field (the first one in error, when
  // the server sent it back): a card marked [data-dialog] that a page opens with (the user
  // page's Disable, Ban, Delete ...), and Bootstrap's modals as they are shown.
  const FIELD = 'input:not([type="hidden"]):not([disabled]):not([readonly]), ' +
    'select:not([disabled]), textarea:not([disabled])';
  function focusFirstField(dialog) {
    const fields = Array.from(dialog.querySelectorAll(FIELD)).filter(shown);
    const field = fields.find(function (el) { return el.classList.contains("is-invalid"); }) ||
      fields[0];
    if (field) field.focus();
    return !!field;
  }
  function focusOpenDialog(root) {
    const dialog = root.querySelector ? root.querySelector("[data-dialog]") : null;
    if (dialog) focusFirstField(dialog);
  }
  document.addEventListener("DOMContentLoaded", function () { focusOpenDialog(document); });
  document.addEventListener("htmx:load", function (event) {
    if (event.detail.elt !== document.body) focusOpenDialog(event.detail.elt);
  });
  document.addEventListener("shown.bs.modal", function (event) { focusFirstField(event.target); });
})();

// Times (task 20A): each <time datetime> the console writes (in UTC, or in the admin's
// time zone where known: data-tz) shown in the browser's time zone, "3 hours ago" beside it
// (the title, or the text where data-relative says so) and kept current each minute.
(function () {
  const UNITS = [["year", 31536000], ["day", 86400], ["hour", 3600], ["minute", 60]];
  function relative(date, now) {
    let seconds = (now - date) / 1000;
    const future = seconds < 0;
    seconds = Math.abs(seconds);
    for (const [unit, size] of UNITS) {
      if (seconds >= size) {
        const n = Math.floor(seconds / size);
        const words = n + " " + unit + (n === 1 ? "" : "s");
        return future ? "in " + words : words + " ago";
      }
    }
    return "just now";
  }
  function absolute(date, zone) {
    const options = {
      year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
      hourCycle: "h23", timeZoneName: "short",
    };
    if (zone) options.timeZone = zone;
    let parts;
    try {
      parts = new Intl.DateTimeFormat("en-GB", options).formatToParts(date);
    } catch (error) {
      return null;  // an unknown zone: the server's words stay
    }
    const part = {};
    parts.forEach(function (p) { part[p.type] = p.value; });
    return part.year + "-" + part.month + "-" + part.day + " " + part.hour + ":" + part.minute +
      " " + part.timeZoneName;
  }
  function rewrite(root) {
    const now = Date.now();
    const found = root.querySelectorAll ? root.querySelectorAll("time[datetime]") : [];
    const times = root.matches && root.matches("time[datetime]") ? [root] : Array.from(found);
    times.forEach(function (el) {
      const date = new Date(el.getAttribute("datetime"));
      if (isNaN(date)) return;
      const shown = absolute(date, el.dataset.tz);
      if (shown === null) return;
      const ago = relative(date, now);
      if (el.hasAttribute("data-relative")) {
        el.textContent = ago;
        el.title = shown;
      } else {
        el.textContent = shown;
        el.title = ago;
      }
    });
  }
  document.addEventListener("htmx:load", function (event) { rewrite(event.detail.elt); });
  document.addEventListener("DOMContentLoaded", function () {
    rewrite(document);
    setInterval(function () { rewrite(document); }, 60000);
  });
})();
