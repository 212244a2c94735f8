"""Keep the chapter notebooks in the shape the book, Colab and CI expect.

    python tools/notebooks.py check     # list problems, exit 1 if any (CI runs this)
    python tools/notebooks.py fix       # repair what can be repaired: outputs, macro cell, metadata, set-up cell
    python tools/notebooks.py pin REF   # a release: _config.yml's repository.branch := REF, then fix

Every chapter notebook must
- be stored without outputs (the book build executes it);
- start with a hidden Markdown cell that defines the MathJax macros of ``_config.yml`` for Jupyter and Colab
  (the website gets them from ``_config.yml``; the cell is tagged ``remove-cell`` so the book skips it);
- have, as its first code cell, the set-up cell that installs ``lvm`` on Colab from the repository and ref
  that ``_config.yml`` names (``repository.url`` at ``repository.branch``; ``fix`` writes them in, and
  ``pin REF`` sets the ref for a release, so that its notebooks install the ``lvm`` they were written for);
- fold every answer: a code cell tagged ``solution`` is also tagged ``hide-input``, so the site shows it
  behind a toggle labelled as a solution ("Show the solution (code)"), as the solutions of derivations are
  folded; the checks a student may read stay under the plain "Show code cell source";
- fold the set-up cell's input on the site behind "Show the set-up code", so a chapter opens on its text and
  the one-line status (lvm's version, the device, the run profile) is all a reader sees of it; the cell also
  sets the course's plotting style (``lvm.plot.use_course_style()``).
"""

from __future__ import annotations

import json
import re
import sys
import uuid
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
MACRO_MARK = "lvm-macros"
SETUP_MARK = 'if "google.colab" in sys.modules:'
FOLD_TAG = "hide-input"
STYLE_CALL = "lvm.plot.use_course_style()"
SOLUTION_PROMPTS = {"code_prompt_show": "Show the solution (code)", "code_prompt_hide": "Hide the solution"}
SETUP_PROMPTS = {"code_prompt_show": "Show the set-up code", "code_prompt_hide": "Hide the set-up code"}


