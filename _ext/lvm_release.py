"""Every page's footer says which release of the course it shows, when it was built, and who maintains it;
each chapter's download is the executed notebook.

The version is ``lvm.__version__`` (read from ``lvm/__init__.py`` without importing torch) and the names are
``_config.yml``'s ``author``: one place each. The build date honours ``SOURCE_DATE_EPOCH``, so a rebuild of a
tagged release can reproduce its pages.
"""

from __future__ import annotations

import datetime
import html
import json
import os
import re
from pathlib import Path

VERSION = re.compile(r'^__version__ = "([^"]+)"$', re.MULTILINE)


def course_version(root: Path) -> str:
    found = VERSION.search((root / "lvm" / "__init__.py").read_text(encoding="utf-8"))
    if found is None:
        raise ValueError(f"no __version__ = \"...\" line in {root / 'lvm' / '__init__.py'}")
    return found.group(1)


def build_date() -> datetime.date:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        return datetime.datetime.fromtimestamp(int(epoch), tz=datetime.timezone.utc).date()
    return datetime.date.today()


def footer(version: str, date: datetime.date, author: str, repository: str | None, branch: str) -> str:
    changes = (f' <a href="{html.escape(repository.rstrip("/"))}/blob/{html.escape(branch)}/CHANGELOG.md">'
               "What changed</a>." if repository else "")
    return (f'<p class="lvm-release">Version {html.escape(version)}, built {date.isoformat()}. '
            f"Maintained by {html.escape(author)}.{changes}</p>")


def add_release_footer(app, config) -> None:
    root = Path(app.confdir)
    while not (root / "lvm" / "__init__.py").exists() and root != root.parent:
        root = root.parent  # the student edition is built from _build/student, two levels down
    options = dict(config.html_theme_options or {})
    options["extra_footer"] = footer(course_version(root), build_date(), config.author,
                                     options.get("repository_url"), options.get("repository_branch") or "main")
    config.html_theme_options = options


def executed_downloads(app, exception) -> None:
    """Each chapter's ".ipynb" download gives the executed notebook, with its figures and printed numbers,
    not the bare source (which the repository and the Colab button already offer)."""
    if exception is not None or app.builder.format != "html":
        return
    executed = Path(app.outdir).parent / "jupyter_execute"
    for docname in app.env.found_docs:
        source, run = Path(app.outdir) / "_sources" / f"{docname}.ipynb", executed / f"{docname}.ipynb"
        if source.exists() and run.exists():
            notebook = json.loads(run.read_text(encoding="utf-8"))
            for cell in notebook.get("cells", []):
                if cell.get("outputs"):
                    cell["outputs"] = without_repeated_streams(cell["outputs"])
            source.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def without_repeated_streams(outputs: list[dict]) -> list[dict]:
    """A cell's outputs without the stream outputs that an earlier one of the same name already holds.

    myst-nb merges a cell's stdout (``nb_merge_streams``) into its first stdout output in place, and the executed
    notebook it saves keeps the later outputs too: a table printed in two calls showed twice in the download.
    """
    first: dict[str, str] = {}
    kept = []
    for output in outputs:
        if output.get("output_type") == "stream":
            text = "".join(output.get("text", ""))
            name = output.get("name", "stdout")
            if name in first and text.strip() and text.strip() in first[name]:
                continue
            first.setdefault(name, text)
        kept.append(output)
    return kept


def setup(app):
    app.connect("config-inited", add_release_footer)
    app.connect("build-finished", executed_downloads)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
