"""One mistake that students really make per coding exercise, for the grading tests (Otter and nbgrader).

Each is (text of the chapter's solution, what the student writes instead): applied to the chapter's own
solution, so it follows the chapter's edits.
"""

MISTAKES = {
    "mixture_log_density": ("weights.log() + Normal", "Normal"),  # the prior weights forgotten
    "responsibilities": ("torch.softmax(log_joint, dim=-1)",  # Bayes' rule as written: 0/0 far out
                         "log_joint.exp() / log_joint.exp().sum(-1, keepdim=True)"),
    "ppca_posterior": ("sigma**2 * torch.eye", "sigma * torch.eye"),  # σ where σ² belongs
    "importance_estimate": ("torch.logsumexp(log_w, dim=0) - math.log(n_samples)",
                            "log_w.mean(0)"),  # the mean of the log, not the log of the mean
    "gaussian_kl": ("(2 * std_p**2)", "std_p**2"),  # a factor of 1/2 lost
    "score_function_estimates": ("std**3 - 1 / std", "std**3"),  # the normaliser's score forgotten
    "reparameterised_sample": ("eps @ scale_tril.T", "eps @ scale_tril"),  # L transposed
    "vae_loss": ("(recon - kl).mean()", "(recon - kl).sum()"),  # the batch summed, not averaged
    "log_mean_exp_stream": ("count += log_w.shape[0]", "count += 1"),  # chunks counted, not samples
    "mutual_information_gap": ("(best - second) / entropy", "(best - second) / best"),  # wrong normaliser
    "forward_marginal": ("torch.cumprod(alphas, dim=0)",  # ᾱ_{t-1} for ᾱ_t
                         "torch.cumprod(torch.cat([alphas.new_ones(1), alphas[:-1]]), dim=0)"),
}
