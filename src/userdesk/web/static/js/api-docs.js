// Starts Swagger UI on /api/v1/docs (a static file: the Content-Security-Policy allows no
// inline script). Swagger UI's validator badge would load an image from elsewhere: off.
//
// Swagger UI's markup (vendored, not ours) is then mended for screen readers and keyboards
// each time it draws (an operation opened, "Try it out", the Authorize dialog): the colors
// are mended in /static/css/api-docs.css, the rest here, by accessible().
(function () {
  "use strict";

  // A control's name where Swagger UI gives it none: a parameter's value is named by the
  // parameter, the other controls by what they choose.
  function nameOf(control) {
    var row = control.closest("tr[data-param-name]");
    if (row) return row.getAttribute("data-param-name");
    if (control.closest(".body-param-content-type, .opblock-section-request-body")) {
      return control.tagName === "SELECT" ? "Request body media type" : "Request body";
    }
    if (control.closest(".response-control-media-type, .responses-inner")) {
      return "Response media type";
    }
    if (control.closest(".servers")) return "Server";
    var label = control.closest("label");
    return label ? label.textContent.trim() : control.getAttribute("placeholder") || "Value";
  }

  function named(control) {
    return Boolean(
      control.getAttribute("aria-label") ||
        control.getAttribute("aria-labelledby") ||
        (control.id && document.querySelector('label[for="' + CSS.escape(control.id) + '"]')) ||
        control.closest("label")
    );
  }

  // Idempotent: run after every change of the page, it only adds what is missing.
  function accessible(root) {
    // An operation's summary is one button (it opens the operation); the link inside it to
    // the operation's own address made a control within a control. The address still
    // follows the opened operation (deepLinking), the link itself is no longer focusable.
    root.querySelectorAll(".opblock-summary-control a[href]").forEach(function (link) {
      link.removeAttribute("href");
    });
    root.querySelectorAll("select, input:not([type=hidden]), textarea").forEach(function (control) {
      if (!named(control)) control.setAttribute("aria-label", nameOf(control));
    });
    root.querySelectorAll("button.close-modal:not([aria-label])").forEach(function (button) {
      button.setAttribute("aria-label", "Close");
    });
    // The dialog's submit button reads "Authorize" and was named "Apply credentials": what
    // is read out now begins with what is seen.
    root.querySelectorAll("button.modal-btn[aria-label]").forEach(function (button) {
      var text = button.textContent.trim();
      var name = button.getAttribute("aria-label");
      if (text && name.indexOf(text) !== 0) button.setAttribute("aria-label", text + ": " + name.toLowerCase());
    });
    // Code that scrolls sideways can be reached by the keyboard to be scrolled.
    root.querySelectorAll("pre.microlight:not([tabindex]), .highlight-code pre:not([tabindex])").forEach(
      function (code) {
        code.setAttribute("tabindex", "0");
      }
    );
    // Headings in order under the page's title (Swagger UI skips from h1 to h3): a tag,
    // the schemas and the dialog's title at level 2, the sections within them at level 3.
    var levels = [
      ["h3.opblock-tag, section.models > h4, .modal-ux-header > h3", "2"],
      [".opblock h4, .modal-ux-content h4", "3"],
      [".opblock h5", "4"],
    ];
    levels.forEach(function (level) {
      root.querySelectorAll(level[0]).forEach(function (heading) {
        if (heading.getAttribute("aria-level") !== level[1]) {
          heading.setAttribute("role", "heading");
          heading.setAttribute("aria-level", level[1]);
        }
      });
    });
    // Swagger UI's title and its Authorize button are the page's header (its operations
    // are in its own <main>); its dialog is a dialog.
    root.querySelectorAll(".information-container:not([role])").forEach(function (header) {
      header.setAttribute("role", "banner");
    });
    root.querySelectorAll(".scheme-container:not([role])").forEach(function (tools) {
      tools.setAttribute("role", "region");
      tools.setAttribute("aria-label", "Authorization");
    });
    // An operation's responses: those it may answer, and the one it answered when tried.
    root.querySelectorAll("table.responses-table[role=region]:not([aria-label])").forEach(
      function (table) {
        var live = table.classList.contains("live-responses-table");
        var operation = table.closest(".opblock");
        var method = operation && operation.querySelector(".opblock-summary-method");
        var path = operation && operation.querySelector(".opblock-summary-path");
        var of = method && path ? " of " + method.textContent + " " + path.dataset.path : "";
        table.setAttribute("aria-label", (live ? "Server response" : "Responses") + of);
      }
    );
    root.querySelectorAll(".dialog-ux .modal-ux:not([role])").forEach(function (dialog) {
      dialog.setAttribute("role", "dialog");
      dialog.setAttribute("aria-modal", "true");
      var title = dialog.querySelector(".modal-ux-header h3");
      if (title) dialog.setAttribute("aria-label", title.textContent.trim());
    });
  }

  window.addEventListener("DOMContentLoaded", function () {
    var root = document.getElementById("swagger-ui");
    new MutationObserver(function () {
      accessible(root);
      // Drawn (or its failure to load said): no longer busy.
      if (root.querySelector(".information-container, .errors-wrapper")) {
        root.removeAttribute("aria-busy");
      }
    }).observe(root, { childList: true, subtree: true });
    window.ui = SwaggerUIBundle({
      url: root.dataset.openapiUrl,
      dom_id: "#swagger-ui",
      deepLinking: true,
      validatorUrl: null,
      presets: [SwaggerUIBundle.presets.apis],
      layout: "BaseLayout",
    });
  });
})();