def chapter_notebooks() -> list[Path]:
    return sorted(p for p in BOOK.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def macro_cell_source(config_path: Path = ROOT / "_config.yml") -> str:
    """``$\\newcommand...$`` lines built from the macros in ``_config.yml``: one source of truth."""
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    macros = config["sphinx"]["config"]["mathjax3_config"]["tex"]["macros"]
    lines = []
    for name, body in macros.items():
        if isinstance(body, list):
            lines.append(f"\\newcommand{{\\{name}}}[{body[1]}]{{{body[0]}}}")
        else:
            lines.append(f"\\newcommand{{\\{name}}}{{{body}}}")
    # One inline-maths block: rendered by Jupyter and Colab, invisible, and removed from the website.
    return "$" + " ".join(lines) + "$"


def repository_url(config_path: Path = ROOT / "_config.yml") -> str:
    """Where Colab installs ``lvm`` from: the repository the launch buttons point to."""
    return yaml.safe_load(config_path.read_text(encoding="utf-8"))["repository"]["url"]


def repository_ref(config_path: Path = ROOT / "_config.yml") -> str:
    """The branch or tag the launch buttons open and the set-up cells install ``lvm`` from."""
    return str(yaml.safe_load(config_path.read_text(encoding="utf-8"))["repository"]["branch"])


INSTALL = re.compile(r'"git\+[^"@\s]+@[^"\s]+"')


def install_source(setup: str, url: str, ref: str) -> str:
    """The set-up cell's source with its one ``"git+<url>@<ref>"`` made the given repository and ref."""
    if len(INSTALL.findall(setup)) != 1:
        raise ValueError('the set-up cell must hold exactly one "git+<url>@<ref>" to install lvm from')
    return INSTALL.sub(lambda _: f'"git+{url}@{ref}"', setup)


# Pages that show readers a `pip install "lvm-course @ git+<url>@<ref>"` line.
PAGES_WITH_INSTALL_LINES = ["README.md", "book/colab.md"]


def with_install_ref(text: str, url: str, ref: str) -> str:
    """``text`` with every ``git+<url>@<ref>`` of this repository installing from ``ref``."""
    return re.sub(rf"git\+{re.escape(url.rstrip('/'))}@[\w./-]+", f"git+{url.rstrip('/')}@{ref}", text)


def with_branch(config_text: str, ref: str) -> str:
    """``_config.yml``'s text with ``repository.branch`` set to ``ref``, every other line as it was."""
    if not re.fullmatch(r"[A-Za-z0-9._/-]+", ref):
        raise ValueError(f"ref must be a branch or tag name, got {ref!r}")
    new, count = re.subn(r"(?m)^(repository:\n(?:  .*\n)*?  branch: ).*$", lambda m: m.group(1) + ref, config_text)
    if count != 1:
        raise ValueError("_config.yml has no repository.branch line to set")
    return new


def _is_macro_cell(cell: dict) -> bool:
    return cell.get("cell_type") == "markdown" and cell.get("metadata", {}).get("lvm") == MACRO_MARK


def _tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def problems(path: Path) -> list[str]:
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        return [f"not a readable notebook ({exc})"]
    found = []
    cells = nb.get("cells", [])
    if any(c.get("cell_type") == "code" and (c.get("outputs") or c.get("execution_count")) for c in cells):
        found.append("stored with outputs (run `python tools/notebooks.py fix`)")
    if not cells or not _is_macro_cell(cells[0]) or _source(cells[0]) != macro_cell_source():
        found.append("first cell is not the macro cell of _config.yml (run `python tools/notebooks.py fix`)")
    code = [c for c in cells if c.get("cell_type") == "code"]
    unfolded = [c.get("id", "?") for c in code if "solution" in _tags(c) and FOLD_TAG not in _tags(c)]
    if unfolded:
        found.append(f"solution cells {unfolded} are not folded (tag {FOLD_TAG}; run `python tools/notebooks.py fix`)")
    restyled = [c.get("id", "?") for c in code if "set_matplotlib_formats" in _source(c)]
    if restyled:
        found.append(f"cells {restyled} call set_matplotlib_formats, which replaces lvm.plot's figure renderer")
    mislabelled = [c.get("id", "?") for c in code if "solution" in _tags(c) and _prompts(c) != SOLUTION_PROMPTS]
    if mislabelled:
        found.append(f"solution cells {mislabelled} do not fold under a solution label (run `... fix`)")
    if not code or SETUP_MARK not in _source(code[0]):
        found.append("first code cell is not the Colab set-up cell that installs lvm")
    else:
        setup = code[0]
        wanted = f"git+{repository_url()}@{repository_ref()}"
        if f'"{wanted}"' not in _source(setup):
            found.append(f"the set-up cell does not install lvm from _config.yml's repository and ref, {wanted} "
                         "(run `python tools/notebooks.py fix`)")
        if STYLE_CALL not in _source(setup):
            found.append(f"the set-up cell does not call {STYLE_CALL}")
        if "remove-cell" not in _tags(setup) and (FOLD_TAG not in _tags(setup) or _prompts(setup) != SETUP_PROMPTS):
            found.append("the set-up cell's input is not folded under its label (run `... fix`)")
    return found


def _prompts(cell: dict) -> dict:
    mystnb = cell.get("metadata", {}).get("mystnb", {})
    return {key: mystnb.get(key) for key in ("code_prompt_show", "code_prompt_hide")}


def _set_prompts(cell: dict, prompts: dict) -> None:
    cell["metadata"].setdefault("mystnb", {}).update(prompts)


def fix(path: Path) -> None:
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = [c for c in nb["cells"] if not _is_macro_cell(c)]
    for cell in cells:
        cell.setdefault("id", uuid.uuid4().hex[:12])  # nbformat 4.5 requires ids; keep existing ones stable
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
            if "solution" in _tags(cell):
                if FOLD_TAG not in _tags(cell):
                    cell["metadata"]["tags"] = [*_tags(cell), FOLD_TAG]
                _set_prompts(cell, SOLUTION_PROMPTS)
    code = [c for c in cells if c["cell_type"] == "code"]
    if code and SETUP_MARK in _source(code[0]):
        code[0]["source"] = install_source(_source(code[0]), repository_url(), repository_ref())
    if code and SETUP_MARK in _source(code[0]) and "remove-cell" not in _tags(code[0]):
        if FOLD_TAG not in _tags(code[0]):
            code[0]["metadata"]["tags"] = [*_tags(code[0]), FOLD_TAG]
        _set_prompts(code[0], SETUP_PROMPTS)
    macro = {"cell_type": "markdown", "id": "lvm-macros", "metadata": {"lvm": MACRO_MARK, "tags": ["remove-cell"]},
             "source": macro_cell_source()}
    nb["cells"] = [macro, *cells]
    nb["nbformat"], nb["nbformat_minor"] = 4, 5
    metadata = nb.setdefault("metadata", {})
    metadata.pop("jupytext", None)
    metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    metadata["accelerator"] = "GPU"  # Colab opens the notebook on a GPU runtime
    metadata.setdefault("colab", {"provenance": []})
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: list[str]) -> int:
    command_ok = (len(argv) == 1 and argv[0] in ("check", "fix")) or (len(argv) == 2 and argv[0] == "pin")
    if not command_ok:
        print(__doc__)
        return 2
    paths = chapter_notebooks()
    if argv[0] == "pin":
        config = ROOT / "_config.yml"
        config.write_text(with_branch(config.read_text(encoding="utf-8"), argv[1]), encoding="utf-8")
        for page in PAGES_WITH_INSTALL_LINES:  # the install lines shown to readers follow too
            path = ROOT / page
            path.write_text(with_install_ref(path.read_text(encoding="utf-8"), repository_url(), argv[1]),
                            encoding="utf-8")
    if argv[0] in ("fix", "pin"):
        for path in paths:
            fix(path)
    bad = {path: problems(path) for path in paths}
    bad = {path: found for path, found in bad.items() if found}
    for path, found in bad.items():
        for problem in found:
            print(f"{path.relative_to(ROOT)}: {problem}")
    print(f"{len(paths)} notebooks checked, {len(bad)} with problems")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
