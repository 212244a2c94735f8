"""The built website as a reader meets it: every page loaded in headless Chromium, with no network.

Run after the book is built (CI does):

    jupyter-book build . -W -n --keep-going
    python -m pytest -m browser            # the site in _build/html, or LVM_SITE=path/to/html

These tests are deselected from the plain ``python -m pytest`` (they need a built site and a browser);
selected with ``-m browser``, a missing site or browser is a failure, not a skip. Each page is checked at a
desktop (1280 px) and a phone (412 px) width, with every folded solution opened, and a full-page screenshot
of the desktop view goes to ``_build/screenshots/`` (and of the phone view to ``_build/screenshots/phone/``).

Readable on every screen (issue 14): every figure's smallest text is at least 9 CSS px where the page shows
it at 1280 px (measured from the record ``lvm.plot`` writes into each PNG: font size and dpi against the
displayed width) and opens full size when clicked; no legend or title holds a tensor or array repr; no display
equation, output or code block is wider than its box at 1280 px; at 412 px an equation that scrolls shows its
scrollbar and no equation number overlaps its equation; no punctuation mark wraps onto a line of its own after
inline maths; a folded solution opens when its title is clicked; and an axe-core audit of every page of both
editions finds no serious or critical violation.
"""

from __future__ import annotations

import functools
import http.server
import io
import json
import os
import re
import shutil
import threading
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin, urlparse

import pytest
import yaml
from PIL import Image

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
SITE = Path(os.environ.get("LVM_SITE", ROOT / "_build" / "html")).resolve()
SCREENSHOTS = Path(os.environ.get("LVM_SCREENSHOTS", ROOT / "_build" / "screenshots"))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
WIDTHS = {"desktop": 1280, "phone": 412}
STUDENT_SITE = Path(os.environ.get("LVM_STUDENT_SITE", ROOT / "_build" / "student" / "_build" / "html")).resolve()
# axe-core, from npm (.ci/run installs it with `npm install`): served to each page by the test itself.
AXE = Path(os.environ.get("LVM_AXE", ROOT / "node_modules" / "axe-core" / "axe.min.js"))
MIN_TEXT_PX = 9.0
# A tensor's or an array's printed form: what a label made from the wrong variable shows.
REPR = re.compile(r"tensor\(|array\(|Parameter containing|dtype=|\[\s*-?\d+\.\d+(e[-+]\d+)?,\s+-?\d")
# What TeX left on a page looks like when MathJax did not typeset it.
RAW_TEX = re.compile(r"\$\$|\\frac|\\begin\{|\\bm\{|\\underbrace|\\mathcal|\\sum_|\\int_|\\left[(|\[]")
COLAB = re.compile(r"^https://colab\.research\.google\.com/github/([\w.-]+)/([\w.-]+)/blob/([\w./-]+?)/"
                   r"(book/[\w.-]+\.ipynb)$")


def toc_pages() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    pages = [toc["root"]]
    for part in toc.get("parts", []):
        pages += [chapter["file"] for chapter in part.get("chapters", [])]
    return pages


PAGES = toc_pages()


def plotting_cells(page: str) -> int:
    """Code cells of a chapter that draw a figure (they call ``plt.show()``): each must show an image."""
    path = ROOT / f"{page}.ipynb"
    if not path.exists():
        return 0
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return sum("plt.show()" in "".join(c["source"]) for c in cells if c["cell_type"] == "code")


def serve(site: Path, hint: str):
    if not (site / "index.html").exists():
        pytest.fail(f"no built site at {site}: {hint}")
    handler = functools.partial(QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}/"


@pytest.fixture(scope="module")
def server():
    httpd, url = serve(SITE, "run `jupyter-book build .` first (or set LVM_SITE)")
    yield url
    httpd.shutdown()


@pytest.fixture(scope="module")
def student_server():
    httpd, url = serve(STUDENT_SITE, "CI builds the student edition first (or set LVM_STUDENT_SITE)")
    yield url
    httpd.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # the test reports what matters; the access log is noise
        pass


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright  # a test dependency: missing, the test errors

    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: apt-get install chromium (CI does)")
    with sync_playwright() as p:
        # No background traffic: every request a page makes is one the page asked for.
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic"])
        yield browser
        browser.close()


