"""Pages that read well at any width: small transforms of every page.

- A punctuation mark right after inline maths stays on the maths' line: the two are wrapped in a span that
  does not break (class ``lvm-nowrap``), so a line never starts with a lone comma or full stop.
- Every chapter made from a notebook shows an "Open in Colab" link under its title (class
  ``lvm-colab-badge``), pointing at the notebook in the repository and branch that ``_config.yml`` names, the
  same target as the theme's launch button, which hides in a menu.
- The page description that sphinxext-opengraph takes from the first paragraph (what a link preview in an
  LMS or a chat shows) has its TeX written as plain text: "log p(x | φ)", not the TeX source.
"""

from __future__ import annotations

import re
import unicodedata
from html import escape, unescape

from docutils import nodes

LEADING_PUNCTUATION = re.compile(r"^[.,;:!?)\]]+")


def keep_punctuation_with_maths(app, doctree, docname) -> None:
    for maths in list(doctree.findall(nodes.math)):
        parent = maths.parent
        if parent is None:
            continue
        index = parent.index(maths)
        if index + 1 >= len(parent):
            continue
        following = parent[index + 1]
        if not isinstance(following, nodes.Text):
            continue
        match = LEADING_PUNCTUATION.match(str(following))
        if not match:
            continue
        punctuation, rest = match.group(), str(following)[match.end():]
        holder = nodes.inline(classes=["lvm-nowrap"])
        # By position, not by value: docutils finds a Text node by equality, so replacing `following` by value
        # hit the first equal text in the paragraph (an earlier ", ") and left this one doubled.
        parent[index] = holder
        holder += maths
        holder += nodes.Text(punctuation)
        if rest:
            parent[index + 1] = nodes.Text(rest)
        else:
            del parent[index + 1]


def colab_url(app, docname: str) -> str | None:
    options = app.config.html_theme_options or {}
    url, branch = options.get("repository_url"), options.get("repository_branch") or "main"
    if not url or not str(app.env.doc2path(docname)).endswith(".ipynb"):
        return None
    owner_repo = url.rstrip("/").split("github.com/")[-1]
    return f"https://colab.research.google.com/github/{owner_repo}/blob/{branch}/{docname}.ipynb"


def add_colab_badge(app, doctree, docname) -> None:
    url = colab_url(app, docname)
    if url is None or docname == app.config.root_doc:
        return
    title = next(iter(doctree.findall(nodes.title)), None)
    if title is None:
        return
    badge = (f'<p class="lvm-colab-line"><a class="lvm-colab-badge" href="{escape(url)}" target="_blank" '
             f'rel="noopener">Open in Colab</a> <span class="lvm-colab-note">runs this chapter on a free GPU'
             f'</span></p>')
    section = title.parent
    section.insert(section.index(title) + 1, nodes.raw("", badge, format="html"))


KEEP_ARGUMENT = re.compile(
    r"\\(?:bm|mathbf|mathrm|mathit|operatorname|text|textrm|mathbb|mathcal|boldsymbol)\s*\{([^{}]*)\}")
FRACTION = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
SYMBOLS = {"mid": "|", "le": "≤", "leq": "≤", "ge": "≥", "geq": "≥", "approx": "≈", "int": "∫", "sum": "Σ",
           "prod": "Π", "infty": "∞", "cdot": "·", "times": "×", "to": "→", "sim": "~", "in": "∈", "neq": "≠",
           "propto": "∝", "partial": "∂", "nabla": "∇", "ldots": "…", "dots": "…", "E": "E", "KL": "KL"}
SPACES = re.compile(r"\\[,;:! ]|\\q?quad|\\left|\\right|\\big|\\Big")


def plain_maths(tex: str) -> str:
    """TeX as readable plain text: Greek letters and common symbols as Unicode, markup dropped."""
    for _ in range(3):  # nested \bm{\phi} and the like
        tex = KEEP_ARGUMENT.sub(r"\1", tex)
        tex = FRACTION.sub(r"(\1)/(\2)", tex)
    tex = SPACES.sub(" ", tex)

    def command(match: re.Match) -> str:
        name = match.group(1)
        if name in SYMBOLS:
            return SYMBOLS[name]
        try:
            case = "CAPITAL" if name[0].isupper() else "SMALL"
            return unicodedata.lookup(f"GREEK {case} LETTER {name.upper()}")
        except KeyError:
            return name  # \log, \exp, \max: the word itself

    tex = re.sub(r"\\([A-Za-z]+)", command, tex)
    # A description cut short in the middle of a command leaves a lone backslash: drop it with the braces.
    tex = tex.replace("{", "").replace("}", "").replace("\\", "")
    return re.sub(r"\s+", " ", tex).strip()


DESCRIPTION = re.compile(r'(<meta (?:property="og:description"|name="description") content=")([^"]*)(")')


def plain_descriptions(app, pagename, templatename, context, doctree) -> None:
    tags = context.get("metatags")
    if tags and "\\" in tags:
        context["metatags"] = DESCRIPTION.sub(
            lambda m: m.group(1) + escape(plain_maths(unescape(m.group(2))), quote=True)
                                              + m.group(3), tags)


def setup(app):
    app.connect("doctree-resolved", keep_punctuation_with_maths)
    app.connect("doctree-resolved", add_colab_badge)
    app.connect("html-page-context", plain_descriptions, priority=900)  # after sphinxext-opengraph's (500)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
