"""Serve the few npm packages the site uses from the site itself: it must work offline, with no CDN.

sphinx-tippy (hover previews of equations, figures and citations) loads Popper and tippy.js from unpkg.com by
default; here ``tippy_js`` points at copies in ``_static/vendor/``, taken from the ``node_modules`` folder that
``npm install`` (package.json) fills. The folder is looked for beside the book and above it (the student
edition is built from a copy inside ``_build/``), or named by ``LVM_NODE_MODULES``. Without it the build stops
with a sentence saying how to get it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from sphinx.errors import ExtensionError

VENDOR_FILES = {
    "popper.min.js": "@popperjs/core/dist/umd/popper.min.js",
    "tippy-bundle.umd.min.js": "tippy.js/dist/tippy-bundle.umd.min.js",
}


def node_modules(start: Path) -> Path:
    if os.environ.get("LVM_NODE_MODULES"):
        return Path(os.environ["LVM_NODE_MODULES"])
    for folder in (start, *start.parents):
        if (folder / "node_modules").is_dir():
            return folder / "node_modules"
    raise ExtensionError(f"no node_modules folder in {start} or above it: run `npm install` in the repository "
                         f"(it reads package.json), or set LVM_NODE_MODULES")


def use_local_copies(app, config) -> None:
    folder = node_modules(Path(app.confdir))
    missing = [path for path in VENDOR_FILES.values() if not (folder / path).exists()]
    if missing:
        raise ExtensionError(f"{folder} lacks {missing}: run `npm install` in the repository (package.json)")
    config.tippy_js = tuple(f"vendor/{name}" for name in VENDOR_FILES)


def copy_vendor_files(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    folder = node_modules(Path(app.confdir))
    target = Path(app.outdir) / "_static" / "vendor"
    target.mkdir(parents=True, exist_ok=True)
    for name, path in VENDOR_FILES.items():
        shutil.copyfile(folder / path, target / name)


def setup(app):
    app.connect("config-inited", use_local_copies, priority=900)
    app.connect("build-finished", copy_vendor_files)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
