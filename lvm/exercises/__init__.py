"""Automatic checks for the coding exercises, one module per chapter.

Each ``check_*`` calls the student's function on random inputs, compares it with the reference in ``lvm``
and, on a mismatch, raises :class:`ExerciseFeedback` (an ``AssertionError``, so autograders count it as a
failed test) that says what looks wrong, not only *that* it is wrong: a shape, a forgotten weight, an
underflow, a guard (an epsilon, ``nan_to_num``) that hides one, a cut gradient, a stream that holds every
chunk. On success it prints one line and returns nothing. In Jupyter and Colab the feedback shows as its
sentence alone, without the checker's stack; where the student's function itself raised an error, the lines
of the student's code come first. An untouched stub gets :class:`NotWrittenYet`, a note that says what to
do next. ``tests/test_exercise_wrong_answers.py`` lists, for every check, the wrong answers it must reject.
"""

from ._feedback import ExerciseFeedback, NotWrittenYet
from .diffusion import check_forward_marginal
from .disentanglement import check_mutual_information_gap
from .elbo import check_gaussian_kl
from .evaluation import check_log_mean_exp_stream
from .gradients import check_reparameterised_sample, check_score_function_estimator
from .importance import check_importance_estimate
from .linear_gaussian import check_ppca_posterior
from .mixture import check_mixture_log_density, check_responsibilities
from .vae import check_vae_loss

__all__ = [
    "ExerciseFeedback",
    "NotWrittenYet",
    "check_forward_marginal",
    "check_gaussian_kl",
    "check_importance_estimate",
    "check_log_mean_exp_stream",
    "check_mixture_log_density",
    "check_mutual_information_gap",
    "check_ppca_posterior",
    "check_reparameterised_sample",
    "check_responsibilities",
    "check_score_function_estimator",
    "check_vae_loss",
]