class PageVisit:
    """One page loaded at one width, with every request and console message it produced."""

    def __init__(self, browser, url: str, width: int):
        self.context = browser.new_context(viewport={"width": width, "height": 900})
        self.page = self.context.new_page()
        self.outside: list[str] = []
        self.console_errors: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.console_errors.append(m.text))
        self.page.on("pageerror", lambda e: self.console_errors.append(str(e)))
        self.page.route("**/*", self._only_local)
        self.page.goto(url, wait_until="load")
        self.page.wait_for_load_state("networkidle")
        self.shown_answers = self.page.evaluate(SHOWN_ANSWERS_JS)  # before a student clicks anything
        self.open_folds()
        self.wait_for_maths()

    def _only_local(self, route):
        host = urlparse(route.request.url).hostname
        if host == "127.0.0.1" or route.request.url.startswith(("data:", "blob:", "about:")):
            route.continue_()
        else:
            self.outside.append(route.request.url)
            route.abort()

    def open_folds(self):
        # Folded solutions and hidden code are sphinx-togglebutton toggles or <details>: open them all, as a
        # student who clicks every "Show solution" would.
        self.page.evaluate("""() => {
            document.querySelectorAll('details').forEach(d => d.open = true);
            document.querySelectorAll('button.toggle-button').forEach(b => {
                if (b.getAttribute('aria-expanded') !== 'true') b.click();
            });
            document.querySelectorAll('.toggle-hidden').forEach(e => e.classList.remove('toggle-hidden'));
        }""")
        # An opening fold fades in: text measured mid-fade has a fraction of its contrast, which made the axe
        # audit fail at random. Measure what the student sees once the folds are open.
        # (A looping animation never finishes: wait for it at most 5 s.)
        self.page.evaluate("""() => Promise.race([
            Promise.all(document.getAnimations().map(a => a.finished.catch(() => null))),
            new Promise(done => setTimeout(done, 5000))])""")

    def wait_for_maths(self):
        self.page.evaluate("""async () => {
            if (!window.MathJax || !MathJax.startup) return;
            await MathJax.startup.promise;
            if (MathJax.typesetPromise) await MathJax.typesetPromise();
        }""")

    def close(self):
        self.context.close()


