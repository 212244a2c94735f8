"""Write each chapter's figure pack: every figure at 2× as PNG and as SVG, with its number, label and caption.

    python tools/figure_pack.py EXECUTED_DIR OUTPUT_DIR [--require-svg]

``EXECUTED_DIR`` holds the executed chapters (the book build's ``_build/jupyter_execute/book``). A figure is a
code cell with a caption (``metadata.mystnb.figure``) and an image output; figures are numbered per chapter in
order, as the site numbers them (Fig. 6.3 is the third captioned figure of chapter 6). The PNG is the one the
site shows, drawn at twice its display size by ``lvm.plot.render_png``. The SVG is there when the notebooks ran
with ``LVM_FIGURE_SVG=1`` (``lvm.plot.use_course_style`` then renders both); ``--require-svg`` makes a figure
without one an error, as the release and CI want.

For each chapter, ``OUTPUT_DIR/<chapter>/`` gets ``fig-<N>.<k>-<label>.png`` and ``.svg`` and a ``README.md``
listing every figure with its caption (Markdown with TeX maths; cross-references read as on the site).
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from otter_assign import equation_numbers


@dataclass
class Figure:
    number: str  # "6.3"
    label: str  # "fig-vae-samples"
    caption: str
    png: bytes
    svg: str | None


def _text(value: str | list[str]) -> str:
    return "".join(value) if isinstance(value, list) else value


def figures(notebook: Path) -> list[Figure]:
    """The captioned figures of one executed chapter, in order."""
    chapter = int(notebook.name[:2])
    found = []
    for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
        meta = cell.get("metadata", {}).get("mystnb", {}).get("figure")
        if cell["cell_type"] != "code" or not meta or "caption" not in meta:
            continue
        images = [o["data"] for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
        if len(images) != 1:
            raise ValueError(f"{notebook.name}: figure {meta.get('name')!r} has {len(images)} images, expected 1")
        data = images[0]
        svg = data.get("image/svg+xml")
        found.append(Figure(f"{chapter}.{len(found) + 1}", meta.get("name", f"figure-{len(found) + 1}"),
                            _text(meta["caption"]).strip(), base64.b64decode(_text(data["image/png"])),
                            _text(svg) if svg is not None else None))
    return found


def plain_caption(caption: str, equations: dict[str, str], figure_numbers: dict[str, str]) -> str:
    """A caption's MyST roles as the site reads them: (6.3) for an equation, Fig. 6.2 for a figure."""
    caption = re.sub(r"\{eq\}`([^`]+)`", lambda m: equations.get(m.group(1), m.group(1)), caption)
    caption = re.sub(r"\{numref\}`([^`]+)`", lambda m: f"Fig. {figure_numbers.get(m.group(1), m.group(1))}", caption)
    caption = re.sub(r"\{ref\}`(?:([^`<]*?)\s*<)?([^`>]+)>?`", lambda m: m.group(1) or m.group(2), caption)
    return re.sub(r"\{cite(?::\w+)?\}`([^`]+)`", r"(\1)", caption)


def write_pack(notebook: Path, output: Path, require_svg: bool) -> list[Figure]:
    figs = figures(notebook)
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    equations = equation_numbers(nb, int(notebook.name[:2]))
    figure_numbers = {f.label: f.number for f in figs}
    missing = [f.label for f in figs if f.svg is None]
    if require_svg and missing:
        raise ValueError(f"{notebook.name}: no SVG for {', '.join(missing)}: run the chapter with LVM_FIGURE_SVG=1")
    folder = output / notebook.stem
    folder.mkdir(parents=True, exist_ok=True)
    title = notebook.stem[3:].replace("_", " ")
    lines = [f"# Figures of chapter {int(notebook.name[:2])}, {title}", "",
             "Each figure as a PNG at twice its size on the course's website and, where present, as an SVG.", ""]
    for fig in figs:
        stem = f"fig-{fig.number}-{re.sub(r'^fig-', '', fig.label)}"
        (folder / f"{stem}.png").write_bytes(fig.png)
        files = f"`{stem}.png`"
        if fig.svg is not None:
            (folder / f"{stem}.svg").write_text(fig.svg, encoding="utf-8")
            files += f", `{stem}.svg`"
        lines += [f"## Figure {fig.number} ({files})", "", plain_caption(fig.caption, equations, figure_numbers), ""]
    (folder / "README.md").write_text("\n".join(lines), encoding="utf-8")
    return figs


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("executed", type=Path, help="folder of executed chapter notebooks")
    parser.add_argument("output", type=Path)
    parser.add_argument("--require-svg", action="store_true", help="fail on a figure without an SVG")
    args = parser.parse_args(argv)
    chapters = sorted(args.executed.glob("[0-9][0-9]_*.ipynb"))
    if not chapters:
        parser.error(f"no executed chapters (NN_*.ipynb) in {args.executed}")
    if args.output.exists():
        shutil.rmtree(args.output)
    for chapter in chapters:
        figs = write_pack(chapter, args.output, args.require_svg)
        print(f"{chapter.stem}: {len(figs)} figures")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
