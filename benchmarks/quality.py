"""Model quality: the test log-likelihood of a VAE trained with ``lvm.fit``, in nats, beside the published value.

The reference is Burda, Grosse & Salakhutdinov (2016), *Importance Weighted Autoencoders*, Table 1: a VAE with
one stochastic layer on dynamically binarised MNIST reaches a test log-likelihood of −86.76 nats, estimated
with k = 5000 importance samples. The recipe (justified in benchmarks/README.md):

- data: MNIST, **dynamically binarised** each epoch (``transform=lvm.data.dynamic_binarize``); the test
  images binarised once with a fixed seed (``lvm.data.static_binarize``);
- model: ``lvm.VAE(784, 32, hidden=(512, 256), likelihood="bernoulli")``, an MLP with two ReLU layers;
- training: Adam, batch 128, a step-wise learning-rate decay 1e-3 → 3e-4 → 1e-4 over 60% / 25% / 15% of
  the epochs. ``fit`` has one learning rate per call, so each stage is one call resuming from the previous
  stage's checkpoint with a smaller ``lr`` (the documented way to lower it);
- evaluation: −log p(x) ≈ −IWAE_k (``lvm.iwae_bound`` with q = the encoder), averaged over test images,
  with its standard error over images; the test ELBO beside it.

Profiles:

- ``full`` (GPU; needs MNIST's training split, downloaded on first use): 60,000 training images, 500 epochs,
  evaluation on the 10,000 test images with k = 5000 — the published protocol. Meant to fit in 10 minutes on
  one H100-class GPU.
- ``quick`` (CPU): the offline 10k test split only, carved by ``lvm.data.mnist_splits("quick")`` into 8,000
  training and 2,000 held-out images; 100 epochs; evaluation on the 2,000 held-out images with k = 1000. Its
  number is *not* comparable with the published one (8x less training data, smaller k); it checks the recipe
  end to end.

    LVM_DATA_DIR=../shared/data python benchmarks/quality.py --profile quick
    python benchmarks/quality.py --profile full            # on a GPU, with internet for the download
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import lvm

PUBLISHED_NLL = 86.76  # Burda et al. (2016), Table 1, VAE with one stochastic layer, k = 5000


@dataclasses.dataclass
class Recipe:
    epochs: int
    eval_k: int
    eval_examples: int | None  # None: every test image
    z_dim: int = 32
    hidden: tuple[int, ...] = (512, 256)
    batch_size: int = 128
    lrs: tuple[float, ...] = (1e-3, 3e-4, 1e-4)
    stage_fractions: tuple[float, ...] = (0.6, 0.25, 0.15)
    architecture: str = "mlp"


RECIPES = {
    "quick": Recipe(epochs=100, eval_k=1000, eval_examples=None),
    "full": Recipe(epochs=500, eval_k=5000, eval_examples=None),
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", choices=sorted(RECIPES), default=None,
                   help="quick (CPU, offline test split) or full (GPU, the published protocol); "
                        "default: LVM_PROFILE, else full with a GPU and quick without")
    p.add_argument("--epochs", type=int, default=None, help="override the profile's number of epochs")
    p.add_argument("--k", type=int, default=None, help="override the number of importance samples")
    p.add_argument("--eval-examples", type=int, default=None, help="evaluate on only this many test images")
    p.add_argument("--architecture", choices=["mlp", "conv"], default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--device", default=None)
    p.add_argument("--compile", action="store_true", help="torch.compile the loss (CUDA)")
    p.add_argument("--amp", action="store_true", help="bf16 autocast (CUDA)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's choice); 1 is steadier on a machine shared with "
                        "other jobs, where multi-threaded kernels stall waiting for a descheduled thread")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None, help="folder holding mnist/ (default LVM_DATA_DIR)")
    p.add_argument("--checkpoint", default=None,
                   help="checkpoint file: an interrupted run started again with the same file resumes")
    p.add_argument("--progress", action="store_true", help="show tqdm bars")
    p.add_argument("--out", default=None, help="JSON result file (default benchmarks/results/quality-<profile>.json)")
    return p.parse_args(argv)


def load(profile: str, data_dir) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, str]:
    """(x_train, x_val or None, x_test): grey levels in [0, 1], ``[n, 784]``; and a description."""
    if profile == "quick":
        s = lvm.data.mnist_splits("quick", data_dir=data_dir)
        return s.x_train, s.x_val, s.x_test, s.description
    x_train, _ = lvm.data.mnist("train", data_dir=data_dir)
    x_test, _ = lvm.data.mnist("test", data_dir=data_dir)
    return x_train, None, x_test, ("all 60,000 MNIST training images (no validation split: nothing is selected "
                                   "on held-out data, as in Burda et al.); the 10,000 test images for the test")


def stages(recipe: Recipe) -> list[tuple[int, float]]:
    """(cumulative epoch at which the stage ends, lr) for each stage of the step-wise decay."""
    ends, total = [], 0.0
    for fraction in recipe.stage_fractions:
        total += fraction
        ends.append(max(1, round(total * recipe.epochs)))
    ends[-1] = recipe.epochs
    return list(zip(ends, recipe.lrs))


@torch.no_grad()
def evaluate(model: lvm.VAE, x: torch.Tensor, k: int, device: torch.device, batch: int = 500) -> dict:
    """Per-image IWAE_k and ELBO (10 draws) on ``x``; mean and standard error over images, in nats."""
    model.eval()
    iwae, elbo = [], []
    for i in range(0, len(x), batch):
        xb = x[i:i + batch].to(device)
        q = model.encode(xb)
        iwae.append(lvm.iwae_bound(model, xb, q, k=k).double().cpu())
        elbo.append(lvm.elbo(model, xb, q, n_samples=10).double().cpu())
    iwae, elbo = torch.cat(iwae), torch.cat(elbo)
    se = lambda t: float(t.std() / math.sqrt(len(t)))  # noqa: E731
    return dict(nll=float(-iwae.mean()), nll_se=se(iwae), elbo=float(elbo.mean()), elbo_se=se(elbo),
                k=k, examples=len(x))


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    profile = args.profile or lvm.profiles.current_profile().name
    recipe = dataclasses.replace(
        RECIPES[profile],
        **{k: v for k, v in dict(epochs=args.epochs, eval_k=args.k, eval_examples=args.eval_examples,
                                 architecture=args.architecture, batch_size=args.batch_size).items()
           if v is not None})
    device = lvm.device.resolve_device(args.device)
    print(f"profile {profile} on {lvm.describe_device(device)}; torch {torch.__version__}", flush=True)

    x_train, x_val, x_test, description = load(profile, args.data_dir)
    x_test = lvm.data.static_binarize(x_test, seed=args.seed)  # one fixed binarisation of the test set
    if recipe.eval_examples is not None:
        x_test = x_test[: recipe.eval_examples]
    x_val_bin = None if x_val is None else lvm.data.static_binarize(x_val, seed=args.seed + 1)
    print(description, flush=True)

    torch.manual_seed(args.seed)
    model = lvm.VAE(784, recipe.z_dim, recipe.hidden, "bernoulli", architecture=recipe.architecture)
    tmp = None
    if args.checkpoint is None:
        tmp = tempfile.TemporaryDirectory()
        checkpoint = Path(tmp.name) / "quality.pt"
    else:
        checkpoint = Path(args.checkpoint)

    t0 = time.perf_counter()
    history = None
    for end, lr in stages(recipe):
        history = lvm.fit(model, x_train, epochs=end, batch_size=recipe.batch_size, lr=lr, x_val=x_val_bin,
                          device=device, seed=args.seed, progress=args.progress, checkpoint=checkpoint,
                          transform=lvm.data.dynamic_binarize, compile=args.compile, amp=args.amp)
        val = f", val ELBO {history.val_elbo[-1]:.2f}" if history.val_elbo else ""
        print(f"  epochs to {end:4d} at lr {lr:g}: train ELBO {history.train_elbo[-1]:.2f}{val} "
              f"({time.perf_counter() - t0:.0f} s so far)", flush=True)
    train_seconds = time.perf_counter() - t0
    if tmp is not None:
        tmp.cleanup()

    torch.manual_seed(args.seed)
    t1 = time.perf_counter()
    result = evaluate(model, x_test, recipe.eval_k, device)
    eval_seconds = time.perf_counter() - t1
    print(f"\ntest: -log p(x) ≈ {result['nll']:.2f} ± {result['nll_se']:.2f} nats (IWAE, k={recipe.eval_k}, "
          f"{result['examples']} images); ELBO {result['elbo']:.2f} ± {result['elbo_se']:.2f}; "
          f"published VAE: {PUBLISHED_NLL} nats")
    print(f"time: training {train_seconds:.0f} s ({sum(history.seconds) / len(history.seconds):.3f} s/epoch on "
          f"average), evaluation {eval_seconds:.0f} s")

    out = dict(
        benchmark="quality", profile=profile, date=_dt.datetime.now().isoformat(timespec="seconds"),
        torch=torch.__version__, python=platform.python_version(), platform=platform.platform(),
        device=lvm.describe_device(device), cpu_count=os.cpu_count(), torch_threads=torch.get_num_threads(),
        data=description,
        recipe=dataclasses.asdict(recipe), command=" ".join(sys.argv),
        test=result, published_nll=PUBLISHED_NLL, reaches_published=result["nll"] <= PUBLISHED_NLL,
        train_seconds=train_seconds, eval_seconds=eval_seconds, history=history.as_dict(),
    )
    path = Path(args.out) if args.out else Path(__file__).parent / "results" / f"quality-{profile}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    print(f"wrote {path}")
    return out


if __name__ == "__main__":
    main()
