"""Every console and portal page, at 1,280 and 1,440 pixels wide, in Chromium: nothing wider
than the window, no text spilling out of a button or a badge, no console error, no Content
Security Policy violation, no request that fails; and axe-core (from the npm registry, in
node_modules/ after `make setup`) finds no serious or critical accessibility violation, in
light at 1,280 and in dark at 1,440 (the admin on the "system" color scheme, Chromium's set
dark: the device's scheme, as /static/js/color-scheme.js applies it). A screenshot of each
is kept in var/screenshots/ for a person to look through, the dark ones named
"1440-dark-..."."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Request, Response
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.browser.conftest import LiveServer, served_demo
from tests.browser.every_page import SCREENSHOTS, Target, real_ids, targets

HEIGHT = 900
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
# axe-core's findings of these impacts fail the walk; it judges every page (Swagger UI's
# markup on /api/v1/docs too, mended by /static/js/api-docs.js and /static/css/api-docs.css).
AXE_IMPACTS = ("serious", "critical")


@dataclass(frozen=True)
class Look:
    """How the pages are looked at: a window's width, light or dark, whether axe judges."""

    width: int
    scheme: Literal["light", "dark"]
    axe: bool

    @property
    def name(self) -> str:
        return f"{self.width}{'-dark' if self.scheme == 'dark' else ''}"


# Each width once and each scheme once: a page's layout does not change with its colors,
# and a third walk (1,440 light) would add two minutes to the suite for nothing new.
LOOKS = (
    Look(1280, "light", axe=True),
    Look(1440, "dark", axe=True),
)

AXE_RUN = """(impacts) => axe.run(document, {resultTypes: ['violations']}).then((found) =>
  found.violations.filter((v) => impacts.includes(v.impact)).map((v) =>
    `axe ${v.impact} ${v.id}: ${v.help} — ` +
    v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')))"""

# Run in each page once it has settled: what spills sideways, and which buttons or badges
# hold more text than they show.
MEASURE = """() => {
  const spilling = [];
  for (const el of document.querySelectorAll('button, .btn, .badge')) {
    if (!el.getClientRects().length) continue;  // not shown
    if (el.scrollWidth > el.clientWidth + 1) {
      spilling.push(`${el.tagName.toLowerCase()} "${el.textContent.trim().slice(0, 40)}" ` +
                    `${el.scrollWidth} > ${el.clientWidth}`);
    }
  }
  const wide = [];
  if (document.documentElement.scrollWidth > window.innerWidth) {
    for (const el of document.body.querySelectorAll('*')) {
      const box = el.getBoundingClientRect();
      if (box.right > window.innerWidth + 1 && box.width > 0) {
        wide.push(`${el.tagName.toLowerCase()}.${[...el.classList].join('.')} ` +
                  `right at ${Math.round(box.right)}`);
      }
    }
  }
  const root = document.documentElement;
  return {scrollWidth: root.scrollWidth, innerWidth: window.innerWidth,
          spilling, wide: wide.slice(0, 5), violations: window.__cspViolations || [],
          scheme: root.dataset.colorScheme || null, theme: root.getAttribute('data-bs-theme')};
}"""

# Still drawing: htmx's requests, or a part that says it is busy (aria-busy: Swagger UI on
# /api/v1/docs until its document is drawn).
DRAWING = ".htmx-request, .htmx-settling, .htmx-swapping, [aria-busy='true']"
SETTLED = f"""() => !document.querySelector("{DRAWING}")"""
# Swagger UI parses 1.4 MB of script and draws a hundred operations: on a busy machine
# more than the 10 s a page's load is given (a settled page goes on at once).
SETTLE_WITHIN = 30_000  # ms
BUSY = f"""() => [...document.querySelectorAll("{DRAWING}")]
  .map((el) => el.outerHTML.slice(0, 200))"""

WATCH_CSP = """document.addEventListener('securitypolicyviolation', (e) => {
  (window.__cspViolations = window.__cspViolations || []).push(
    `${e.violatedDirective} blocked ${e.blockedURI || 'inline'}`);
});"""


@dataclass(frozen=True)
class Walk:
    live: LiveServer
    app: FastAPI
    pages: list[Target]
    # Where each page ends for each visitor (_page_at), the same at every look: asked once.
    finals: dict[tuple[str, str], str | None] = field(default_factory=dict)


@pytest.fixture(scope="module")
def walk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Walk]:
    """The app served by uvicorn on its own demo organization, with one thing of each kind
    a page shows (a segment, an import, a webhook and its message, an invitation)."""
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)  # this run's pages alone
    with served_demo(tmp_path_factory.mktemp("every-page"), seed=5) as served:
        ids = real_ids(served.live, served.settings)
        yield Walk(served.live, served.app, targets(served.app, ids))


def _context(browser: Browser, look: Look) -> BrowserContext:
    return browser.new_context(
        viewport={"width": look.width, "height": HEIGHT}, color_scheme=look.scheme
    )


def _signed_in(browser: Browser, walk: Walk, look: Look) -> BrowserContext:
    context = _context(browser, look)
    tab = context.new_page()
    tab.goto(f"{walk.live.url}/login")
    tab.get_by_label("Email address").fill(walk.live.admin_email)
    tab.get_by_label("Password").fill(walk.live.admin_password)
    tab.get_by_role("button", name="Sign in").click()
    tab.wait_for_url(f"{walk.live.url}/console/users")
    tab.close()
    return context


