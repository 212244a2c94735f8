"""Write the intersphinx inventories of Python, IPython, Matplotlib, NumPy and PyTorch that the book links to, as
small subsets.

The API page (``book/api.md``) names ``torch.Tensor``, ``int``, ``os.PathLike`` and the like in the
parameter and return types that autodoc takes from the annotations. With ``sphinx.ext.intersphinx`` those
names become links to the projects' own documentation, and a nitpicky build (``jupyter-book build . -n -W``)
fails on any name that resolves nowhere.

Intersphinx normally downloads each project's ``objects.inv``. The book is built offline (CI has no network
either), so ``_config.yml`` points intersphinx at files in ``book/_inventories/`` instead. Those files are
*subsets*: they list only the objects our docs reference, each with the object type and the URL it has in
the project's real inventory (for example ``py:class torch.Tensor`` → ``tensors.html#torch.Tensor`` under
https://pytorch.org/docs/stable/). Nothing is invented: every entry exists under the same name in the real
inventory, so the links lead to the real pages.

When the docs reference a new outside object, the nitpicky build warns ``py:class reference target not
found: ...``: add the object to ``INVENTORIES`` below, with the URL of its entry in the real docs, and
rerun this script. On a machine with network access you can instead point intersphinx at the real
inventories, by replacing each local path in ``intersphinx_mapping`` with ``None`` (then Sphinx fetches
``<base URL>/objects.inv``); that covers every object of the three projects, but the build then needs
the network.

Regenerate (needs the ``sphobjinv`` package, which is only used here, so it is not in requirements.txt)::

    pip install sphobjinv
    python tools/make_inventories.py          # rewrites book/_inventories/*.inv
    python tools/make_inventories.py --check  # exits 1 if a committed file differs from this list

To read a file: ``sphobjinv convert plain book/_inventories/torch-objects.inv -``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import sphobjinv as soi

ROOT = Path(__file__).resolve().parents[1]
# Under book/ so that the student edition (tools/student_edition.py copies book/) has them too; Sphinx
# ignores them there, as .inv is not a source suffix.
OUT_DIR = ROOT / "book" / "_inventories"

# name -> (project, base URL, [(object name, domain:role, URI relative to the base URL), ...]).
# The base URL goes into _config.yml's intersphinx_mapping; the URIs are those of the real inventories.
INVENTORIES: dict[str, tuple[str, str, list[tuple[str, str, str]]]] = {
    "python": ("Python", "https://docs.python.org/3/", [
        ("None", "py:data", "library/constants.html#None"),
        ("bool", "py:class", "library/functions.html#bool"),
        ("int", "py:class", "library/functions.html#int"),
        ("float", "py:class", "library/functions.html#float"),
        ("str", "py:class", "library/stdtypes.html#str"),
        ("tuple", "py:class", "library/stdtypes.html#tuple"),
        ("list", "py:class", "library/stdtypes.html#list"),
        ("dict", "py:class", "library/stdtypes.html#dict"),
        ("ValueError", "py:exception", "library/exceptions.html#ValueError"),
        ("FileNotFoundError", "py:exception", "library/exceptions.html#FileNotFoundError"),
        ("os.PathLike", "py:class", "library/os.html#os.PathLike"),
        ("pathlib.Path", "py:class", "library/pathlib.html#pathlib.Path"),
        ("typing.Any", "py:data", "library/typing.html#typing.Any"),
        ("typing.Callable", "py:data", "library/typing.html#typing.Callable"),
        ("typing.Literal", "py:data", "library/typing.html#typing.Literal"),
        ("typing.Mapping", "py:class", "library/typing.html#typing.Mapping"),
        ("typing.Sequence", "py:class", "library/typing.html#typing.Sequence"),
        # The annotations say collections.abc (ruff's UP035), which the Python docs document as classes.
        ("collections.abc.Callable", "py:class", "library/collections.abc.html#collections.abc.Callable"),
        ("collections.abc.Iterable", "py:class", "library/collections.abc.html#collections.abc.Iterable"),
        ("collections.abc.Iterator", "py:class", "library/collections.abc.html#collections.abc.Iterator"),
        ("collections.abc.Mapping", "py:class", "library/collections.abc.html#collections.abc.Mapping"),
        ("collections.abc.Sequence", "py:class", "library/collections.abc.html#collections.abc.Sequence"),
    ]),
    "matplotlib": ("Matplotlib", "https://matplotlib.org/stable/", [
        ("matplotlib.figure.Figure", "py:class", "api/_as_gen/matplotlib.figure.Figure.html#matplotlib.figure.Figure"),
        ("matplotlib.figure.SubFigure", "py:class",
         "api/_as_gen/matplotlib.figure.SubFigure.html#matplotlib.figure.SubFigure"),
        ("matplotlib.axes.Axes", "py:class", "api/_as_gen/matplotlib.axes.Axes.html#matplotlib.axes.Axes"),
    ]),
    "ipython": ("IPython", "https://ipython.readthedocs.io/en/stable/", [
        ("IPython.display.Markdown", "py:class", "api/generated/IPython.display.html#IPython.display.Markdown"),
    ]),
    "numpy": ("NumPy", "https://numpy.org/doc/stable/", [
        ("numpy.ndarray", "py:class", "reference/generated/numpy.ndarray.html#numpy.ndarray"),
    ]),
    "torch": ("PyTorch", "https://pytorch.org/docs/stable/", [
        ("torch.Tensor", "py:class", "tensors.html#torch.Tensor"),
        ("torch.device", "py:class", "tensor_attributes.html#torch.device"),
        ("torch.dtype", "py:class", "tensor_attributes.html#torch.dtype"),
        ("torch.Generator", "py:class", "generated/torch.Generator.html#torch.Generator"),
        ("torch.nn.Module", "py:class", "generated/torch.nn.Module.html#torch.nn.Module"),
        ("torch.optim.Optimizer", "py:class", "optim.html#torch.optim.Optimizer"),
        # The same class under its defining module: autodoc writes this name when it evaluates an annotation
        # such as fit's scheduler type. It links to the page of torch.optim.Optimizer.
        ("torch.optim.optimizer.Optimizer", "py:class", "optim.html#torch.optim.Optimizer"),
        ("torch.random.fork_rng", "py:function", "random.html#torch.random.fork_rng"),
        ("torch.optim.lr_scheduler.LRScheduler", "py:class",
         "generated/torch.optim.lr_scheduler.LRScheduler.html#torch.optim.lr_scheduler.LRScheduler"),
        ("torch.distributions.distribution.Distribution", "py:class",
         "distributions.html#torch.distributions.distribution.Distribution"),
        ("torch.distributions.categorical.Categorical", "py:class",
         "distributions.html#torch.distributions.categorical.Categorical"),
        ("torch.distributions.independent.Independent", "py:class",
         "distributions.html#torch.distributions.independent.Independent"),
        ("torch.distributions.mixture_same_family.MixtureSameFamily", "py:class",
         "distributions.html#torch.distributions.mixture_same_family.MixtureSameFamily"),
        ("torch.distributions.multivariate_normal.MultivariateNormal", "py:class",
         "distributions.html#torch.distributions.multivariate_normal.MultivariateNormal"),
        ("torch.distributions.normal.Normal", "py:class", "distributions.html#torch.distributions.normal.Normal"),
    ]),
}


def path_of(name: str) -> Path:
    return OUT_DIR / f"{name}-objects.inv"


def inventory_bytes(project: str, entries: list[tuple[str, str, str]]) -> bytes:
    """The zlib-compressed objects.inv (format version 2) listing ``entries``, sorted for stable output."""
    inv = soi.Inventory()
    inv.project = project
    inv.version = ""  # a subset pinned to no release: the links point at the "stable"/"3" docs
    for name, domain_role, uri in sorted(entries):
        domain, role = domain_role.split(":")
        # priority 1: the default for an object's own entry; "-": the display name is the object's name
        inv.objects.append(soi.DataObjStr(name=name, domain=domain, role=role, priority="1", uri=uri,
                                          dispname="-"))
    return soi.compress(inv.data_file(contract=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a committed inventory differs from INVENTORIES")
    args = parser.parse_args(argv)
    stale = []
    for name, (project, _, entries) in INVENTORIES.items():
        data, path = inventory_bytes(project, entries), path_of(name)
        if args.check:
            if not path.exists() or path.read_bytes() != data:
                stale.append(path)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        print(f"{path.relative_to(ROOT)}: {len(entries)} objects of {project}")
    for path in stale:
        print(f"{path.relative_to(ROOT)} is out of date: run python tools/make_inventories.py",
              file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
