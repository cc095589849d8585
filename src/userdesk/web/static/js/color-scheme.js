// The system's color scheme for a page whose person chose "System" (or who is not signed
// in): <html data-color-scheme="system"> gets Tabler's data-bs-theme="dark" or "light"
// from prefers-color-scheme, and again when the system changes it. Loaded without defer
// in <head>, before the body is drawn, so that a dark page never flashes light; a choice
// of light or dark is written on <html> by the server and needs no script.
(function () {
  "use strict";
  var root = document.documentElement;
  if (root.getAttribute("data-color-scheme") !== "system" || !window.matchMedia) return;
  var dark = window.matchMedia("(prefers-color-scheme: dark)");
  function apply() { root.setAttribute("data-bs-theme", dark.matches ? "dark" : "light"); }
  apply();
  if (dark.addEventListener) dark.addEventListener("change", apply);
})();
