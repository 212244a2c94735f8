"""Tests of lvm.checkpoint: round trips, atomic writes (a failed save leaves the old file and no temp files),
loading with weights_only=True, and the contents of the checkpoints lvm.fit writes."""

from __future__ import annotations

import pickle
import re

import numpy as np
import pytest
import torch

import lvm
from lvm import checkpoint as ckpt


class NotATensor:
    """An arbitrary class: pickle could run code while rebuilding it, so weights_only loading must refuse it."""

    def __init__(self, value):
        self.value = value


def state(version: int) -> dict:
    return {"version": version, "weights": torch.full((3, 2), float(version)), "names": ["a", "b"],
            "nested": {"step": torch.tensor(version), "lr": 1e-3}}


def test_round_trip_and_parent_directory_is_created(tmp_path):
    path = tmp_path / "deep" / "dir" / "model.pt"
    assert lvm.save_checkpoint(path, state(1)) == path
    loaded = lvm.load_checkpoint(path)
    assert loaded["version"] == 1 and loaded["names"] == ["a", "b"] and loaded["nested"]["lr"] == 1e-3
    assert torch.equal(loaded["weights"], torch.full((3, 2), 1.0))
    assert torch.equal(loaded["nested"]["step"], torch.tensor(1))
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.pt"]  # no temp file left behind


