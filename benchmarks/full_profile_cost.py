"""What the ``full`` profile costs: every chapter executed top to bottom with ``LVM_PROFILE=full``.

    python benchmarks/full_profile_cost.py                      # chapters 1-5 run, 6-9 estimated (minutes)
    python benchmarks/full_profile_cost.py --chapters 6 7       # run chapters 6 and 7 too (about an hour on 2 cores)
    python benchmarks/full_profile_cost.py --chapters --estimate 8 9   # only the estimate of chapters 8 and 9
    python benchmarks/full_profile_cost.py --quick-check --chapters 1  # a smoke test of the code paths (seconds)

The publishing workflow (.github/workflows/publish.yml) builds the site with the ``full`` profile, on a CPU
runner; this measures what that costs, chapter by chapter, on the machine it runs on.

Chapters 6 to 9 need MNIST's 60,000-image training split. Where it is not at hand (no internet), they run on
**stand-in data of the real size**: the 10,000 test images tiled six times, each copy shifted by a pixel, written
as IDX files into a temporary data folder, with ``lvm.data.MNIST_MD5`` told their checksums in a cell inserted
after the set-up cell. The cost of training and evaluation depends on the sizes, not on the pixels, so the
times stand; the numbers the chapters print from such a run mean nothing and are not reported.

Running chapters 6 to 9 whole takes hours on two cores, so by default they are **estimated** instead: on the
same stand-in data, the script times what dominates them, at the full profile's sizes, and scales each by the
count the profile asks for:

* every ``lvm.fit`` call, as the chapter makes it (model, data, objective, validation or none): 2 epochs of
  each model, times the epochs the chapters train it for (chapter 8's β = 20, warm-up and free-bits runs
  share the timing of its 16-dimensional VAE: the objective costs nothing beside the network);
* the importance-weighting evaluations (chapter 7: K = 2 × 5,000 draws; chapter 9: ``lvm.iwae_bound`` with
  K = 5,000 for each of its two models) on 20 test images, times the test images;
* chapter 8's β-VAEs on ``lvm.data.shapes`` (60,000 images, 50 epochs, β = 1, 4, 10), the drawing of those
  images, and its scikit-learn fits, each timed once whole: the judges (logistic regression, 5 nearest
  neighbours), the 10-nearest-neighbour regressions of the shapes' factors (stand-in codes of the real
  shape), and the Gaussian mixture on 50,000 codes (all 100 EM steps: an upper bound).

Everything else in those chapters (plots, closed forms, chapter 9's one-dimensional diffusion sections, which
no profile sizes) takes seconds; the quick profile runs each of these chapters whole in under a minute.

``--quick-check`` runs every probe at 2% of its size (and any chapter run whole with the quick profile), to
exercise the code in seconds; its estimates are extrapolated from those token sizes and mean little, and it
writes nothing. Otherwise the script prints a table and writes ``benchmarks/results/full_profile.json``
(``--out``).
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
import warnings
from pathlib import Path

import nbformat
import numpy as np
import torch
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
RESULTS = ROOT / "benchmarks" / "results" / "full_profile.json"
MNIST_CHAPTERS = {6, 7, 8, 9}  # they train on MNIST's training split
PROBE_EPOCHS, PROBE_IMAGES = 2, 20  # epochs of each model, test images of each evaluation timed
TOKEN = 0.02  # --quick-check: every probe at 2% of its size (a smoke test of the code, not a measurement)


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


def estimate_mnist_chapters(data_dir: Path, md5: dict[str, str], chapters: list[int],
                            token: bool = False) -> tuple[list[dict], float]:
    """Time the dominant calls of chapters 6-9 at the full profile's sizes; scale each to the whole run.

    Returns the rows and what a full-size measurement spends timing them (seconds). With ``token``, every
    probe runs at ``TOKEN`` of its size and is extrapolated linearly: a smoke test, not a measurement.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.mixture import GaussianMixture
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

    import lvm

    lvm.data.MNIST_MD5.update(md5)
    profile = lvm.profiles.profile_named("full")
    splits = lvm.data.mnist_splits(profile, data_dir=data_dir, download=False)
    share = TOKEN if token else 1.0  # of every size that is timed; the seconds are divided by it

    def part(x: torch.Tensor, n: int | None = None) -> torch.Tensor:
        return x[:max(2, round(share * (len(x) if n is None else n)))]

    x_train, y_train, x_val = part(splits.x_train), part(splits.y_train), part(splits.x_val)
    x_val_binary = lvm.data.static_binarize(x_val, seed=0)
    fit = dict(batch_size=profile.batch_size, lr=1e-3, device="cpu", seed=0, progress=False)
    probe_epochs, probe_images = (1, 2) if token else (PROBE_EPOCHS, PROBE_IMAGES)
    measured: dict[str, tuple[float, int]] = {}  # seconds per unit at the real size, units a real run times

    def once(key: str, seconds_each, units: int = 1) -> float:
        """``seconds_each()`` the first time ``key`` is asked for; the stored value afterwards."""
        if key not in measured:
            measured[key] = (seconds_each(), units)
        return measured[key][0]

    def epoch(key: str, make, data=x_train, val=None, binarize=True, objective=None) -> float:
        """Seconds per epoch of ``lvm.fit(make(), data, ...)`` as the chapters call it."""
        def run() -> float:
            history = lvm.fit(make(), data, epochs=probe_epochs, x_val=val, objective=objective,
                              transform=lvm.data.dynamic_binarize if binarize else None, **fit)
            return sum(history.seconds) / probe_epochs / share
        return once(key, run, PROBE_EPOCHS)

    def per_image(key: str, make, k: int, weights: bool = False) -> float:
        """Seconds per test image of ``lvm.iwae_bound`` (or ``log_importance_weights``) with k draws."""
        def run() -> float:
            model = make().eval()
            x = lvm.data.static_binarize(splits.x_test[:probe_images], seed=1)
            evaluate = lvm.log_importance_weights if weights else lvm.iwae_bound
            with torch.no_grad():
                q = model.encode(x)
                return _seconds(lambda: evaluate(model, x, q, k=max(1, round(share * k)))) / probe_images / share
        return once(key, run, PROBE_IMAGES)

    def whole(key: str, fn) -> float:
        """Seconds of ``fn()``, which does its work on ``share`` of the real size."""
        return once(key, lambda: _seconds(fn) / share)

    def vae20() -> float:  # chapters 6 and 7, validated every epoch
        return epoch("vae20", lambda: lvm.VAE(784, 20, hidden=(400,)), val=x_val_binary)

    def vae16() -> float:  # chapters 8 and 9, not validated
        return epoch("vae16", lambda: lvm.VAE(784, 16))

    rows: list[tuple[str, float, int, str]] = []
    if 6 in chapters:
        rows += [
            ("06: Bernoulli VAE", vae20(), profile.vae_epochs, "epochs"),
            ("06: Gaussian VAE", epoch("gauss", lambda: lvm.VAE(784, 20, hidden=(400,), likelihood="gaussian",
                                                                 sigma=0.1), val=x_val, binarize=False),
             profile.vae_epochs, "epochs"),
            ("06: 2-D VAE", epoch("vae2-val", lambda: lvm.VAE(784, 2, hidden=(400,)), val=x_val_binary),
             profile.vae_epochs_2d, "epochs")]
    if 7 in chapters:
        rows += [
            ("07: Bernoulli VAE", vae20(), profile.vae_epochs, "epochs"),
            (f"07: importance weights, K = {2 * profile.eval_k:,}",
             per_image("weights", lambda: lvm.VAE(784, 20, hidden=(400,)), 2 * profile.eval_k, weights=True),
             profile.eval_examples, "images")]
    if 8 in chapters:
        half = profile.mnist_val // 2  # the judges learn from the first half of the held-out images
        n_codes = len(splits.x_train)  # one code per training image
        start = time.perf_counter()
        shapes = lvm.data.shapes(max(2, round(share * profile.shapes_train)), supersample=1)
        per_shape = (time.perf_counter() - start) / len(shapes.images)
        shapes_test = lvm.data.shapes(2_000, seed=1, supersample=1)
        gen = torch.Generator().manual_seed(0)
        shape_codes = torch.randn(len(shapes.images), 6, generator=gen).numpy()  # stand-ins for a β-VAE's codes
        test_codes = torch.randn(len(shapes_test.images), 6, generator=gen).numpy()
        mixture_codes = torch.randn(round(share * n_codes), 16, generator=gen).numpy()

        def regressions() -> None:  # one predictability(): the whole code, then each dimension alone
            for columns in [list(range(6)), *([j] for j in range(6))]:
                KNeighborsRegressor(10).fit(shape_codes[:, columns], shapes.factors[:, 1:].numpy()).predict(
                    test_codes[:, columns])

        def mixture() -> None:  # tol=0: every one of its 100 EM steps, the most the chapter's fit can take
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                GaussianMixture(10, covariance_type="full", random_state=0, tol=0).fit(mixture_codes)

        rows += [
            ("08: VAE (z: 16), ELBO", vae16(), profile.vae_epochs, "epochs"),
            ("08: VAE (z: 16), β = 20", vae16(), profile.vae_epochs, "epochs"),
            ("08: VAE (z: 16), warm-up, then β = 20 ± free bits", vae16(),
             profile.vae_epochs // 2 + 2 * (profile.vae_epochs - profile.vae_epochs // 2), "epochs"),
            ("08: conditional VAE (z: 4)", epoch("cvae", lambda: lvm.ConditionalVAE(784, 10, z_dim=4),
                                                 data=(x_train, y_train)), profile.vae_epochs, "epochs"),
            ("08: 2-D VAE", epoch("vae2", lambda: lvm.VAE(784, 2)), profile.vae_epochs_2d, "epochs"),
            (f"08: β-VAEs on {profile.shapes_train:,} shapes, β = 1, 4, 10",
             epoch("shapes", lambda: lvm.VAE(400, 6, hidden=(256,)), data=shapes.images, binarize=False,
                   objective=lvm.objectives.elbo(beta=4.0)), 3 * profile.shapes_epochs, "epochs"),
            ("08: lvm.data.shapes, training and test images",
             once("draw", lambda: per_shape, profile.shapes_train), profile.shapes_train + len(shapes_test.images),
             "images"),
            (f"08: logistic-regression judge, {half:,} images",
             whole("judge", lambda: LogisticRegression(max_iter=500, C=0.1).fit(
                 part(splits.x_val, half).numpy(), part(splits.y_val, half).numpy())), 1, "fit"),
            (f"08: 5-NN judge, {half:,} images, reading 10,500",
             whole("knn", lambda: KNeighborsClassifier(5).fit(
                 part(splits.x_val, half).numpy(), part(splits.y_val, half).numpy()).predict(
                 splits.x_train[:10_500].numpy())), 1, "fit"),
            ("08: 10-NN regression of the shapes' factors on pixels",
             whole("pixels", lambda: KNeighborsRegressor(10).fit(shapes.images.numpy(), shapes.factors.numpy())
                   .predict(shapes_test.images.numpy())), 1, "fit"),
            ("08: 10-NN regressions on a β-VAE's codes (7 per β)", whole("codes", regressions), 3, "β values"),
            (f"08: Gaussian mixture on {n_codes:,} codes, all 100 EM steps", whole("mixture", mixture), 1, "fit")]
    if 9 in chapters:
        n_eval = min(profile.eval_examples, len(splits.x_test)) + 2 * 20  # and a check on 20 images, twice

        def two_level() -> lvm.TwoLevelVAE:
            return lvm.TwoLevelVAE(784, 16, 8)

        rows += [
            ("09: VAE (z: 16)", vae16(), profile.vae_epochs, "epochs"),
            ("09: two-level VAE (z1: 16, z2: 8)", epoch("two", two_level), profile.vae_epochs, "epochs"),
            (f"09: IWAE bound, K = {profile.eval_k:,}, VAE (z: 16)",
             per_image("iwae16", lambda: lvm.VAE(784, 16), profile.eval_k), n_eval, "images"),
            (f"09: IWAE bound, K = {profile.eval_k:,}, two-level VAE",
             per_image("iwae-two", two_level, profile.eval_k), n_eval, "images")]
    table = [{"part": name, "seconds_each": float(f"{each:.4g}"), "count": count, "unit": unit,
              "seconds": round(each * count, 1)} for name, each, count, unit in rows]
    return table, sum(each * units for each, units in measured.values())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chapters", type=int, nargs="*", default=list(range(1, 6)),
                        help="chapters to run whole (default 1-5)")
    parser.add_argument("--estimate", type=int, nargs="*", choices=sorted(MNIST_CHAPTERS),
                        default=sorted(MNIST_CHAPTERS),
                        help="chapters to estimate (default 6-9; a chapter run whole is not estimated)")
    parser.add_argument("--no-estimate", action="store_true", help="estimate no chapter (as --estimate alone)")
    parser.add_argument("--quick-check", action="store_true",
                        help=f"a smoke test in seconds: chapters run whole with the quick profile, every probe at "
                             f"{TOKEN:.0%} of its size, nothing written")
    parser.add_argument("--out", type=Path, default=RESULTS,
                        help=f"where to write the JSON (default {RESULTS.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    estimated = [] if args.no_estimate else [c for c in args.estimate if c not in args.chapters]
    os.environ.update(LVM_PROFILE="quick" if args.quick_check else "full", LVM_PROGRESS="off", PYTHONHASHSEED="0")
    data_dir = Path(os.environ.get("LVM_DATA_DIR", Path.home() / ".cache" / "lvm"))
    has_train = (data_dir / "mnist" / "train-images-idx3-ubyte.gz").exists()
    rows, estimate, measuring = [], [], 0.0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        patch = None
        if MNIST_CHAPTERS & set(args.chapters + estimated) and not has_train:
            patch = stand_in_mnist(data_dir, Path(tmp))
            os.environ["LVM_DATA_DIR"] = tmp
        for number in args.chapters:
            path = next(BOOK.glob(f"{number:02d}_*.ipynb"))
            stand_in = patch is not None and number in MNIST_CHAPTERS
            seconds = run_chapter(path, patch if stand_in else None)
            rows.append({"chapter": path.stem, "seconds": round(seconds, 1), "stand_in_data": stand_in})
            print(f"{path.stem:55s} {seconds:8.1f} s{'  (stand-in MNIST of the real size)' if stand_in else ''}",
                  flush=True)
        if estimated:
            estimate, measuring = estimate_mnist_chapters(Path(os.environ["LVM_DATA_DIR"]), patch or {}, estimated,
                                                          token=args.quick_check)
            for row in estimate:
                print(f"{row['part']:55s} {row['seconds']:8.1f} s  ({row['seconds_each']:.4g} s x {row['count']:,} "
                      f"{row['unit']}, estimated)", flush=True)
    total = sum(r["seconds"] for r in rows) + sum(r["seconds"] for r in estimate)
    print(f"{'total':55s} {total:8.1f} s")
    if args.quick_check:
        print(f"quick check done in {time.perf_counter() - started:.0f} s; the estimates above are extrapolated "
              f"from {TOKEN:.0%} of every size and mean little. A full-size estimate of these chapters spends about "
              f"{measuring:.0f} s timing them, plus loading the data. Nothing written.")
        return 0
    timing = f", {measuring:.0f} s of it timing the estimated parts" if estimated else ""
    print(f"done in {time.perf_counter() - started:.0f} s{timing}")
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps({
        "profile": "full", "torch": torch.__version__, "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
        "cuda": torch.cuda.is_available(), "chapters": rows, "estimated_chapters": estimated,
        "estimated_mnist_parts": estimate, "total_seconds": round(total, 1)}, indent=1) + "\n")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
