"""One version, one author line and one repository address, repeated wherever a reader meets them.

A lecturer pins and cites a release; a fork that moves the course changes _config.yml. Every place that
repeats these facts (pyproject via lvm.__version__, CITATION.cff, the landing page's BibTeX, the README, the
Colab page and each chapter's set-up cell) must agree with its one source, or this test says which does not.
"""

import json
import re
from pathlib import Path

import pytest
import yaml

import lvm
import notebooks

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
CITATION = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
REPOSITORY = CONFIG["repository"]["url"].rstrip("/")
BRANCH = CONFIG["repository"].get("branch", "main")
OWNER, NAME = REPOSITORY.split("github.com/")[1].split("/")
PAGES_URL = f"https://{OWNER}.github.io/{NAME}/"


def landing_bibtex() -> dict[str, str]:
    intro = json.loads((ROOT / "book" / "intro.ipynb").read_text(encoding="utf-8"))
    text = "".join("".join(c["source"]) for c in intro["cells"] if c["cell_type"] == "markdown")
    block = re.search(r"```bibtex\n(.*?)```", text, re.DOTALL)
    assert block, "the landing page has no ```bibtex block under 'How to cite'"
    # A field may wrap over lines (the site shows 76 characters): its value runs to the brace before "," or "}".
    fields = re.findall(r"^\s*(\w+)\s*=\s*\{+(.*?)\}+,?\s*$(?=\n\s*(?:\w+\s*=|\}))", block.group(1),
                        re.MULTILINE | re.DOTALL)
    return {name: " ".join(value.split()) for name, value in fields}


def test_one_version_everywhere():
    assert CITATION["version"] == lvm.__version__
    assert landing_bibtex()["version"] == lvm.__version__
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## [{lvm.__version__}]" in changelog, f"CHANGELOG.md has no section for {lvm.__version__}"
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'dynamic = ["version"]' in pyproject and 'attr = "lvm.__version__"' in pyproject, (
        "pyproject.toml must take its version from lvm.__version__, not repeat it")


def test_one_author_line_everywhere():
    assert [a.get("name") for a in CITATION["authors"]] == [CONFIG["author"]]
    assert landing_bibtex()["author"] == CONFIG["author"]


def test_the_citation_names_this_course():
    bibtex = landing_bibtex()
    assert bibtex["title"] == CITATION["title"]
    assert bibtex["url"] == CITATION["url"] == PAGES_URL
    assert CITATION["repository-code"] == REPOSITORY
    assert REPOSITORY in bibtex["note"]


def test_the_site_address_follows_the_repository():
    assert CONFIG["sphinx"]["config"]["ogp_site_url"] == PAGES_URL


@pytest.mark.parametrize("path", ["README.md", "book/colab.md"])
def test_install_lines_install_from_the_configured_repository(path):
    text = (ROOT / path).read_text(encoding="utf-8")
    installs = re.findall(r"git\+(https://github\.com/[\w.-]+/[\w.-]+)@([\w./-]+)", text)
    assert installs, f"{path} shows no `pip install ... git+URL@branch` line"
    assert set(installs) == {(REPOSITORY, BRANCH)}, f"{path} installs from {sorted(set(installs))}"
    clones = re.findall(r"git clone (\S+)", text)
    assert all(c.rstrip("/") == REPOSITORY for c in clones), f"{path} clones {clones}"


@pytest.mark.parametrize("notebook", sorted((ROOT / "book").glob("*.ipynb")), ids=lambda p: p.name)
def test_every_chapter_installs_lvm_from_the_configured_repository_and_branch(notebook):
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    setup = next("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    assert f'"git+{REPOSITORY}@{BRANCH}"' in setup, f"{notebook.name}'s set-up cell installs from elsewhere"


def test_a_release_pins_the_ref_everywhere_the_course_installs_from():
    # tools/notebooks.py pin REF (the release workflow runs it with the tag): _config.yml's branch, and from it
    # every set-up cell and the install lines shown to readers.
    config = (ROOT / "_config.yml").read_text(encoding="utf-8")
    pinned = notebooks.with_branch(config, "v9.9.9")
    assert yaml.safe_load(pinned)["repository"]["branch"] == "v9.9.9"
    assert pinned.replace("branch: v9.9.9", f"branch: {BRANCH}") == config  # no other line changes
    setup = next("".join(c["source"]) for c in json.loads(
        (ROOT / "book" / "01_latent_variable_models.ipynb").read_text(encoding="utf-8"))["cells"]
        if c["cell_type"] == "code")
    moved = notebooks.install_source(setup, "https://github.com/someone/fork", "v9.9.9")
    assert '"git+https://github.com/someone/fork@v9.9.9"' in moved and REPOSITORY not in moved
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"git+{REPOSITORY}@v9.9.9" in notebooks.with_install_ref(readme, REPOSITORY, "v9.9.9")
    assert f"git+{REPOSITORY}@{BRANCH}" not in notebooks.with_install_ref(readme, REPOSITORY, "v9.9.9")
    with pytest.raises(ValueError, match="ref"):
        notebooks.with_branch(config, "v1; rm -rf /")
    with pytest.raises(ValueError, match="exactly one"):
        notebooks.install_source(setup + setup, REPOSITORY, "main")


def test_check_names_a_set_up_cell_on_another_ref(tmp_path):
    source = ROOT / "book" / "01_latent_variable_models.ipynb"
    copy = tmp_path / source.name
    copy.write_text(source.read_text(encoding="utf-8").replace(f"@{BRANCH}\\\"", "@v0.0.1\\\""), encoding="utf-8")
    assert any("repository and ref" in problem for problem in notebooks.problems(copy))
    assert notebooks.problems(source) == []


def test_otter_assignments_warn_when_the_checkout_is_not_at_the_ref_students_install():
    import otter_assign

    assert otter_assign.checkout_mismatch("HEAD") is None
    # Another commit (or, in a shallow clone, none to compare with): the tests would not match that lvm.
    assert otter_assign.checkout_mismatch("HEAD~1") is not None
    assert "no such ref" in otter_assign.checkout_mismatch("no-such-ref-anywhere")
