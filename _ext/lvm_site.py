"""The site's Sphinx fixes: every page loads each script once and no inert widget state, the bibliography's
list is a valid list, and search results show typeset maths.

sphinx-thebe adds its configuration as an inline script after the HTML builder has started; Sphinx 7.4 then
keeps two copies (one registered under the name ``None``, one under ``''``), and the second declaration of
``const THEBE_JS_URL`` is a JavaScript error on every page. This drops repeated scripts from each page.
"""

from __future__ import annotations

WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def _script_key(script) -> tuple:
    attributes = getattr(script, "attributes", {})
    return (getattr(script, "filename", str(script)) or "", tuple(sorted(attributes.items())))


def drop_repeated_scripts(app, pagename, templatename, context, doctree) -> None:
    seen, kept = set(), []
    for script in context.get("script_files", []):
        key = _script_key(script)
        if key not in seen:
            seen.add(key)
            kept.append(script)
    context["script_files"] = kept


def plain_citation_list(app, pagename, templatename, context, doctree) -> None:
    """Sphinx marks the bibliography ``role="list"`` but its entries ``role="doc-biblioentry"``, which is not
    a list item: screen readers (and axe-core, as a critical error) then find an empty list. Without the role
    it is a plain container of bibliography entries."""
    body = context.get("body")
    if body and 'role="list" class="citation-list"' in body:
        context["body"] = body.replace('<div role="list" class="citation-list">', '<div class="citation-list">')


def drop_widget_state(app, pagename, templatename, context, doctree) -> None:
    """The executed notebooks carry their widgets' state, which myst-nb embeds in the page (160 KB on chapter
    1's). Without the ipywidgets JavaScript (``nb_ipywidgets_js: {}``: no CDN, no kernel) nothing reads it, and
    every explorer has a static figure beside it: the page is lighter without it."""
    context["script_files"] = [script for script in context.get("script_files", [])
                               if getattr(script, "attributes", {}).get("type") != WIDGET_STATE]


def typeset_search_snippets(app, pagename, templatename, context, doctree) -> None:
    """The search page rewrites its snippets so that their maths is typeset (``_static/lvm-search.js``).

    Deferred, it runs after the page's own ``searchtools.js`` has defined ``Search`` and before the search starts.
    """
    if pagename == "search":
        app.add_js_file("lvm-search.js", loading_method="defer")


def setup(app):
    # MathJax on every page, the search page included: its snippets hold maths from the pages they quote.
    app.set_html_assets_policy("always")
    app.connect("html-page-context", typeset_search_snippets)
    app.connect("html-page-context", drop_widget_state, priority=900)  # after myst-nb adds it (500)
    app.connect("html-page-context", drop_repeated_scripts)
    app.connect("html-page-context", plain_citation_list)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