def _page_at(context: BrowserContext, url: str) -> str | None:
    """The URL where URL ends once redirected, if it is a whole HTML page (not an htmx
    partial, a file or JSON)."""
    answer = context.request.get(url, max_redirects=5)
    kind = answer.headers.get("content-type", "")
    whole = kind.startswith("text/html") and "<html" in answer.text()[:500].lower()
    return answer.url if whole else None


def _check(context: BrowserContext, walk: Walk, target: Target, look: Look, who: str) -> list[str]:
    """What is wrong with TARGET as LOOK sees it, each as a line naming the page."""
    problems: list[str] = []
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    tab.add_init_script(WATCH_CSP)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and not (target.expect_error and "status of 4" in message.text):
            problems.append(f"console error: {message.text}")

    def on_failed(request: Request) -> None:
        problems.append(f"request failed: {request.url} ({request.failure})")

    def on_response(response: Response) -> None:
        main = response.request.is_navigation_request()
        if response.status >= 400 and not (main and target.expect_error):
            problems.append(f"{response.status} for {response.url}")

    tab.on("console", on_console)
    tab.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    tab.on("requestfailed", on_failed)
    tab.on("response", on_response)
    tab.goto(walk.live.url + target.url)
    # Loaded, and htmx's requests of the load (counts, charts) answered and swapped in:
    # sooner than "networkidle", which waits half a second more on every page.
    tab.wait_for_load_state("load")
    try:
        tab.wait_for_function(SETTLED, timeout=SETTLE_WITHIN)
    except PlaywrightTimeout:  # named with its page, not a bare timeout of the walk
        busy = tab.evaluate(BUSY)
        tab.close()
        return [f"{target.url} at {look.name} ({who}): htmx never settled: {busy}"]
    measured: dict[str, Any] = tab.evaluate(MEASURE)
    if look.axe:
        tab.evaluate(AXE.read_text())  # through the DevTools protocol: the CSP allows it
        problems += tab.evaluate(AXE_RUN, list(AXE_IMPACTS))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=SCREENSHOTS / f"{look.name}-{who}-{target.slug}.png", full_page=True)
    tab.close()
    if measured["scrollWidth"] > measured["innerWidth"]:
        problems.append(
            f"scrolls sideways: {measured['scrollWidth']} px wide in {measured['innerWidth']}"
            f" ({'; '.join(measured['wide'])})"
        )
    problems += [f"text spills out of {spill}" for spill in measured["spilling"]]
    problems += [f"CSP violation: {v}" for v in measured["violations"]]
    # Our pages (not Swagger UI's) are drawn in the scheme looked at: the check above
    # judged that scheme, not the other.
    if measured["scheme"] is not None and measured["theme"] != look.scheme:
        problems.append(f"drawn {measured['theme']} where the device is {look.scheme}")
    return [f"{target.url} at {look.name} ({who}): {problem}" for problem in problems]


@pytest.mark.parametrize("look", LOOKS, ids=[look.name for look in LOOKS])
def test_every_page_fits_the_window_loads_cleanly_and_reads_to_everyone(
    browser: Browser, walk: Walk, look: Look
) -> None:
    """Each console and portal page, signed in as the administrator and then signed out,
    holds in the window, loads without an error of any kind and, where axe-core looks,
    has no serious or critical accessibility violation."""
    if look.axe and not AXE.exists():
        pytest.fail(f"axe-core is not at {AXE}: run `make setup` (npm ci).")
    problems: list[str] = []
    seen: set[str] = set()
    signed_in = _signed_in(browser, walk, look)
    signed_out = _context(browser, look)
    for who, context in (("admin", signed_in), ("anonymous", signed_out)):
        for target in walk.pages:
            if (who, target.url) not in walk.finals:
                walk.finals[who, target.url] = _page_at(context, walk.live.url + target.url)
            final = walk.finals[who, target.url]
            if final is None:
                continue
            # A page sent elsewhere (signed out: to sign in) is that page, walked once.
            if urlsplit(final).path != urlsplit(target.url).path:
                final = urlsplit(final).path
            if f"{who} {final}" in seen:
                continue
            seen.add(f"{who} {final}")
            problems += _check(context, walk, target, look, who)
    signed_in.close()
    signed_out.close()
    walked = {t.route for t in walk.pages}
    assert {"/console/users", "/console/users/{user_id}", "/me", "/login", "/api/v1/docs"} <= walked
    assert problems == [], "\n".join(problems)


def test_the_site_has_an_icon_where_browsers_look_for_it(browser: Browser, walk: Walk) -> None:
    """/favicon.ico answers an icon, not a 404 in every browser's console."""
    context = browser.new_context()
    answer = context.request.get(f"{walk.live.url}/favicon.ico")
    assert answer.status == 200
    assert answer.headers["content-type"] in ("image/x-icon", "image/vnd.microsoft.icon")
    assert answer.body()[:4] == b"\x00\x00\x01\x00"  # the ICO header
    context.close()
