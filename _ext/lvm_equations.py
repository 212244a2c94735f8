"""Equations cited in code as the reader sees them.

The notebooks' code comments and ``lvm``'s docstrings cite an equation by its label, ``eq. (vae-loss)`` or
eq. ``vae-loss``, because labels survive when equations are added and are what Colab shows beside each
equation. On the website the equation reads (6.3), so this extension rewrites each citation to that number
once Sphinx has numbered the equations, and links it where the text is prose (the API reference). A label
that names no equation is a warning, so ``-W`` fails the build on a stale citation.
"""

from __future__ import annotations

import re

from docutils import nodes
from sphinx.util import logging

logger = logging.getLogger(__name__)

# "eq. (label)" or "eqs. (label)" in a code cell, "Eq." at the start of a sentence; the label is what {eq}
# would take.
CODE_CITATION = re.compile(r"\b([Ee]qs?\.) \(([a-z0-9]+(?:-[a-z0-9]+)*)\)")
PROSE_CITATION = re.compile(r"\b[Ee]qs?\. $")


def equation_number(app, label: str) -> tuple[str, str] | None:
    """(docname, "6.3") for an equation label, or None when no equation has it."""
    env = app.env
    found = env.get_domain("math").equations.get(label)
    if found is None:
        return None
    docname = found[0]
    node_id = nodes.make_id(f"equation-{label}")
    numbers = env.toc_fignumbers.get(docname, {}).get("displaymath", {}).get(node_id)
    if not numbers:
        return docname, str(found[1])
    number = ".".join(map(str, numbers))
    return docname, env.config.math_numsep.join(number.rsplit(".", 1))


def _numbered(app, match: re.Match, node) -> str:
    found = equation_number(app, match.group(2))
    if found is None:
        logger.warning("a code comment cites eq. (%s), which no equation has", match.group(2), location=node)
        return match.group(0)
    return f"{match.group(1)} ({found[1]})"


def number_code_citations(app, doctree, docname) -> None:
    for block in list(doctree.findall(nodes.literal_block)):
        text = block.astext()
        new = CODE_CITATION.sub(lambda m, block=block: _numbered(app, m, block), text)
        if new != text:
            # Both must change: the HTML writer only highlights a block whose rawsource equals its text.
            block.rawsource = new
            block.children = [nodes.Text(new)]


def link_prose_citations(app, doctree, docname) -> None:
    """eq. ``label`` in a docstring becomes a link that reads (6.3)."""
    for literal in list(doctree.findall(nodes.literal)):
        parent = literal.parent
        index = parent.index(literal)
        before = parent[index - 1] if index > 0 else None
        if not (isinstance(before, nodes.Text) and PROSE_CITATION.search(before.astext())):
            continue
        label = literal.astext()
        found = equation_number(app, label)
        if found is None:
            logger.warning("a docstring cites eq. ``%s``, which no equation has", label, location=literal)
            continue
        target, number = found
        uri = app.builder.get_relative_uri(docname, target) + "#" + nodes.make_id(f"equation-{label}")
        link = nodes.reference("", f"({number})", refuri=uri, internal=True, classes=["lvm-eq"])
        parent.replace(literal, link)


def setup(app):
    app.connect("doctree-resolved", number_code_citations)
    app.connect("doctree-resolved", link_prose_citations)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