def test_overwriting_replaces_the_old_checkpoint(tmp_path):
    path = tmp_path / "model.pt"
    lvm.save_checkpoint(path, state(1))
    lvm.save_checkpoint(str(path), state(2))
    assert lvm.load_checkpoint(path)["version"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_a_save_that_fails_while_pickling_leaves_the_old_checkpoint(tmp_path):
    path = tmp_path / "model.pt"
    lvm.save_checkpoint(path, state(1))
    with pytest.raises((pickle.PicklingError, AttributeError)):  # how pickle refuses a local lambda
        lvm.save_checkpoint(path, {"version": 2, "fn": lambda: None})  # lambdas cannot be pickled
    assert lvm.load_checkpoint(path)["version"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_a_save_that_dies_half_way_through_writing_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    lvm.save_checkpoint(path, state(1))
    good_bytes = path.read_bytes()

    def dies_half_way(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a zip file")  # what a killed process would leave in the file it wrote
        raise OSError("disk full")

    monkeypatch.setattr(ckpt.torch, "save", dies_half_way)
    with pytest.raises(OSError, match="disk full"):
        lvm.save_checkpoint(path, state(2))
    monkeypatch.undo()
    assert path.read_bytes() == good_bytes
    assert lvm.load_checkpoint(path)["version"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_the_rename_is_the_last_step(tmp_path, monkeypatch):
    # If the rename itself fails, the target is untouched and the temp file is removed.
    path = tmp_path / "model.pt"
    lvm.save_checkpoint(path, state(1))

    def refuse(src, dst):
        raise PermissionError("rename refused")

    monkeypatch.setattr(ckpt.os, "replace", refuse)
    with pytest.raises(PermissionError):
        lvm.save_checkpoint(path, state(2))
    monkeypatch.undo()
    assert lvm.load_checkpoint(path)["version"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_loading_refuses_arbitrary_objects(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"payload": NotATensor(3)}, path)  # written by plain torch.save, not save_checkpoint
    assert torch.load(path, weights_only=False)["payload"].value == 3  # full unpickling would rebuild it...
    with pytest.raises(ValueError, match="path .* holds Python objects other than tensors") as info:
        lvm.load_checkpoint(path)  # ...weights_only loading does not
    assert "weights_only" not in str(info.value)  # and lvm never suggests turning it off


def _truncated(directory):
    path = directory / "truncated.pt"
    lvm.save_checkpoint(path, state(1))
    path.write_bytes(path.read_bytes()[:100])
    return path


@pytest.mark.parametrize("make, error, message", [
    (lambda d: "", ValueError, "path must be a file path .* got an empty string"),
    (lambda d: d, ValueError, "path .* is a directory; give a file inside it"),
    (lambda d: d / "missing.pt", FileNotFoundError, "path: there is no checkpoint file"),
    (_truncated, ValueError, "truncated or damaged"),
    (lambda d: (d / "t.pt").write_text("not a checkpoint") and d / "t.pt", ValueError, "truncated or damaged"),
    (lambda d: (d / "e.pt").write_bytes(b"") is not None and d / "e.pt", ValueError, "truncated or damaged"),
    (lambda d: torch.save([1, 2], d / "l.pt") or d / "l.pt", ValueError, "holds a list, not the dict"),
])
def test_unusable_files_are_explained(tmp_path, make, error, message):
    with pytest.raises(error, match=message) as info:
        lvm.load_checkpoint(make(tmp_path))
    assert "weights_only" not in str(info.value)


@pytest.mark.parametrize("path, message", [("", "empty string"), (".", "is a directory")])
def test_saving_to_an_empty_path_or_a_directory_is_refused(path, message):
    with pytest.raises(ValueError, match=message):
        lvm.save_checkpoint(path, state(1))


def test_loading_passes_weights_only_and_maps_to_the_cpu(tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    lvm.save_checkpoint(path, state(1))
    seen = {}
    real_load = torch.load

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(ckpt.torch, "load", spy)
    lvm.load_checkpoint(path)
    assert seen["weights_only"] is True and seen["map_location"] == "cpu"


@pytest.mark.parametrize("call, name", [
    (lambda p: lvm.save_checkpoint(123, {}), "path"),
    (lambda p: lvm.save_checkpoint(p / "x.pt", [1, 2]), "state"),
    (lambda p: lvm.load_checkpoint(None), "path"),
])
def test_bad_arguments(tmp_path, call, name):
    with pytest.raises(ValueError, match=name):
        call(tmp_path)


def test_fit_writes_a_complete_weights_only_checkpoint(tmp_path, small_vae, binary_data):
    model = small_vae(x_dim=8, hidden=(8,))
    x = binary_data(40, 8, p=0.5)
    path = tmp_path / "fit.pt"
    history = lvm.fit(model, x, epochs=2, batch_size=16, seed=0, progress=False, device="cpu", checkpoint=path)
    saved = lvm.load_checkpoint(path)
    assert {"epoch", "model", "optimizer", "rng_cpu", "batch_generator", "history"} <= set(saved)
    assert saved["epoch"] == 2 and saved["history"] == history.as_dict()
    for k, v in model.state_dict().items():
        assert torch.equal(saved["model"][k], v)
    assert saved["rng_cpu"].dtype == torch.uint8
    assert [p.name for p in tmp_path.iterdir()] == ["fit.pt"]


@pytest.mark.parametrize("key", ["device_type", "rng_cpu", "batch_generator"])
def test_resuming_from_a_checkpoint_missing_a_part_is_explained(tmp_path, small_vae, binary_data, key):
    # Without device_type the resume raised a bare KeyError after loading the weights.
    model = small_vae(x_dim=8, hidden=(8,))
    x = binary_data(40, 8, p=0.5)
    path = tmp_path / "fit.pt"
    lvm.fit(model, x, epochs=1, batch_size=16, seed=0, progress=False, device="cpu", checkpoint=path)
    state = lvm.load_checkpoint(path)
    del state[key]
    lvm.save_checkpoint(path, state)
    with pytest.raises(ValueError, match=rf"does not belong to this model or was not written by lvm.fit: '{key}'"):
        lvm.fit(model, x, epochs=2, batch_size=16, seed=0, progress=False, device="cpu", checkpoint=path)


@pytest.mark.parametrize("state, shown", [
    ({"weights": np.ones(3)}, "'weights': ndarray"),
    ({"model": torch.nn.Linear(2, 2)}, "'model': Linear"),
    ({"history": {"losses": [np.float64(1.0)]}}, "inside its lists or dicts"),
])
def test_a_state_that_could_not_be_loaded_is_not_written(tmp_path, state, shown):
    # save_checkpoint wrote it, then load_checkpoint refused it as "not written by lvm".
    path = tmp_path / "ckpt.pt"
    lvm.save_checkpoint(path, {"epoch": 1})
    with pytest.raises(ValueError, match=f"state must hold only tensors.*{re.escape(shown)}"):
        lvm.save_checkpoint(path, state)
    assert lvm.load_checkpoint(path) == {"epoch": 1}  # the old checkpoint is kept
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]  # no temporary file left
