"""Tests of lvm.resume: a checkpoint remembers the objective that trained it (name and
settings), a resume with another one is refused with a sentence that names both unless
the caller says it is meant (new_objective_ok), and checkpoints written before
objectives were recorded still resume, with a warning that says what cannot be
checked."""

from __future__ import annotations

import re

import pytest
import torch

import lvm
from lvm.resume import FORMAT, fingerprint

FIT = dict(batch_size=16, lr=3e-3, seed=0, progress=False, device="cpu")
ELBO_8 = ("elbo(beta=8.0, free_bits=0.0, warmup_epochs=0, n_samples=1)")


@pytest.fixture
def run(tmp_path, small_vae, binary_data):
    """A VAE trained for one epoch under the β = 8 ELBO, with its checkpoint."""
    x = binary_data(48, 16, p=0.4)
    path = tmp_path / "run.pt"
    lvm.fit(small_vae(hidden=(8,)), x, epochs=1, objective=lvm.objectives.elbo(beta=8),
            checkpoint=path, **FIT)
    return x, path


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_the_checkpoint_records_the_objective_and_its_settings(run):
    _, path = run
    saved = lvm.load_checkpoint(path)
    assert saved["format"] == FORMAT == 4
    assert saved["objective"] == {"name": "elbo", "settings": {
        "beta": 8.0, "free_bits": 0.0, "warmup_epochs": 0, "n_samples": 1}}
    assert saved["history"]["objective"] == [saved["objective"]]


def test_resuming_with_another_objective_is_refused_naming_both(run, small_vae):
    # A run checkpointed under a β = 8 ELBO and resumed with IWAE-16 went on without a
    # word, and its history mixed the two quantities in one list.
    x, path = run
    model = small_vae(hidden=(8,), seed=3)
    before, saved = weights(model), path.read_bytes()
    with pytest.raises(ValueError) as info:
        lvm.fit(model, x, epochs=2, objective=lvm.objectives.iwae(16), checkpoint=path,
                **FIT)
    message = str(info.value)
    assert f"was trained with the objective {ELBO_8}" in message
    assert "this call asks for iwae(k=16)" in message
    assert "new_objective_ok=True" in message
    # Refused before anything of the old run was loaded into the model.
    assert all(torch.equal(v, before[k]) for k, v in weights(model).items())
    assert path.read_bytes() == saved


@pytest.mark.parametrize("objective, asked", [
    (lvm.objectives.elbo(beta=4), "elbo(beta=4.0, "),  # same name, other settings
    (None, "elbo(beta=1.0, "),  # the default is the plain ELBO, a named objective too
])
def test_other_settings_of_the_same_objective_are_refused(run, small_vae, objective,
                                                          asked):
    x, path = run
    said = "this call asks for " + re.escape(asked)
    with pytest.raises(ValueError, match=said):
        lvm.fit(small_vae(hidden=(8,)), x, epochs=2, objective=objective,
                checkpoint=path, **FIT)


def test_the_same_objective_built_again_resumes(run, small_vae, capsys):
    x, path = run
    history = lvm.fit(small_vae(hidden=(8,)), x, epochs=2, checkpoint=path,
                      objective=lvm.objectives.elbo(beta=8.0), **FIT)  # 8.0 is 8
    assert history.epoch == [1, 2]
    assert "with the objective" not in capsys.readouterr().out  # no change to announce


def test_a_new_objective_that_is_meant_trains_a_second_phase(run, small_vae, capsys):
    x, path = run
    history = lvm.fit(small_vae(hidden=(8,)), x, epochs=3, checkpoint=path,
                      objective=lvm.objectives.iwae(16), new_objective_ok=True, **FIT)
    iwae_16 = {"name": "iwae", "settings": {"k": 16}}
    assert history.epoch == [1, 2, 3]
    assert [r["name"] for r in history.objective] == ["elbo", "iwae", "iwae"]
    assert history.objective[1:] == [iwae_16, iwae_16]
    assert lvm.load_checkpoint(path)["objective"] == iwae_16  # the next resume's check
    out = capsys.readouterr().out
    assert f"with the objective iwae(k=16) (it was trained with {ELBO_8})" in out


def test_a_plain_function_is_recognised_by_its_name(tmp_path, small_vae, binary_data):
    # A notebook defines its objective again after a restart: a new function object, the
    # same __qualname__, so the same objective. Another function is another objective.
    x, path = binary_data(32, 16), tmp_path / "f.pt"

    def weighted(model, batch, epoch):
        return 0.5 * lvm.elbo(model, batch, model.encode(batch))

    kw = dict(FIT, checkpoint=path)
    lvm.fit(small_vae(hidden=(8,)), x, epochs=1, objective=weighted, **kw)
    first = weighted

    def weighted(model, batch, epoch):
        return 0.5 * lvm.elbo(model, batch, model.encode(batch))

    assert weighted is not first
    lvm.fit(small_vae(hidden=(8,)), x, epochs=2, objective=weighted, **kw)

    def other(model, batch, epoch):
        return lvm.elbo(model, batch, model.encode(batch))

    name = "test_a_plain_function_is_recognised_by_its_name.<locals>"
    said = (rf"with the objective {name}.weighted\(\), "
            rf"and this call asks for {name}.other\(\)")
    with pytest.raises(ValueError, match=said):
        lvm.fit(small_vae(hidden=(8,)), x, epochs=3, objective=other, **kw)


def old_checkpoint(path, format: int = 3) -> None:
    """Rewrite a checkpoint as lvm wrote it before it recorded objectives."""
    state = lvm.load_checkpoint(path)
    del state["objective"]
    history = state["history"]
    history["train_elbo"] = history.pop("train_objective")
    del history["objective"]
    lvm.save_checkpoint(path, state | {"format": format})


def test_a_checkpoint_from_before_objectives_resumes_and_says_what_it_cannot_check(
        run, small_vae):
    x, path = run
    old_checkpoint(path)
    with pytest.warns(UserWarning, match=r"written before lvm recorded the objective, "
                                         r"so fit cannot check that iwae\(k=16\) is"):
        history = lvm.fit(small_vae(hidden=(8,)), x, epochs=2, checkpoint=path,
                          objective=lvm.objectives.iwae(16), **FIT)
    assert history.epoch == [1, 2]
    assert history.objective == [None, {"name": "iwae", "settings": {"k": 16}}]
    assert len(history.train_objective) == 2
    assert history.train_elbo is history.train_objective
    assert lvm.load_checkpoint(path)["format"] == FORMAT  # rewritten in today's format


def test_new_objective_ok_silences_the_warning_of_an_old_checkpoint(run, small_vae):
    import warnings

    x, path = run
    old_checkpoint(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        history = lvm.fit(small_vae(hidden=(8,)), x, epochs=2, checkpoint=path,
                          new_objective_ok=True, **FIT)
    assert history.objective[0] is None and history.objective[1]["name"] == "elbo"


@pytest.mark.parametrize("value", [1, "yes", None])
def test_new_objective_ok_must_be_a_bool(small_vae, binary_data, value):
    with pytest.raises(ValueError, match="new_objective_ok must be True or False"):
        lvm.fit(small_vae(), binary_data(8, 16), epochs=1, new_objective_ok=value,
                **FIT)


def test_fingerprints_tell_data_apart(binary_data):
    x = binary_data(8, 16)
    y = torch.arange(8)
    same = fingerprint((x.clone(),))
    assert fingerprint((x,)) == same
    assert fingerprint((1 - x,)) != same
    pair = fingerprint((x, y))
    assert isinstance(pair, list) and pair[0] == same
    assert pair[1]["dtype"] == "torch.int64"
