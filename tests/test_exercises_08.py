"""The chapter-8 exercise check: ``lvm.exercises.check_mutual_information_gap``."""

import pytest
import torch

import lvm
from lvm.exercises import ExerciseFeedback, check_mutual_information_gap


def right(info, entropy):
    best, second = info.topk(2, dim=0).values
    return (best - second) / entropy


def right_in_place(info, entropy):
    best, second = info.topk(2, dim=0).values
    return (best - second) * entropy.reciprocal_()  # in place: fine, the check hands out copies


def test_right_answers_pass(capsys):
    check_mutual_information_gap(right)
    check_mutual_information_gap(right_in_place)
    assert "✓ the mutual-information gap" in capsys.readouterr().out


def test_the_right_answer_is_what_lvm_computes_from_data():
    gen = torch.Generator().manual_seed(1)
    codes, factors = torch.rand(500, 4, generator=gen), torch.rand(500, 3, generator=gen)
    codes[:, 0] = factors[:, 1] + 0.05 * codes[:, 0]
    info, entropy = lvm.diagnostics.mutual_information(codes, factors)
    torch.testing.assert_close(right(info, entropy), lvm.diagnostics.mutual_information_gap(codes, factors))


@pytest.mark.parametrize("wrong, says", [
    (lambda info, entropy: info.topk(2, dim=0).values[0] - info.topk(2, dim=0).values[1], "not normalised"),
    (lambda info, entropy: info.max(0).values / entropy, "without subtracting"),
    (lambda info, entropy: (info.max(0).values - info.mean(0)) / entropy, "SECOND"),
    (lambda info, entropy: (info.topk(2, dim=1).values[:, 0] - info.topk(2, dim=1).values[:, 1]), "each code"),
    (lambda info, entropy: right(info, entropy).mean(), "averaged over the factors"),
    (lambda info, entropy: right(info, entropy) * 1.1, "Wrong values"),
])
def test_wrong_answers_get_a_sentence_that_says_what_is_wrong(wrong, says):
    with pytest.raises(ExerciseFeedback, match=says):
        check_mutual_information_gap(wrong)


def test_a_stub_is_told_it_is_not_written():
    def stub(info, entropy):
        raise NotImplementedError

    with pytest.raises(ExerciseFeedback, match="not written yet"):
        check_mutual_information_gap(stub)
