"""The Colab path: a chapter's first cell installs ``lvm`` into an environment that has never seen it.

A fresh virtual environment stands in for a Colab runtime: it gets torch first (Colab ships its own), then
runs chapter 1's set-up cell with ``google.colab`` present, so the cell takes its install branch. The only
change to the cell is the git source: this clone at its current commit (``git+file://...@<sha>``) instead of
the public repository, so the test checks the code under test, offline from GitHub. Then the chapter's
second cell runs. Selected with ``-m colab`` (CI does): it installs packages and takes a minute or two.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.colab

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = ROOT / "book" / "01_latent_variable_models.ipynb"
TORCH = "torch==2.13.0"  # the CPU wheel CI installs; Colab brings its own CUDA build


def _code_cells(path: Path) -> list[str]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]


def test_first_cells_install_lvm_from_git_and_run(tmp_path):
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        pytest.fail(f"{ROOT} is not a git clone; the Colab path installs lvm from git ({head.stderr.strip()})")
    repository = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["repository"]["url"]
    setup, second = _code_cells(CHAPTER)[:2]
    public_source = f"git+{repository}@"
    assert public_source in setup, "the set-up cell must install from the repository _config.yml names"
    local_setup = setup.replace(public_source + "main", f"git+file://{ROOT}@{head.stdout.strip()}")
    assert local_setup != setup, "the set-up cell installs from a branch other than main"

    venv = tmp_path / "colab"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    # Colab has a recent pip (the pip of Python 3.11's ensurepip cannot parse a `name @ git+file://` line).
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", TORCH], check=True)

    script = tmp_path / "run_cells.py"
    script.write_text(textwrap.dedent(f"""
        import sys, types
        sys.modules["google"] = types.ModuleType("google")
        sys.modules["google.colab"] = types.ModuleType("google.colab")  # what Colab's runtime has loaded
        try:
            import lvm
        except ImportError:
            print("lvm is not installed yet, as on a fresh runtime")
        else:
            raise SystemExit(f"lvm was importable before the set-up cell ran: {{lvm.__file__}}")
        namespace = {{}}
        exec(compile({local_setup!r}, "cell-1", "exec"), namespace)
        exec(compile({second!r}, "cell-2", "exec"), namespace)
        print("lvm from", namespace["lvm"].__file__)
    """), encoding="utf-8")
    # Run from an empty folder, so that `import lvm` cannot find this clone's source tree.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PATH=f"{venv / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}", MPLBACKEND="Agg", LVM_PROFILE="quick")
    run = subprocess.run([str(python), str(script)], cwd=tmp_path, capture_output=True, text=True, env=env)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "lvm is not installed yet" in output
    assert "| device: cpu" in output and "| profile: quick" in output, output
    assert f"lvm from {venv}" in output, output
