// [data-copy-from="id"]: a button that copies the value of the field with that id (a
// token shown once, a URL) and says "Copied"; where the clipboard is not available (plain
// HTTP), it selects the text for Ctrl+C / ⌘C instead.
(function () {
  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-copy-from]");
    if (!button) return;
    const field = document.getElementById(button.dataset.copyFrom);
    if (!field) return;
    const said = button.textContent;
    const done = function (word) {
      button.textContent = word;
      setTimeout(function () { button.textContent = said; }, 2000);
    };
    field.focus();
    field.select();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(
        function () { done("Copied"); },
        function () { done("Press Ctrl+C"); });
    } else {
      done("Press Ctrl+C");
    }
  });
})();
