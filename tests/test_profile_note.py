"""Each MNIST chapter says which profile built it, and what the other profile does."""

import pytest

from lvm import profiles


@pytest.fixture
def quick(monkeypatch):
    monkeypatch.setenv("LVM_PROFILE", "quick")
    profiles.current_profile.cache_clear()
    yield
    profiles.current_profile.cache_clear()


def test_note_names_this_profile_and_the_other_with_their_sizes(quick):
    text = profiles.note(before="B. ", after=" A.").data
    assert text.startswith("> **Which run built this page.** B. This page was built with the **quick** profile")
    assert "8,000 training and 2,000 validation images" in text and "for 8 epochs" in text
    assert "**full** profile (`LVM_PROFILE=full`, the default on a GPU)" in text
    assert "60,000-image training split (50,000 images to train on, 10,000 to validate)" in text
    assert "(50 for the two-dimensional model)" in text and text.endswith(" A.")
    assert "offline" not in text and "here" not in text, "the note describes the course, not a machine"


def test_evaluation_note_gives_test_images_and_k_of_both_profiles(quick):
    text = profiles.note(evaluation=True).data
    assert "500 of the validation images (this profile has no separate test set) with $K$ = 500" in text
    assert "10,000 images of the test split with $K$ = 5,000" in text


def test_describe_follows_the_profile_fields():
    small = profiles.Profile("tiny", mc_samples=1, mnist_train=3, mnist_val=2, vae_epochs=4, vae_epochs_2d=4,
                             batch_size=1, eval_examples=1, eval_k=7)
    assert profiles.describe(small) == ("3 training and 2 validation images carved from MNIST's 10,000-image "
                                        "test split, which is small and fast to train on, for 4 epochs")
