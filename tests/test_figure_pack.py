"""A release's figure pack: every captioned figure of a chapter as PNG and SVG, numbered as on the site."""

from __future__ import annotations

import base64
import json

import matplotlib.pyplot as plt
import pytest

import figure_pack
import lvm


def _figure_cell(name: str, caption: str, svg: bool) -> dict:
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0], label="a line")
    png, _ = lvm.plot.render_png(fig)
    data = {"image/png": base64.b64encode(png).decode()}
    if svg:
        data["image/svg+xml"] = lvm.plot.render_svg(fig)
    plt.close(fig)
    return {"cell_type": "code", "metadata": {"mystnb": {"figure": {"name": name, "caption": caption}}},
            "outputs": [{"output_type": "display_data", "data": data, "metadata": {}}], "source": ""}


def _chapter(tmp_path, svg: bool = True):
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": "$$\na = b\n$$ (first-eq)\n\n$$\nc = d\n$$ (second-eq)"},
        {"cell_type": "code", "metadata": {}, "outputs": [], "source": "x = 1"},
        _figure_cell("fig-one", "A line, as {eq}`second-eq` says.", svg),
        _figure_cell("fig-two", "The same as {numref}`fig-one`, see {cite}`prince2023understanding`.", svg),
    ]
    path = tmp_path / "06_some_chapter.ipynb"
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def test_render_svg_draws_a_vector_figure():
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    svg = lvm.plot.render_svg(fig)
    plt.close(fig)
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "<path" in svg


def test_the_pack_holds_each_figure_as_png_and_svg_numbered_as_on_the_site(tmp_path):
    figs = figure_pack.write_pack(_chapter(tmp_path), tmp_path / "pack", require_svg=True)
    folder = tmp_path / "pack" / "06_some_chapter"
    assert [f.number for f in figs] == ["6.1", "6.2"]
    for stem in ("fig-6.1-one", "fig-6.2-two"):
        assert (folder / f"{stem}.png").read_bytes().startswith(b"\x89PNG")
        assert "<svg" in (folder / f"{stem}.svg").read_text()
    readme = (folder / "README.md").read_text()
    # Cross-references read as the site prints them; no MyST role is left for a reader to decode.
    assert "A line, as (6.2) says." in readme and "The same as Fig. 6.1, see (prince2023understanding)." in readme
    assert "{" + "eq}" not in readme and "{" + "numref}" not in readme


def test_a_figure_without_its_svg_is_an_error_when_the_release_requires_one(tmp_path):
    chapter = _chapter(tmp_path, svg=False)
    with pytest.raises(ValueError, match="no SVG for fig-one, fig-two"):
        figure_pack.write_pack(chapter, tmp_path / "pack", require_svg=True)
    figs = figure_pack.write_pack(chapter, tmp_path / "pack", require_svg=False)
    assert [f.svg for f in figs] == [None, None]


def test_the_course_style_renders_svg_beside_png_only_when_asked(monkeypatch):
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    try:
        monkeypatch.delenv(lvm.plot.FIGURE_SVG_VARIABLE, raising=False)
        lvm.plot.use_course_style()
        assert "image/svg+xml" not in shell.display_formatter.format(fig)[0]
        monkeypatch.setenv(lvm.plot.FIGURE_SVG_VARIABLE, "1")
        lvm.plot.use_course_style()
        formats = shell.display_formatter.format(fig)[0]
        assert "image/png" in formats and "<svg" in formats["image/svg+xml"]
    finally:
        svg = shell.display_formatter.formatters["image/svg+xml"]
        svg.type_printers.pop(type(fig), None)
        plt.close(fig)
        InteractiveShell.clear_instance()