@pytest.fixture(scope="module")
def visits(server, browser):
    """Every page at every width, loaded once; desktop screenshots saved on the way."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    loaded = {}
    for page_name in PAGES:
        for label, width in WIDTHS.items():
            visit = PageVisit(browser, urljoin(server, f"{page_name}.html"), width)
            folder = SCREENSHOTS if label == "desktop" else SCREENSHOTS / "phone"
            folder.mkdir(parents=True, exist_ok=True)
            visit.page.screenshot(path=str(folder / f"{Path(page_name).name}.png"), full_page=True)
            loaded[page_name, label] = {
                "outside": visit.outside,
                "shown_answers": visit.shown_answers,
                "console_errors": visit.console_errors,
                "images": visit.page.evaluate("""() => [...document.querySelectorAll('article img')]
                    .map(i => ({src: i.getAttribute('src'), width: i.naturalWidth}))"""),
                "raw_tex": visit.page.evaluate(RAW_TEX_JS, RAW_TEX.pattern),
                "mathjax_errors": visit.page.evaluate("""() => [...document.querySelectorAll(
                    'mjx-merror, .MathJax_Error, mjx-container [data-mjx-error]')]
                    .map(e => e.getAttribute('data-mjx-error') || e.textContent).slice(0, 5)"""),
                "links": visit.page.evaluate("""() => [...document.querySelectorAll('a[href]')]
                    .map(a => a.href)"""),
                "overflow": visit.page.evaluate(OVERFLOW_JS),
                "figures": visit.page.evaluate(FIGURES_JS),
                "too_wide": visit.page.evaluate(TOO_WIDE_JS),
                "eqno_overlaps": visit.page.evaluate(EQNO_OVERLAP_JS),
                "hidden_scrollbars": visit.page.evaluate(HIDDEN_SCROLLBAR_JS),
                "inline_past_edge": visit.page.evaluate(INLINE_MATHS_PAST_EDGE_JS),
                "orphans": visit.page.evaluate(ORPHAN_PUNCTUATION_JS),
                "colab_badge": visit.page.evaluate(COLAB_BADGE_JS),
                "page_width": visit.page.evaluate("() => document.documentElement.scrollWidth"),
                "squeezed": visit.page.evaluate(SQUEEZED_FIGURES_JS),
            }
            visit.close()
    return loaded


# Answers a reader sees without clicking: the code of a `solution` cell, or the body of a {solution}.
SHOWN_ANSWERS_JS = """() => {
    // checkVisibility, not offsetParent: a closed <details> hides its content with content-visibility.
    const visible = e => e && e.checkVisibility({visibilityProperty: true, opacityProperty: true})
                         && e.getBoundingClientRect().height > 0;
    const found = [];
    document.querySelectorAll('.cell.tag_solution .cell_input pre').forEach(pre => {
        if (visible(pre)) found.push('code: ' + pre.textContent.trim().slice(0, 60));
    });
    document.querySelectorAll('div.solution').forEach(box => {
        const body = [...box.children].filter(c => !c.classList.contains('admonition-title'));
        if (body.some(visible)) found.push('solution: ' + (box.id || box.textContent.trim().slice(0, 60)));
    });
    return found;
}"""

# Text nodes outside code, scripts and typeset maths that still look like TeX.
RAW_TEX_JS = """(pattern) => {
    const re = new RegExp(pattern);
    const skip = 'SCRIPT, STYLE, PRE, CODE, MJX-CONTAINER, TEXTAREA, .highlight, .cell_output .output';
    const walker = document.createTreeWalker(document.querySelector('article') || document.body,
                                             NodeFilter.SHOW_TEXT);
    const found = [];
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const parent = node.parentElement;
        if (!parent || parent.closest(skip)) continue;
        if (re.test(node.textContent)) found.push(node.textContent.trim().slice(0, 120));
    }
    return found.slice(0, 10);
}"""

# Display equations that stick out of the article column and are not inside a box that scrolls.
OVERFLOW_JS = """() => {
    const column = document.querySelector('article.bd-article') || document.querySelector('article');
    if (!column) return [];
    const right = column.getBoundingClientRect().right + 1;
    const found = [];
    for (const eq of document.querySelectorAll('mjx-container[display="true"]')) {
        const box = eq.getBoundingClientRect();
        if (box.width === 0) continue;
        let scroller = eq.parentElement;
        while (scroller && scroller !== column) {
            const overflow = getComputedStyle(scroller).overflowX;
            if ((overflow === 'auto' || overflow === 'scroll')) break;
            scroller = scroller.parentElement;
        }
        const contained = scroller && scroller !== column && scroller.getBoundingClientRect().right <= right;
        const inner = eq.querySelector('mjx-math') || eq;
        if (inner.getBoundingClientRect().right > right && !contained) {
            found.push((eq.closest('[id]') || {}).id || eq.textContent.slice(0, 60));
        }
    }
    return found;
}"""


# Every picture in the article, with the size it is shown at and the link around it (none: it cannot be enlarged).
FIGURES_JS = """() => [...document.querySelectorAll('article.bd-article img')]
    .filter(i => !i.closest('.btn__icon-container, .lvm-colab-badge'))
    .map(i => ({src: i.src, natural: i.naturalWidth, shown: i.getBoundingClientRect().width,
                link: (i.closest('a[href]') || {}).href || null, alt: i.getAttribute('alt') || ''}))"""

# Boxes whose content is wider than the box: display equations, code, outputs (text, HTML tables).
TOO_WIDE_JS = """() => {
    const found = [];
    const name = e => ((e.closest('[id]') || {}).id || '') + ': ' + e.textContent.trim().slice(0, 50);
    for (const box of document.querySelectorAll('article.bd-article div.math')) {
        const maths = box.querySelector('mjx-math');
        if (!maths || box.clientWidth === 0) continue;
        if (maths.getBoundingClientRect().width > box.clientWidth + 1) found.push('equation ' + name(box));
    }
    for (const box of document.querySelectorAll('article.bd-article pre, article.bd-article .cell_output > *')) {
        if (box.clientWidth === 0) continue;
        if (box.scrollWidth > box.clientWidth + 1) {
            const kind = box.closest('.cell_input') ? 'code ' : box.closest('.cell_output') ? 'output ' : 'block ';
            found.push(kind + name(box));
        }
    }
    return found;
}"""

# Equation numbers drawn over the visible part of their equation.
EQNO_OVERLAP_JS = """() => {
    const found = [];
    for (const box of document.querySelectorAll('article.bd-article div.math')) {
        const number = box.querySelector('.eqno'), maths = box.querySelector('mjx-math');
        if (!number || !maths) continue;
        const n = number.getBoundingClientRect(), m = maths.getBoundingClientRect(), b = box.getBoundingClientRect();
        const left = Math.max(m.left, b.left), right = Math.min(m.right, b.right);
        const overlapX = Math.min(n.right, right) - Math.max(n.left, left);
        const overlapY = Math.min(n.bottom, m.bottom) - Math.max(n.top, m.top);
        if (overlapX > 1 && overlapY > 1) found.push(number.textContent.trim());
    }
    return found;
}"""

# Display equations that scroll sideways without a scrollbar a reader can see.
# A display equation wider than its box must scroll and show that it does. MathJax's own container is often
# the box that scrolls (it sets overflow-x: auto), so both it and the outer div.math are measured; one that
# hides its overflow cuts the equation off. Phones hide scrollbars until touched (and Playwright's Chromium
# hides them always), so the sign is a faded edge: lvm.js marks the side where more lies, lvm.css fades it.
# Scrolled to its end, the fade must move to the other edge.
HIDDEN_SCROLLBAR_JS = """async () => {
    const boxes = [...document.querySelectorAll(
        'article.bd-article div.math, article.bd-article mjx-container[display="true"]')]
        .filter(box => box.clientWidth > 0 && box.scrollWidth > box.clientWidth + 1);
    const faded = box => getComputedStyle(box).maskImage.includes('gradient');
    const found = [];
    for (const box of boxes) {
        const maths = box.closest('div.math') || box;
        const name = ((maths.querySelector('.eqno') || {}).textContent || maths.textContent.slice(0, 40)).trim();
        if (!['auto', 'scroll'].includes(getComputedStyle(box).overflowX)) { found.push('cut off: ' + name); continue; }
        if (!(box.classList.contains('lvm-more-right') && faded(box))) { found.push('no fade: ' + name); continue; }
        box.scrollLeft = box.scrollWidth;
        await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
        if (box.classList.contains('lvm-more-right') || !box.classList.contains('lvm-more-left'))
            found.push('fade stays at the end: ' + name);
        box.scrollLeft = 0;
    }
    return found;
}"""

# A figure shown at another shape than its own: its width and height scaled by different factors (a fixed
# height under a narrowed width squeezed every figure sideways on a phone).
SQUEEZED_FIGURES_JS = """() => [...document.querySelectorAll('article.bd-article img')]
    .filter(img => img.complete && img.naturalWidth > 0 && img.getBoundingClientRect().width > 0)
    .filter(img => {
        const box = img.getBoundingClientRect();
        const shown = box.width / box.height, own = img.naturalWidth / img.naturalHeight;
        return Math.abs(shown / own - 1) > 0.02;
    })
    .map(img => `${(img.alt || img.src).slice(0, 50)} shown ${Math.round(img.getBoundingClientRect().width)}x` +
                `${Math.round(img.getBoundingClientRect().height)}, drawn ${img.naturalWidth}x${img.naturalHeight}`)"""

# Inline maths cannot scroll: a formula that runs past the right edge of its paragraph (or list item, or table
# cell) is cut off where the page hides overflow.
INLINE_MATHS_PAST_EDGE_JS = """() => {
    const found = [];
    document.querySelectorAll('article.bd-article mjx-container:not([display="true"])').forEach(m => {
        if (m.closest('div.math, .cell_output, table, [data-tippy-root]')) return;
        const box = m.closest('p, li, dd, td, th, .admonition-title') || m.parentElement;
        const edge = box.getBoundingClientRect().right;
        const right = m.getBoundingClientRect().right;
        if (m.getBoundingClientRect().width > 0 && right > edge + 1) {
            const text = (m.getAttribute('aria-label') || m.textContent).slice(0, 60);
            found.push(`${Math.round(right - edge)} px: ` + text);
        }
    });
    return found;
}"""

# A punctuation mark that starts a line right after inline maths: the line broke between them.
ORPHAN_PUNCTUATION_JS = """() => {
    const found = [];
    for (const maths of document.querySelectorAll('article.bd-article mjx-container:not([display="true"])')) {
        const holder = maths.closest('span.math') || maths;
        const next = holder.nextSibling;
        if (!next || next.nodeType !== Node.TEXT_NODE || !/^[.,;:!?)\\]]/.test(next.textContent)) continue;
        const range = document.createRange();
        range.setStart(next, 0);
        range.setEnd(next, 1);
        const mark = range.getBoundingClientRect(), m = maths.getBoundingClientRect();
        if (mark.height === 0 || m.height === 0) continue;
        if (mark.top >= m.top + m.height / 2) {
            found.push(next.textContent.slice(0, 1) + ' after ' + maths.textContent.slice(0, 30));
        }
    }
    return found;
}"""


# The "Open in Colab" link under the chapter title: where it is, and whether a reader can see it.
COLAB_BADGE_JS = """() => {
    const badge = document.querySelector('article.bd-article a.lvm-colab-badge');
    const title = document.querySelector('article.bd-article h1');
    if (!badge || !title) return null;
    const b = badge.getBoundingClientRect(), t = title.getBoundingClientRect();
    return {href: badge.href, visible: badge.checkVisibility() && b.width > 0 && b.height > 0,
            below_title: b.top - t.bottom, text: badge.textContent.trim()};
}"""

def png_record(url: str, site: Path = SITE) -> dict | None:
    """The record lvm.plot wrote into a PNG of the site (None: not drawn through the course style)."""
    path = site / unquote(urlparse(url).path).lstrip("/")
    image = Image.open(io.BytesIO(path.read_bytes()))
    text = getattr(image, "text", {})
    if "lvm-dpi" not in text:
        return None
    return {"dpi": float(text["lvm-dpi"]), "smallest_pt": json.loads(text["lvm-smallest-text-pt"]),
            "texts": json.loads(text["lvm-texts"]), "width": image.size[0]}


@pytest.mark.parametrize("page", PAGES)
def test_figure_text_is_at_least_9_px_where_the_page_shows_it(visits, page):
    small, unmeasured = [], []
    for figure in visits[page, "desktop"]["figures"]:
        if not figure["src"].endswith(".png"):
            continue
        record = png_record(figure["src"])
        name = Path(urlparse(figure["src"]).path).name[:12]
        if record is None:
            unmeasured.append(name)
            continue
        if record["smallest_pt"] is None:  # a picture with no text (a grid of digits)
            continue
        px = record["smallest_pt"] * record["dpi"] / 72 * figure["shown"] / record["width"]
        if px < MIN_TEXT_PX:
            small.append(f"{name}: {px:.1f} px ({figure['alt'][:50]})")
    assert unmeasured == [], f"{page}: figures not drawn through lvm.plot's style (text size unknown): {unmeasured}"
    assert small == [], f"{page}: figures whose smallest text is under {MIN_TEXT_PX:g} px at 1280 px: {small}"


@pytest.mark.parametrize("page", PAGES)
def test_no_legend_or_title_prints_a_tensor_or_array(visits, page):
    found = []
    for figure in visits[page, "desktop"]["figures"]:
        record = png_record(figure["src"]) if figure["src"].endswith(".png") else None
        found += [text for text in (record or {}).get("texts", []) if REPR.search(text)]
    assert found == [], f"{page}: figure text that is a tensor or array repr: {found[:3]}"


@pytest.mark.parametrize("page", PAGES)
def test_every_figure_opens_full_size_when_clicked(visits, page):
    for figure in visits[page, "desktop"]["figures"]:
        assert figure["link"] and urldefrag(figure["link"])[0] == figure["src"], (
            f"{page}: {figure['src'][-30:]} is not a link to itself, so it cannot be opened full size")


@pytest.mark.parametrize("page", PAGES)
def test_no_equation_output_or_code_is_wider_than_its_box_at_1280_px(visits, page):
    too_wide = visits[page, "desktop"]["too_wide"]
    assert too_wide == [], f"{page}: wider than their box at 1280 px: {too_wide[:8]}"


@pytest.mark.parametrize("page", PAGES)
def test_on_a_phone_printed_output_wraps_so_no_number_hides_off_screen(visits, page):
    hidden = [found for found in visits[page, "phone"]["too_wide"] if found.startswith("output ")]
    assert hidden == [], f"{page} at 412 px: printed output runs off its box: {hidden[:6]}"


@pytest.mark.parametrize("page", PAGES)
def test_on_a_phone_equation_numbers_clear_their_equations_and_scrolling_shows(visits, page):
    visit = visits[page, "phone"]
    assert visit["eqno_overlaps"] == [], f"{page} at 412 px: numbers over their equations: {visit['eqno_overlaps']}"
    assert visit["hidden_scrollbars"] == [], (
        f"{page} at 412 px: equations that scroll with no sign that they do: {visit['hidden_scrollbars'][:8]}")


@pytest.mark.parametrize("page", PAGES)
def test_every_figure_keeps_its_shape_at_both_widths(visits, page):
    for label in WIDTHS:
        found = visits[page, label]["squeezed"]
        assert found == [], f"{page} ({label}): figures shown at another shape than drawn: {found[:4]}"


@pytest.mark.parametrize("page", PAGES)
def test_inline_maths_stays_within_its_line_at_both_widths(visits, page):
    for label in WIDTHS:
        found = visits[page, label]["inline_past_edge"]
        assert found == [], f"{page} ({label}): inline maths cut off at the right edge: {found[:6]}"


@pytest.mark.parametrize("page", PAGES)
def test_no_page_is_wider_than_the_screen(visits, page):
    for label, width in WIDTHS.items():
        # Wide content scrolls inside its own box; the page itself never scrolls sideways.
        assert visits[page, label]["page_width"] <= width, (
            f"{page} at {width} px is {visits[page, label]['page_width']} px wide")


@pytest.mark.parametrize("page", PAGES)
def test_no_punctuation_wraps_onto_its_own_line_after_inline_maths(visits, page):
    for label, width in WIDTHS.items():
        orphans = visits[page, label]["orphans"]
        assert orphans == [], f"{page} at {width} px: punctuation alone at a line's start: {orphans[:5]}"


SOLUTION_PAGES = [p for p in PAGES if (ROOT / f"{p}.ipynb").exists()
                  and "{solution}" in (ROOT / f"{p}.ipynb").read_text(encoding="utf-8")]


@pytest.mark.parametrize("page", SOLUTION_PAGES)
def test_clicking_a_folded_solutions_title_opens_it_and_the_keyboard_can_too(server, browser, page):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        tab = context.new_page()
        tab.goto(urljoin(server, f"{page}.html"), wait_until="load")
        boxes = tab.query_selector_all("div.solution.dropdown")
        assert boxes, f"{page}: no folded solution found"
        failures = []
        for box in boxes:
            title = box.query_selector(".admonition-title")
            target = title.query_selector("a") or title  # a link in the title is where a click goes wrong
            before = tab.url
            target.click()
            tab.wait_for_timeout(150)
            opened = box.evaluate(SOLUTION_OPEN_JS)
            if not opened or tab.url != before:
                failures.append(f"{box.get_attribute('id')}: opened={opened}, went to {tab.url[-40:]}")
        assert failures == [], f"{page}: solution titles that do not open their solution: {failures[:5]}"
        # The keyboard: Tab to a solution's button and press Enter; the same for a folded code cell.
        tab.reload(wait_until="load")
        box = tab.query_selector("div.solution.dropdown")
        button = box.query_selector("button, [role=button], summary")
        assert button is not None, f"{page}: a folded solution has no control to reach with the keyboard"
        button.focus()
        tab.keyboard.press("Enter")
        tab.wait_for_timeout(150)
        assert box.evaluate(SOLUTION_OPEN_JS), f"{page}: Enter on a folded solution's button does not open it"
        summary = tab.query_selector("details.hide summary")
        if summary is not None:
            summary.focus()
            tab.keyboard.press("Enter")
            assert summary.evaluate("s => s.parentElement.open"), f"{page}: Enter does not open a folded cell"
    finally:
        context.close()


SOLUTION_OPEN_JS = """box => [...box.children].filter(c => !c.classList.contains('admonition-title'))
    .some(c => c.checkVisibility() && c.getBoundingClientRect().height > 0)"""


def axe_violations(browser, url: str) -> list[str]:
    """Serious and critical axe-core violations of one page, with every fold opened."""
    if not AXE.exists():
        pytest.fail(f"axe-core is missing at {AXE}: `npm install` it (CI does) or set LVM_AXE")
    visit = PageVisit(browser, url, 1280)
    try:
        visit.page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
        results = visit.page.evaluate("""async () => {
            const r = await axe.run(document, {resultTypes: ['violations']});
            return r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
                .map(v => `${v.impact} ${v.id} (${v.nodes.length}): ${v.nodes[0].target.join(' ')}`);
        }""")
    finally:
        visit.close()
    return results


@pytest.mark.parametrize("page", PAGES)
def test_axe_finds_no_serious_or_critical_violation_in_the_instructor_edition(server, browser, page):
    found = axe_violations(browser, urljoin(server, f"{page}.html"))
    assert found == [], f"{page}: {found}"


@pytest.mark.student_site
@pytest.mark.parametrize("page", PAGES)
def test_axe_finds_no_serious_or_critical_violation_in_the_student_edition(student_server, browser, page):
    found = axe_violations(browser, urljoin(student_server, f"{page}.html"))
    assert found == [], f"{page} (student edition): {found}"


@pytest.mark.parametrize("page", PAGES)
def test_page_loads_nothing_from_outside_and_logs_no_error(visits, page):
    for label in WIDTHS:
        visit = visits[page, label]
        assert visit["outside"] == [], f"{page} requested from outside 127.0.0.1: {visit['outside'][:5]}"
        assert visit["console_errors"] == [], f"{page} logged errors: {visit['console_errors'][:5]}"


@pytest.mark.parametrize("page", PAGES)
def test_answers_are_folded_until_the_reader_opens_them(visits, page):
    for label in WIDTHS:
        shown = visits[page, label]["shown_answers"]
        assert shown == [], f"{page} at {WIDTHS[label]} px shows answers unfolded: {shown[:5]}"


@pytest.mark.parametrize("page", PAGES)
def test_every_plotting_cell_shows_its_figure(visits, page):
    images = visits[page, "desktop"]["images"]
    broken = [i["src"][:80] for i in images if i["width"] == 0]
    assert broken == [], f"{page}: images that did not load: {broken}"
    expected = plotting_cells(page)
    assert len(images) >= expected, f"{page}: {len(images)} rendered images for {expected} plotting cells"


@pytest.mark.parametrize("page", PAGES)
def test_maths_is_typeset_everywhere_including_folded_solutions(visits, page):
    visit = visits[page, "desktop"]
    assert visit["raw_tex"] == [], f"{page}: untypeset TeX on the page: {visit['raw_tex']}"
    assert visit["mathjax_errors"] == [], f"{page}: MathJax errors: {visit['mathjax_errors']}"


@pytest.mark.parametrize("page", PAGES)
def test_display_equations_fit_or_scroll(visits, page):
    for label in WIDTHS:
        overflowing = visits[page, label]["overflow"]
        assert overflowing == [], f"{page} at {WIDTHS[label]} px: equations stick out: {overflowing}"


def _ids(html_file: Path) -> set[str]:
    return set(re.findall(r'\bid="([^"]+)"', html_file.read_text(encoding="utf-8")))


@pytest.mark.parametrize("page", PAGES)
def test_internal_links_and_anchors_resolve(visits, server, page):
    broken = []
    for href in visits[page, "desktop"]["links"]:
        if not href.startswith(server):
            continue
        target, fragment = urldefrag(href)
        path = SITE / unquote(urlparse(target).path).lstrip("/")
        if path.is_dir():
            path = path / "index.html"
        if not path.exists():
            broken.append(href)
        elif fragment and path.suffix == ".html" and unquote(fragment) not in _ids(path):
            broken.append(href)
    assert broken == [], f"{page}: broken links: {sorted(set(broken))[:10]}"


@pytest.mark.parametrize("page", [p for p in PAGES if (ROOT / f"{p}.ipynb").exists()])
def test_colab_link_opens_this_notebook(visits, page):
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    owner, repo = urlparse(config["repository"]["url"]).path.strip("/").split("/")[:2]
    links = [h for h in visits[page, "desktop"]["links"] if "colab.research.google.com" in h]
    assert links, f"{page}: no Colab button"
    for link in links:
        match = COLAB.match(link)
        assert match, f"{page}: malformed Colab link {link}"
        assert match.groups() == (owner, repo, config["repository"]["branch"], f"{page}.ipynb"), link


@pytest.mark.parametrize("page", [p for p in PAGES if (ROOT / f"{p}.ipynb").exists() and p != toc_pages()[0]])
def test_an_open_in_colab_badge_sits_under_every_chapter_title(visits, page):
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    owner, repo = urlparse(config["repository"]["url"]).path.strip("/").split("/")[:2]
    for label, width in WIDTHS.items():
        badge = visits[page, label]["colab_badge"]
        assert badge is not None, f"{page}: no Open in Colab badge"
        assert badge["visible"] and badge["text"] == "Open in Colab", f"{page} at {width} px: badge {badge}"
        assert 0 <= badge["below_title"] < 80, f"{page} at {width} px: badge is not right under the title"
        match = COLAB.match(badge["href"])
        assert match and match.groups() == (owner, repo, config["repository"]["branch"], f"{page}.ipynb")


@pytest.mark.parametrize("page", PAGES)
def test_a_pasted_link_previews_with_a_title_and_a_plain_text_description(page):
    html_text = (SITE / f"{page}.html").read_text(encoding="utf-8")
    meta = dict(re.findall(r'<meta (?:property|name)="([\w:]+)" content="([^"]*)"', html_text))
    for key in ("og:title", "og:description", "og:url", "description"):
        assert meta.get(key), f"{page}: no {key} metadata"
    assert "\\" not in meta["description"] + meta["og:description"], f"{page}: TeX in the description"


@pytest.mark.parametrize("page", PAGES)
def test_no_page_carries_widget_state_that_nothing_reads(page):
    # The site loads no ipywidgets JavaScript, so an embedded widget state is dead weight (160 KB on ch. 1).
    html_text = (SITE / f"{page}.html").read_text(encoding="utf-8")
    assert "application/vnd.jupyter.widget-state+json" not in html_text, f"{page} embeds its widgets' state"


@pytest.mark.parametrize("page", [p for p in PAGES if plotting_cells(p)])
def test_a_chapters_download_is_the_executed_notebook_with_its_figures(page):
    html_text = (SITE / f"{page}.html").read_text(encoding="utf-8")
    name = Path(page).name
    assert f'_sources/{page}.ipynb"' in html_text or f'_sources/{name}.ipynb"' in html_text, (
        f"{page} offers no .ipynb download")
    notebook = json.loads((SITE / "_sources" / f"{page}.ipynb").read_text(encoding="utf-8"))
    images = sum("image/png" in output.get("data", {}) for cell in notebook["cells"]
                 for output in cell.get("outputs", []))
    assert images >= plotting_cells(page), f"the download of {page} has {images} figures: the bare source?"


def test_bibliography_labels_read_like_the_citations_in_the_text():
    bibliography = (SITE / "book" / "bibliography.html").read_text(encoding="utf-8")
    labels = set(re.findall(r'class="label"><span class="fn-bracket">\[</span>([^<]+)<', bibliography))
    assert len(labels) >= 20, "the bibliography lists its works with labels"
    cited = set()
    for page in PAGES:
        page_html = (SITE / f"{page}.html").read_text(encoding="utf-8")
        cited |= set(re.findall(r'<a class="reference internal" href="[^"]*bibliography\.html#id\d+"[^>]*>([^<]+)</a>',
                                page_html))
    assert len(cited) >= 15, f"the chapters cite works author-year; found {sorted(cited)[:5]}"
    unmatched = sorted(c for c in cited if c not in labels)
    assert unmatched == [], f"citations whose text is no bibliography label: {unmatched[:5]}"


@pytest.mark.parametrize("page", [p for p in PAGES if (ROOT / f"{p}.ipynb").exists()])
def test_hovering_an_equation_or_figure_reference_previews_it(server, browser, page):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        tab = context.new_page()
        tab.goto(urljoin(server, f"{page}.html"), wait_until="load")
        # The first reference a reader can see (those in folded solutions are hidden until opened).
        link = tab.evaluate_handle("""() => [...document.querySelectorAll(
            'article.bd-article a.reference[href^="#equation-"], article.bd-article a.reference[href^="#fig-"]')]
            .find(a => a.checkVisibility() && a.getBoundingClientRect().width > 0) || null""").as_element()
        if link is None:  # a page that refers to no equation or figure of its own has nothing to preview
            return
        link.scroll_into_view_if_needed()
        link.hover()
        tab.wait_for_selector("[data-tippy-root] .tippy-content", timeout=3000)
        content = tab.evaluate("() => document.querySelector('[data-tippy-root] .tippy-content').innerHTML")
        assert "mjx-container" in content or "<img" in content, f"{page}: the preview shows {content[:80]}"
    finally:
        context.close()


@pytest.mark.parametrize("term", ["evidence", "posterior"])
def test_search_snippets_show_typeset_maths_not_tex(server, browser, term):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        tab = context.new_page()
        tab.goto(urljoin(server, f"search.html?q={term}"), wait_until="load")
        tab.wait_for_selector("#search-results p.context", timeout=15000)
        tab.wait_for_load_state("networkidle")
        # Every snippet's maths is typeset once the search has finished and MathJax has caught up.
        found = tab.evaluate("""async () => {
            // Results arrive one by one, each snippet after its page is fetched: wait until the search has
            // finished, every formula is typeset, and the number of snippets has stopped changing.
            let last = -1, steady = 0;
            for (let i = 0; i < 150 && steady < 5; i++) {
                await new Promise(r => setTimeout(r, 100));
                const finished = /finished/i.test(document.querySelector('.search-summary')?.textContent || '');
                const count = document.querySelectorAll('#search-results p.context').length;
                const untypeset = document.querySelectorAll(
                    '#search-results p.context span.math:not(:has(mjx-container))').length;
                steady = finished && untypeset === 0 && count === last ? steady + 1 : 0;
                last = count;
            }
            const snippets = [...document.querySelectorAll('#search-results p.context')];
            return snippets.map(p => {
                const copy = p.cloneNode(true);
                copy.querySelectorAll('mjx-container').forEach(m => m.remove());
                return {text: copy.textContent, formulas: p.querySelectorAll('mjx-container').length,
                        errors: p.querySelectorAll('mjx-merror').length};
            });
        }""")
    finally:
        context.close()
    assert len(found) >= 5, f"searching {term!r} found {len(found)} snippets"
    assert sum(s["formulas"] for s in found) >= 3, f"no snippet for {term!r} shows typeset maths: {found[:3]}"
    raw = [s["text"] for s in found if "\\" in s["text"]]
    assert raw == [], f"snippets for {term!r} show raw TeX: {raw[:2]}"
    broken = [s["text"][:80] for s in found if s["errors"]]
    assert broken == [], f"snippets for {term!r} show MathJax errors (red TeX): {broken}"
