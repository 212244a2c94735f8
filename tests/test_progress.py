"""LVM_PROGRESS chooses the progress bar: a widget where it helps, plain text in logs, none in book builds."""

import pytest
import torch

import lvm
from lvm.progress import progress_bar, progress_mode


@pytest.mark.parametrize("value, mode", [(None, "auto"), ("", "auto"), ("plain", "plain"), (" OFF ", "off")])
def test_mode_comes_from_the_environment(monkeypatch, value, mode):
    if value is None:
        monkeypatch.delenv("LVM_PROGRESS", raising=False)
    else:
        monkeypatch.setenv("LVM_PROGRESS", value)
    assert progress_mode() == mode


def test_unknown_mode_is_named_in_the_error(monkeypatch):
    monkeypatch.setenv("LVM_PROGRESS", "widget")
    with pytest.raises(ValueError, match=r"LVM_PROGRESS must be one of \['auto', 'plain', 'off'\], got 'widget'"):
        progress_mode()


def _run_bar(steps=50):
    with progress_bar(total=steps, desc="fit", unit="epoch") as bar:
        for _ in range(steps):
            bar.update(1)


def test_plain_bar_prints_one_line_when_it_opens_and_one_when_it_closes(monkeypatch, capsys):
    monkeypatch.setenv("LVM_PROGRESS", "plain")
    _run_bar()
    out = capsys.readouterr().out
    states = [s for s in out.replace("\r", "\n").splitlines() if s.strip()]
    assert len(states) == 2, states
    assert "0/50" in states[0] and "50/50" in states[1]


def test_off_prints_nothing(monkeypatch, capsys):
    monkeypatch.setenv("LVM_PROGRESS", "off")
    _run_bar()
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_fit_follows_the_switch(monkeypatch, capsys):
    monkeypatch.setenv("LVM_PROGRESS", "plain")
    model = lvm.VAE(x_dim=6, z_dim=2, hidden=(8,))
    x = torch.rand(32, 6, generator=torch.Generator().manual_seed(0)).round()
    lvm.fit(model, x, epochs=3, batch_size=16, device="cpu", seed=0)
    states = [s for s in capsys.readouterr().out.replace("\r", "\n").splitlines() if s.strip()]
    assert len(states) == 2 and "3/3" in states[-1] and "train" in states[-1], states
    lvm.fit(lvm.VAE(x_dim=6, z_dim=2, hidden=(8,)), x, epochs=2, device="cpu", seed=0, progress=False)
    assert capsys.readouterr().out == ""
