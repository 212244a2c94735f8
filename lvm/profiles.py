"""Run profiles: one switch (``LVM_PROFILE``) that sizes every chapter's experiments.

``quick`` is what CI and a CPU laptop run (chapters 1-5 in seconds and chapters 6-9, which train small models,
in under a minute each on two otherwise idle CPU cores); ``full`` is the GPU/Colab experience. Both run the
same code; only the sizes differ, and ``quick`` carves its MNIST images out of the 10k test split.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    import IPython.display

__all__ = ["PROFILES", "Profile", "current_profile", "describe", "note", "profile_named"]


@dataclasses.dataclass(frozen=True)
class Profile:
    """Sizes for one profile. ``mnist_train=None`` means "the whole MNIST training split"."""

    name: str
    mc_samples: int  # Monte Carlo draws behind a figure or an assert in chapters 1-5
    mnist_train: int | None  # quick: carved out of the 10k test split (small and fast); full: None
    mnist_val: int
    vae_epochs: int
    vae_epochs_2d: int  # the 2-D latent model drawn in chapter 6
    batch_size: int
    eval_examples: int  # test images whose log-likelihood chapter 7 estimates
    eval_k: int  # importance samples per test image
    shapes_train: int = 6_000  # chapter 8: images of lvm.data.shapes to train the β-VAEs on
    shapes_epochs: int = 15


PROFILES = {
    "quick": Profile("quick", mc_samples=20_000, mnist_train=8_000, mnist_val=2_000, vae_epochs=8,
                     vae_epochs_2d=8, batch_size=128, eval_examples=500, eval_k=500),
    "full": Profile("full", mc_samples=200_000, mnist_train=None, mnist_val=10_000, vae_epochs=100,
                    vae_epochs_2d=50, batch_size=128, eval_examples=10_000, eval_k=5_000,
                    shapes_train=60_000, shapes_epochs=50),
}


def profile_named(name: str) -> Profile:
    """The profile called ``name`` (``"quick"`` or ``"full"``)."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"LVM_PROFILE must be one of {sorted(PROFILES)}, got {name!r}") from None


@functools.cache
def current_profile() -> Profile:
    """The profile ``LVM_PROFILE`` names; unset, ``full`` with a CUDA GPU and ``quick`` without. Read once."""
    name = os.environ.get("LVM_PROFILE", "").strip().lower()
    if not name:
        name = "full" if torch.cuda.is_available() else "quick"
    return profile_named(name)


MNIST_TRAIN_SIZE = 60_000  # images in MNIST's training split
MNIST_TEST_SIZE = 10_000


def describe(profile: Profile, evaluation: bool = False) -> str:
    """What ``profile`` trains on (and, with ``evaluation``, what it tests on), in words for a reader."""
    if profile.mnist_train is None:
        text = (f"MNIST's {MNIST_TRAIN_SIZE:,}-image training split ({MNIST_TRAIN_SIZE - profile.mnist_val:,} "
                f"images to train on, {profile.mnist_val:,} to validate)")
    else:
        text = (f"{profile.mnist_train:,} training and {profile.mnist_val:,} validation images carved from "
                f"MNIST's {MNIST_TEST_SIZE:,}-image test split, which is small and fast to train on")
    text += f", for {profile.vae_epochs} epochs"
    if not evaluation and profile.vae_epochs_2d != profile.vae_epochs:
        text += f" ({profile.vae_epochs_2d} for the two-dimensional model)"
    if evaluation:
        held_out = (f"{profile.eval_examples:,} images of the test split" if profile.mnist_train is None else
                    f"{profile.eval_examples:,} of the validation images (this profile has no separate test set)")
        text += f", and a test log-likelihood on {held_out} with $K$ = {profile.eval_k:,}"
    return text


def note(before: str = "", after: str = "", evaluation: bool = False) -> IPython.display.Markdown:
    """A note for a chapter's page: which profile built it, and what the other profile does.

    Returned as ``IPython.display.Markdown`` (a block quote, which Jupyter, Colab and the book all render), so
    the numbers on a page always come with the run that produced them.
    """
    from IPython.display import Markdown

    this = current_profile()
    other = PROFILES["full" if this.name == "quick" else "quick"]
    default = "the default on a GPU" if other.name == "full" else "the default without a GPU"
    text = (f"{before}This page was built with the **{this.name}** profile: {describe(this, evaluation)}. "
            f"The **{other.name}** profile (`LVM_PROFILE={other.name}`, {default}) uses "
            f"{describe(other, evaluation)}.{after}")
    # IPython.display carries no annotations
    return Markdown(f"> **Which run built this page.** {text}")  # type: ignore[no-untyped-call]

