"""The site's Sphinx extensions (in _ext/), on hand-built document trees: no build needed."""

from pathlib import Path

from docutils import nodes

import lvm_equations
import lvm_readable

ROOT = Path(__file__).resolve().parents[1]


def paragraph(*children):
    node = nodes.paragraph()
    node.extend(children)
    document = nodes.document(None, None)
    document += node
    return document, node


def test_punctuation_after_inline_maths_is_kept_with_it_and_nothing_else_moves():
    # Chapter 5's "`mu` is [D_z], `scale_tril` is L, [D_z, D_z]": an equal ", " earlier in the paragraph was
    # the node replaced, which lost one comma and doubled another.
    document, para = paragraph(nodes.Text("mu is D"), nodes.Text(", "), nodes.Text("scale is "),
                               nodes.math(text="L"), nodes.Text(", "), nodes.Text("D by D"))
    lvm_readable.keep_punctuation_with_maths(None, document, "page")
    assert para.astext() == "mu is D, scale is L, D by D"
    held = [node for node in para.children if isinstance(node, nodes.inline)]
    assert len(held) == 1 and held[0].astext() == "L," and "lvm-nowrap" in held[0]["classes"]


def test_maths_with_no_punctuation_after_it_is_left_alone():
    document, para = paragraph(nodes.Text("so "), nodes.math(text="x"), nodes.Text(" grows"))
    lvm_readable.keep_punctuation_with_maths(None, document, "page")
    assert para.astext() == "so x grows"
    assert not list(para.findall(nodes.inline))


def test_punctuation_that_ends_the_text_node_leaves_no_empty_node_behind():
    document, para = paragraph(nodes.Text("a, "), nodes.math(text="x"), nodes.Text("."))
    lvm_readable.keep_punctuation_with_maths(None, document, "page")
    assert para.astext() == "a, x."
    assert len(para.children) == 2


def test_a_download_keeps_each_printed_line_once():
    import lvm_release

    merged = {"output_type": "stream", "name": "stdout", "text": "factors: a, b\n  a  b\nMIG 0.9 0.8\n"}
    repeat = {"output_type": "stream", "name": "stdout", "text": "  a  b\nMIG 0.9 0.8\n"}
    image = {"output_type": "display_data", "data": {"image/png": "..."}}
    other = {"output_type": "stream", "name": "stdout", "text": "a new line\n"}
    assert lvm_release.without_repeated_streams([merged, repeat, image]) == [merged, image]
    assert lvm_release.without_repeated_streams([merged, other]) == [merged, other]  # new text stays
    stderr = {"output_type": "stream", "name": "stderr", "text": "  a  b\n"}
    assert lvm_release.without_repeated_streams([merged, stderr]) == [merged, stderr]  # another stream


def test_a_code_citation_is_numbered_whether_or_not_it_starts_a_sentence():
    found = [m.group(1, 2) for m in lvm_equations.CODE_CITATION.finditer(
        "eq. (vae-loss); Eq. (lg-ml) and eqs. (a-b); Eqs. (c1) but not eq (x) or eq. label")]
    assert found == [("eq.", "vae-loss"), ("Eq.", "lg-ml"), ("eqs.", "a-b"), ("Eqs.", "c1")]


def test_every_citation_in_code_reads_as_one_the_site_numbers():
    # Any "eq. (label)" however it is capitalised or spaced must be one the extension rewrites, or the site
    # shows the raw label where every other citation reads (6.3).
    import json
    import re

    loose = re.compile(r"\beqs?\.?\s*\(([a-z0-9]+(?:-[a-z0-9]+)+)\)", re.IGNORECASE)
    texts = [p.read_text(encoding="utf-8") for p in (ROOT / "lvm").rglob("*.py")]
    for path in (ROOT / "book").glob("*.ipynb"):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        texts += ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    seen = 0
    for text in texts:
        for match in loose.finditer(text):
            seen += 1
            assert lvm_equations.CODE_CITATION.fullmatch(match.group(0)), match.group(0)
    assert seen > 20
