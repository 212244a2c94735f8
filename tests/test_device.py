"""Tests of lvm.device's checks for training: a device this machine has, autocast only
where it applies, and sums of an epoch in a precision the device has."""

from __future__ import annotations

import contextlib
import warnings

import pytest
import torch

from lvm.device import autocast, sum_dtype, training_device


def test_the_cpu_is_a_training_device_and_none_picks_one():
    assert training_device("cpu") == torch.device("cpu")
    assert training_device(None).type in ("cpu", "cuda", "mps")


@pytest.mark.parametrize("device, said", [
    ("gpu9", "device must be None, 'cpu', 'cuda', 'mps' or a torch.device"),
    (3.5, "device must be None"),
    ("meta", "device must be None, 'cpu', 'cuda' or 'mps', got 'meta'"),
])
def test_devices_fit_cannot_train_on_are_refused(device, said):
    with pytest.raises(ValueError, match=said):
        training_device(device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message without CUDA")
def test_cuda_without_a_gpu_says_what_to_use_instead():
    with pytest.raises(ValueError, match="CUDA is not available on this machine; use"):
        training_device("cuda")


def test_autocast_applies_only_on_cuda():
    cpu = torch.device("cpu")
    assert autocast(cpu, True) is contextlib.nullcontext
    assert autocast(cpu, False) is contextlib.nullcontext
    assert autocast(torch.device("cuda"), False) is contextlib.nullcontext
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns when this machine has no CUDA
        assert isinstance(autocast(torch.device("cuda"), True)(), torch.autocast)


def test_an_epochs_sum_is_float64_except_on_mps():
    assert sum_dtype(torch.device("cpu")) == torch.float64
    assert sum_dtype(torch.device("mps")) == torch.float32
