"""What the ``full`` profile costs: every chapter executed top to bottom with ``LVM_PROFILE=full``.

    python benchmarks/full_profile_cost.py                 # chapters 1-5 run, 6-7 estimated (minutes)
    python benchmarks/full_profile_cost.py --chapters 6 7  # run chapters 6 and 7 too (about an hour on 2 cores)

The publishing workflow (.github/workflows/publish.yml) builds the site with the ``full`` profile, on a CPU
runner; this measures what that costs, chapter by chapter, on the machine it runs on.

Chapters 6 and 7 need MNIST's 60,000-image training split. Where it is not at hand (no internet), they run on
**stand-in data of the real size**: the 10,000 test images tiled six times, each copy shifted by a pixel, written
as IDX files into a temporary data folder, with ``lvm.data.MNIST_MD5`` told their checksums in a cell inserted
after the set-up cell. The cost of training and evaluation depends on the sizes, not on the pixels, so the
times stand; the numbers the chapters print from such a run mean nothing and are not reported.

Running chapters 6 and 7 whole takes about an hour on two cores, so by default they are **estimated** instead:
on the same stand-in data, the script times what dominates them, at the full profile's sizes: a few epochs of
each model they train (``lvm.fit`` on 50,000 images, as the chapters call it) and the importance weights of
a slice of the test set (K = 2 × 5,000 draws, as chapter 7 draws them), and scales each by the count the
profile asks for. Everything else in those chapters is seconds.

Prints a table and writes ``benchmarks/results/full_profile.json``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import platform
import shutil
import struct
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import numpy as np
import torch
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
RESULTS = ROOT / "benchmarks" / "results" / "full_profile.json"
MNIST_CHAPTERS = {6, 7}


def _write_idx(path: Path, array: np.ndarray) -> str:
    """Write ``array`` (uint8) as a gzipped IDX file; return its MD5."""
    magic = 0x0803 if array.ndim == 3 else 0x0801
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", n) for n in array.shape)
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(header + array.astype(np.uint8).tobytes())
    return hashlib.md5(path.read_bytes()).hexdigest()


def stand_in_mnist(source_dir: Path, target_dir: Path) -> dict[str, str]:
    """A training split of the real size from the test split; returns the MD5s of the files written."""
    sys.path.insert(0, str(ROOT))
    import lvm

    images, labels = lvm.data.mnist("test", data_dir=source_dir, download=False)
    pixels = (images.reshape(-1, 28, 28) * 255).round().to(torch.uint8).numpy()
    copies = [np.roll(pixels, shift, axis=2) for shift in range(-3, 3)]  # six shifted copies: 60,000 images
    mnist_dir = target_dir / "mnist"
    mnist_dir.mkdir(parents=True)
    md5 = {"train-images-idx3-ubyte.gz": _write_idx(mnist_dir / "train-images-idx3-ubyte.gz", np.concatenate(copies)),
           "train-labels-idx1-ubyte.gz": _write_idx(mnist_dir / "train-labels-idx1-ubyte.gz",
                                                    np.tile(labels.numpy().astype(np.uint8), 6))}
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(Path(source_dir) / "mnist" / name, mnist_dir / name)
    return md5


def run_chapter(path: Path, patch_md5: dict[str, str] | None) -> float:
    nb = nbformat.read(path, as_version=4)
    if patch_md5:
        setup = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
        nb.cells.insert(setup + 1, nbformat.v4.new_code_cell(
            f"import lvm.data\nlvm.data.MNIST_MD5.update({patch_md5!r})  # stand-in training split"))
    client = NotebookClient(nb, timeout=None, kernel_name="python3", resources={"metadata": {"path": str(BOOK)}})
    start = time.perf_counter()
    client.execute()
    return time.perf_counter() - start


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def estimate_mnist_chapters(data_dir: Path, md5: dict[str, str]) -> list[dict]:
    """Time the dominant calls of chapters 6 and 7 at the full profile's sizes; scale to the whole run."""
    import lvm

    lvm.data.MNIST_MD5.update(md5)
    profile = lvm.profiles.profile_named("full")
    splits = lvm.data.mnist_splits(profile, data_dir=data_dir, download=False)
    x_val = lvm.data.static_binarize(splits.x_val, seed=0)
    fit = dict(batch_size=profile.batch_size, lr=1e-3, device="cpu", seed=0, progress=False)
    probe_epochs = 2

    def epoch_seconds(model, binarize=True, val=x_val):
        history = lvm.fit(model, splits.x_train, epochs=probe_epochs, x_val=val,
                          transform=lvm.data.dynamic_binarize if binarize else None, **fit)
        return sum(history.seconds) / probe_epochs

    bernoulli = epoch_seconds(lvm.VAE(784, 20, hidden=(400,)))
    gaussian = epoch_seconds(lvm.VAE(784, 20, hidden=(400,), likelihood="gaussian", sigma=0.1), False, splits.x_val)
    two_d = epoch_seconds(lvm.VAE(784, 2, hidden=(400,)))
    vae = lvm.VAE(784, 20, hidden=(400,)).eval()
    probe_images = 20
    x_test = lvm.data.static_binarize(splits.x_test[:probe_images], seed=1)
    with torch.no_grad():
        weights = _seconds(lambda: lvm.log_importance_weights(vae, x_test, vae.encode(x_test), k=2 * profile.eval_k))
    per_image = weights / probe_images
    rows = [
        ("06: Bernoulli VAE", bernoulli, profile.vae_epochs, "epochs"),
        ("06: Gaussian VAE", gaussian, profile.vae_epochs, "epochs"),
        ("06: 2-D VAE", two_d, profile.vae_epochs_2d, "epochs"),
        ("07: Bernoulli VAE", bernoulli, profile.vae_epochs, "epochs"),
        (f"07: importance weights, K = {2 * profile.eval_k:,}", per_image, profile.eval_examples, "images"),
    ]
    return [{"part": name, "seconds_each": round(each, 3), "count": count, "unit": unit,
             "seconds": round(each * count, 1)} for name, each, count, unit in rows]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chapters", type=int, nargs="*", default=list(range(1, 6)),
                        help="chapters to run whole (default 1-5)")
    parser.add_argument("--no-estimate", action="store_true", help="skip the estimate of chapters 6 and 7")
    args = parser.parse_args(argv)
    os.environ.update(LVM_PROFILE="full", LVM_PROGRESS="off", PYTHONHASHSEED="0")
    data_dir = Path(os.environ.get("LVM_DATA_DIR", Path.home() / ".cache" / "lvm"))
    has_train = (data_dir / "mnist" / "train-images-idx3-ubyte.gz").exists()
    rows, estimate = [], []
    with tempfile.TemporaryDirectory() as tmp:
        patch = None
        if (MNIST_CHAPTERS & set(args.chapters) or not args.no_estimate) and not has_train:
            patch = stand_in_mnist(data_dir, Path(tmp))
            os.environ["LVM_DATA_DIR"] = tmp
        for number in args.chapters:
            path = next(BOOK.glob(f"{number:02d}_*.ipynb"))
            stand_in = patch is not None and number in MNIST_CHAPTERS
            seconds = run_chapter(path, patch if stand_in else None)
            rows.append({"chapter": path.stem, "seconds": round(seconds, 1), "stand_in_data": stand_in})
            print(f"{path.stem:45s} {seconds:8.1f} s{'  (stand-in MNIST of the real size)' if stand_in else ''}",
                  flush=True)
        if not args.no_estimate:
            estimate = estimate_mnist_chapters(Path(os.environ["LVM_DATA_DIR"]), patch or {})
            for row in estimate:
                print(f"{row['part']:45s} {row['seconds']:8.1f} s  ({row['seconds_each']:.3f} s x {row['count']:,} "
                      f"{row['unit']}, estimated)", flush=True)
    total = sum(r["seconds"] for r in rows) + sum(r["seconds"] for r in estimate)
    print(f"{'total':45s} {total:8.1f} s")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({
        "profile": "full", "torch": torch.__version__, "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
        "cuda": torch.cuda.is_available(), "chapters": rows, "estimated_mnist_parts": estimate,
        "total_seconds": round(total, 1)}, indent=1) + "\n")
    print(f"written to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
