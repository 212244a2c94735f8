"""What a reader of the site will see of each figure in an executed notebook, before building the book.

    python tools/figure_report.py /tmp/me/04.out.ipynb [more executed notebooks]

For every PNG a code cell shows, prints the width it will be displayed at in the site's column at a 1280 px
window, the smallest text on it in CSS px there, and any string on it that looks like a tensor or array repr,
and flags what the site's browser test (tests/test_site.py) will reject. It reads the record that
``lvm.plot.use_course_style()`` writes into each PNG; a PNG without one was not drawn through that style.
Exits 1 if anything is flagged.
"""

from __future__ import annotations

import base64
import io
import json
import re
import sys

from PIL import Image

COLUMN_PX = 688  # the article column's content width at a 1280 px window (pydata-sphinx-theme 0.15)
MIN_TEXT_PX = 9.0
REPR = re.compile(r"tensor\(|array\(|Parameter containing|dtype=|\[\s*-?\d+\.\d+(e[-+]\d+)?,\s+-?\d")


def figure_findings(png: bytes, width_css: float) -> dict:
    """Displayed width, smallest text (CSS px) and repr-like strings of one PNG shown ``width_css`` px wide."""
    image = Image.open(io.BytesIO(png))
    shown = min(width_css, COLUMN_PX)
    if "lvm-dpi" not in image.text:
        return {"shown_px": shown, "smallest_text_px": None, "reprs": [], "problem": "no lvm record"}
    smallest_pt = json.loads(image.text["lvm-smallest-text-pt"])
    texts = json.loads(image.text["lvm-texts"])
    scale = shown / image.size[0]
    smallest = None if smallest_pt is None else smallest_pt * float(image.text["lvm-dpi"]) / 72 * scale
    reprs = [t for t in texts if REPR.search(t)]
    problem = None
    if smallest is not None and smallest < MIN_TEXT_PX:
        problem = f"text at {smallest:.1f} px"
    if reprs:
        problem = (problem + "; " if problem else "") + f"reprs {reprs[:2]}"
    return {"shown_px": shown, "smallest_text_px": smallest, "reprs": reprs, "problem": problem}


def main(paths: list[str]) -> int:
    flagged = 0
    for path in paths:
        cells = json.load(open(path, encoding="utf-8"))["cells"]
        for index, cell in enumerate(cells):
            for output in cell.get("outputs", []):
                data = output.get("data", {})
                if "image/png" not in data:
                    continue
                png = base64.b64decode(data["image/png"])
                width = output.get("metadata", {}).get("image/png", {}).get("width")
                width = width or Image.open(io.BytesIO(png)).size[0]
                found = figure_findings(png, width)
                flagged += found["problem"] is not None
                text = "-" if found["smallest_text_px"] is None else f"{found['smallest_text_px']:.1f} px"
                print(f"{path} cell {index}: shown {found['shown_px']:.0f} px wide, smallest text {text}"
                      + (f"  <-- {found['problem']}" if found["problem"] else ""))
    print(f"{flagged} figure(s) flagged")
    return 1 if flagged else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
