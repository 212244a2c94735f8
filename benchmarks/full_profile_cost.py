"""What the ``full`` profile costs: every chapter executed top to bottom with ``LVM_PROFILE=full``.

    python benchmarks/full_profile_cost.py                 # all chapters
    python benchmarks/full_profile_cost.py --chapters 6 7  # some of them

The publishing workflow (.github/workflows/publish.yml) builds the site with the ``full`` profile, on a CPU
runner; this measures what that costs, chapter by chapter, on the machine it runs on.

Chapters 6 and 7 need MNIST's 60,000-image training split. Where it is not at hand (no internet), they run on
**stand-in data of the real size**: the 10,000 test images tiled six times, each copy shifted by a pixel, written
as IDX files into a temporary data folder, with ``lvm.data.MNIST_MD5`` told their checksums in a cell inserted
after the set-up cell. The cost of training and evaluation depends on the sizes, not on the pixels, so the
times stand; the numbers the chapters print from such a run mean nothing and are not reported.

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


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chapters", type=int, nargs="*", default=list(range(1, 8)))
    args = parser.parse_args(argv)
    os.environ.update(LVM_PROFILE="full", LVM_PROGRESS="off", PYTHONHASHSEED="0")
    data_dir = Path(os.environ.get("LVM_DATA_DIR", Path.home() / ".cache" / "lvm"))
    has_train = (data_dir / "mnist" / "train-images-idx3-ubyte.gz").exists()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        patch = None
        if MNIST_CHAPTERS & set(args.chapters) and not has_train:
            patch = stand_in_mnist(data_dir, Path(tmp))
            os.environ["LVM_DATA_DIR"] = tmp
        for number in args.chapters:
            path = next(BOOK.glob(f"{number:02d}_*.ipynb"))
            stand_in = patch is not None and number in MNIST_CHAPTERS
            seconds = run_chapter(path, patch if stand_in else None)
            rows.append({"chapter": path.stem, "seconds": round(seconds, 1), "stand_in_data": stand_in})
            print(f"{path.stem:45s} {seconds:8.1f} s{'  (stand-in MNIST of the real size)' if stand_in else ''}",
                  flush=True)
    total = sum(r["seconds"] for r in rows)
    print(f"{'total':45s} {total:8.1f} s")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({
        "profile": "full", "torch": torch.__version__, "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
        "cuda": torch.cuda.is_available(), "chapters": rows, "total_seconds": round(total, 1)}, indent=1) + "\n")
    print(f"written to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
