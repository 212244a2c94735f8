"""Training speed: ``lvm.fit`` against a textbook PyTorch loop, in images per second.

Both train the same VAE (same initial weights, same hyper-parameters) on the same data with the same loss,
−mean ``lvm.elbo`` with q = ``model.encode(x)``, and Adam. They differ only in the loop:

- textbook: ``DataLoader(TensorDataset(x), batch_size, shuffle=True)`` over CPU tensors, each batch copied
  to the device, and ``loss.item()`` accumulated per batch (as in pytorch/examples ``vae/main.py``);
- ``lvm.fit``: data on the device once, batches by indexing a device-side permutation, the loss summed on the
  device and read once per epoch; optionally ``torch.compile`` and bf16 autocast (CUDA).

Each variant runs ``--warmup`` epochs (CUDA start-up, ``torch.compile``) and then ``--epochs`` timed ones;
the median timed epoch gives images/second (median over all timed epochs of ``--repeats`` runs, the variants
taking turns). Prints a table and writes a JSON file.

    python benchmarks/train_speed.py                       # CPU (and CUDA variants when a GPU is present)
    python benchmarks/train_speed.py --devices cuda --n 60000
    LVM_DATA_DIR=... python benchmarks/train_speed.py --data mnist
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import lvm


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--devices", nargs="+", default=None,
                   help="devices to measure (default: cpu, plus cuda when available)")
    p.add_argument("--data", choices=["synthetic", "mnist"], default="synthetic",
                   help="synthetic: random binary images of MNIST's shape (no download); mnist: the real images, "
                        "dynamically binarised (LVM_DATA_DIR)")
    p.add_argument("--n", type=int, default=60_000,
                   help="training images per epoch (default 60000, MNIST's train size)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--z-dim", type=int, default=20)
    p.add_argument("--hidden", type=int, nargs="*", default=[400])
    p.add_argument("--architecture", choices=["mlp", "conv"], default="mlp")
    p.add_argument("--epochs", type=int, default=2, help="timed epochs per variant")
    p.add_argument("--warmup", type=int, default=1, help="untimed epochs before timing")
    p.add_argument("--repeats", type=int, default=3, help="runs of each variant, taken in turns (default 3)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's choice); 1 is steadier on a machine shared with "
                        "other jobs, where multi-threaded kernels stall waiting for a descheduled thread")
    p.add_argument("--no-compile-variants", action="store_true", help="on CUDA, skip the compile/amp variants")
    p.add_argument("--out", default=None,
                   help="JSON result file (default benchmarks/results/train_speed-<device>.json)")
    return p.parse_args(argv)


def load_data(args) -> tuple[torch.Tensor, bool]:
    """(images [n, 784] on the CPU, whether they need binarising each epoch)."""
    if args.data == "mnist":
        images, _ = lvm.data.mnist("train" if args.n > 10_000 else "test")
        if args.n > len(images):
            raise SystemExit(f"--n {args.n} is more than the {len(images)} MNIST images available")
        return images[: args.n].contiguous(), True
    g = torch.Generator().manual_seed(0)
    # Binary "images" with MNIST's pixel density (about 13% on): the cost of a step does not depend on content.
    return (torch.rand(args.n, 784, generator=g) < 0.13).float(), False


def new_model(args) -> lvm.VAE:
    torch.manual_seed(0)  # every variant starts from the same weights
    return lvm.VAE(784, args.z_dim, tuple(args.hidden), "bernoulli", architecture=args.architecture)


def textbook_epoch_times(args, x: torch.Tensor, binarize: bool, device: torch.device) -> list[float]:
    model = new_model(args).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    loader = DataLoader(TensorDataset(x), batch_size=args.batch_size, shuffle=True)
    times = []
    for _ in range(args.warmup + args.epochs):
        t0 = time.perf_counter()
        model.train()
        train_loss = 0.0
        for (batch,) in loader:
            batch = batch.to(device)
            if binarize:
                batch = torch.bernoulli(batch)
            q = model.encode(batch)
            loss = -lvm.elbo(model, batch, q).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            train_loss += loss.item() * len(batch)
        _sync(device)
        times.append(time.perf_counter() - t0)
    return times[args.warmup:]


def fit_epoch_times(args, x: torch.Tensor, binarize: bool, device: torch.device, compile: bool,
                    amp: bool) -> list[float]:
    model = new_model(args)
    history = lvm.fit(model, x, epochs=args.warmup + args.epochs, batch_size=args.batch_size, lr=args.lr,
                      device=device, seed=0, progress=False, compile=compile, amp=amp,
                      transform=lvm.data.dynamic_binarize if binarize else None)
    return history.seconds[args.warmup:]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def variants(device: torch.device, args) -> list[tuple[str, dict | None]]:
    """(name, fit options) pairs; ``None`` is the textbook loop."""
    out = [("textbook loop", None), ("lvm.fit", dict(compile=False, amp=False))]
    if device.type == "cuda" and not args.no_compile_variants:
        out += [("lvm.fit amp", dict(compile=False, amp=True)), ("lvm.fit compile", dict(compile=True, amp=False)),
                ("lvm.fit compile+amp", dict(compile=True, amp=True))]
    return out


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    x, binarize = load_data(args)
    rows = []
    for name in devices:
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            print("skipping cuda: not available", file=sys.stderr)
            continue
        # Variants take turns, repeat after repeat, so that a slow spell of a shared machine does not fall on
        # one variant only.
        times: dict[str, list[float]] = {label: [] for label, _ in variants(device, args)}
        for repeat in range(args.repeats):
            for label, options in variants(device, args):
                if options is None:
                    t = textbook_epoch_times(args, x, binarize, device)
                else:
                    t = fit_epoch_times(args, x, binarize, device, **options)
                times[label] += t
                print(f"  [{repeat + 1}/{args.repeats}] {device.type:<5} {label:<22} "
                      + " ".join(f"{s:.3f}" for s in t) + " s/epoch", file=sys.stderr, flush=True)
        baseline = args.n / statistics.median(times["textbook loop"])
        for label, t in times.items():
            median = statistics.median(t)
            rate = args.n / median
            rows.append(dict(device=lvm.describe_device(device), variant=label, epoch_seconds=t,
                             median_epoch_seconds=median, min_epoch_seconds=min(t), images_per_second=rate,
                             speedup=rate / baseline))

    print()
    print(f"{'device':<28} | {'variant':<22} | {'median s/epoch':>14} | {'min s/epoch':>11} | {'images/s':>10} | "
          f"{'vs textbook':>11}")
    print(f"{'-' * 28}-|-{'-' * 22}-|-{'-' * 14}-|-{'-' * 11}-|-{'-' * 10}-|-{'-' * 11}")
    for r in rows:
        print(f"{r['device']:<28} | {r['variant']:<22} | {r['median_epoch_seconds']:14.3f} | "
              f"{r['min_epoch_seconds']:11.3f} | {r['images_per_second']:10,.0f} | {r['speedup']:10.2f}x")

    result = dict(
        benchmark="train_speed", date=_dt.datetime.now().isoformat(timespec="seconds"),
        torch=torch.__version__, python=platform.python_version(), platform=platform.platform(),
        cpu_count=os.cpu_count(), torch_threads=torch.get_num_threads(),
        cuda=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        config=dict(vars(args), data=args.data, model=repr(new_model(args)).replace("\n", " ")),
        results=rows,
    )
    out = Path(args.out) if args.out else (Path(__file__).parent / "results" /
                                           f"train_speed-{'cuda' if 'cuda' in devices else 'cpu'}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {out}")
    return result


if __name__ == "__main__":
    main()
