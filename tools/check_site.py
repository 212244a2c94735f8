"""Check the built website: every page in the table of contents is there and reads well offline.

    python tools/check_site.py _build/html

For each chapter page: maths is present and served by the site's own MathJax (no network needed), every
figure file it refers to exists, no cell printed a traceback, and notebook pages offer the Colab button.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [chapter["file"] for chapter in part.get("chapters", [])]
    return files


def page_problems(html_root: Path, name: str) -> list[str]:
    page = html_root / f"{name}.html"
    if not page.exists():
        return [f"{name}: page missing"]
    text = page.read_text(encoding="utf-8")
    found = []
    has_maths = 'class="math' in text
    if has_maths and "_static/mathjax/tex-chtml.js" not in text:
        found.append(f"{name}: maths but MathJax is not loaded from the site's own _static/mathjax")
    if "cdn.jsdelivr.net/npm/mathjax" in text:
        found.append(f"{name}: MathJax is loaded from a CDN (no maths without network)")
    for src in re.findall(r'<img[^>]+src="([^"]+)"', text):
        if not src.startswith(("http", "data:")) and not (page.parent / src).resolve().exists():
            found.append(f"{name}: image {src} is missing")
    if "Traceback (most recent call last)" in text or 'class="output traceback' in text:
        found.append(f"{name}: a cell printed a traceback")
    if (ROOT / f"{name}.ipynb").exists():
        if "colab.research.google.com" not in text:
            found.append(f"{name}: no Colab launch button")
        if not has_maths:
            found.append(f"{name}: no rendered maths")
    return found


def main(argv: list[str]) -> int:
    html_root = Path(argv[0] if argv else ROOT / "_build" / "html")
    if not (html_root / "_static" / "mathjax" / "tex-chtml.js").exists():
        print(f"{html_root}: _static/mathjax/tex-chtml.js missing: maths would need the network")
        return 1
    problems = [p for name in toc_files() for p in page_problems(html_root, name)]
    for problem in problems:
        print(problem)
    print(f"{len(toc_files())} pages checked, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
