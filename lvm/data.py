"""Data sets for the course: MNIST (original IDX files, checked and downloaded safely), scikit-learn's digits,
binarisation, and the train/validation/test splits each run profile uses.

MNIST lives in ``<dir>/mnist/`` as the four original ``.gz`` files, where ``<dir>`` is the ``data_dir``
argument, else ``LVM_DATA_DIR``, else a user cache directory (``$XDG_CACHE_HOME/lvm`` or ``~/.cache/lvm``).
Every file is checked against its MD5 checksum before use; missing files are downloaded when allowed, into a
temporary file that only takes the final name once its checksum is right.

Binarisation is an option of the *data*, not of the model: a Bernoulli likelihood wants pixels in {0, 1}, and
``dynamic_binarize`` draws them afresh (``lvm.fit`` calls it once per epoch as its ``transform``), while
``static_binarize`` draws them once, reproducibly.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import http.client
import os
import sys
import tempfile
import time
import urllib.request
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from ._checks import as_tensor, check_int
from .profiles import Profile, current_profile, profile_named
from .shapes import Shapes, shapes  # noqa: F401  (lvm.data.shapes: the procedural data set of chapter 8)

__all__ = [
    "MNIST_FILES",
    "MNIST_MD5",
    "MNIST_MIRRORS",
    "ChecksumError",
    "MnistNotFoundError",
    "MnistSplits",
    "data_root",
    "digits",
    "dynamic_binarize",
    "mnist",
    "mnist_splits",
    "shapes",
    "static_binarize",
]

# (images, labels) file names of each split, as distributed by LeCun and Cortes.
MNIST_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

# MD5 of each .gz file; a module constant so that tests can swap in the checksums of files they generate.
MNIST_MD5: dict[str, str] = {
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
}

#: Where :func:`mnist` downloads the files from, tried in order (the original yann.lecun.com host now
#: often refuses automated downloads).
MNIST_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

_IMAGES_MAGIC = 2051  # IDX: 0x00 0x00, type 0x08 (unsigned byte), 3 dimensions
_LABELS_MAGIC = 2049  # IDX: 0x00 0x00, type 0x08 (unsigned byte), 1 dimension
_SIDE = 28
_TIMEOUT_S = 60  # a single read from a mirror waits at most this long
# A whole file must arrive within this many seconds: a server that trickles a byte every minute never trips the
# read timeout above. (9.9 MB, the largest file, in 5 minutes is 33 kB/s.)
_DEADLINE_S = 300
_clock = time.monotonic  # a module attribute, so that tests can run the clock fast
_CHUNK = 1 << 16


class MnistNotFoundError(FileNotFoundError):
    """MNIST files are missing and could not be downloaded; the message says what to do."""


class ChecksumError(ValueError):
    """A file's MD5 checksum is not the published one: the file is corrupt or incomplete."""


# ---------------------------------------------------------------------------------------------------------
# Where the files live


def data_root(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The data directory: ``data_dir``, else ``LVM_DATA_DIR``, else ``$XDG_CACHE_HOME/lvm`` or ``~/.cache/lvm``.

    MNIST is looked for in ``data_root(...) / "mnist"``.
    """
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get("LVM_DATA_DIR", "").strip()
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME", "").strip()
    base = Path(cache).expanduser() if cache else Path.home() / ".cache"
    return base / "lvm"


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _verify(path: Path) -> None:
    expected = MNIST_MD5[path.name]
    got = _md5(path)
    if got != expected:
        raise ChecksumError(
            f"{path}: MD5 checksum mismatch for {path.name} (expected {expected}, got {got}). The file is corrupt "
            f"or incomplete: delete it and retry (with download=True it is fetched again).")


# ---------------------------------------------------------------------------------------------------------
# Downloading


def _download(name: str, directory: Path) -> list[str]:
    """Fetch ``name`` into ``directory`` from the first mirror that serves the right bytes.

    Returns the list of failures (one line per mirror); empty means the file is now in place, verified. The
    bytes go to a temporary file in the same directory (so the final rename is atomic) and only take the
    final name after the MD5 matches: a partial or corrupt download never sits under the final name.
    """
    failures = []
    expected = MNIST_MD5[name]
    for mirror in MNIST_MIRRORS:
        url = mirror.rstrip("/") + "/" + name
        tmp = None
        print(f"lvm: downloading {url}", file=sys.stderr)
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=directory)
            digest = hashlib.md5()
            with os.fdopen(fd, "wb") as out:
                _fetch(url, out, digest)
            got = digest.hexdigest()
            if got != expected:
                failures.append(f"{url}: checksum mismatch (expected {expected}, got {got})")
                continue
            os.replace(tmp, directory / name)
            tmp = None
            return []
        except (OSError, ValueError, http.client.HTTPException) as exc:  # URLError and timeouts are OSErrors
            failures.append(f"{url}: {type(exc).__name__}: {exc}")
        finally:
            if tmp is not None and os.path.exists(tmp):
                os.remove(tmp)
    return failures


def _fetch(url: str, out: BinaryIO, digest: hashlib._Hash) -> None:
    """Stream ``url`` into the file ``out``, updating ``digest``; ``TimeoutError`` past the deadline.

    The deadline (:data:`_DEADLINE_S`) is checked after every read, and each read returns what has arrived
    (``read1``) rather than waiting for a full chunk, so a trickling server is given up on within the deadline
    plus one read timeout.
    """
    deadline = _clock() + _DEADLINE_S
    request = urllib.request.Request(url, headers={"User-Agent": "lvm-course"})
    with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:
        read = getattr(response, "read1", response.read)
        received = 0
        for chunk in iter(lambda: read(_CHUNK), b""):
            digest.update(chunk)
            out.write(chunk)
            received += len(chunk)
            if _clock() > deadline:
                raise TimeoutError(f"gave up after {_DEADLINE_S} s with only {received} bytes received (the "
                                   "server is too slow); try again later, or copy the files by hand")


def _ensure_files(split: str, data_dir: str | os.PathLike[str] | None, download: bool) -> tuple[Path, Path]:
    root = data_root(data_dir)
    directory = root / "mnist"
    paths = [directory / name for name in MNIST_FILES[split]]
    missing = [p.name for p in paths if not p.is_file()]
    failures: list[str] = []
    from_environment = data_dir is None and bool(os.environ.get("LVM_DATA_DIR", "").strip())
    if missing and download and from_environment and not root.is_dir():
        # LVM_DATA_DIR is set once and forgotten: one that names no directory is most likely mistyped, and
        # creating it would hide the typo and download 50 MB into the wrong place. (A data_dir argument is
        # created: it is written where it is used.)
        failures.append(f"LVM_DATA_DIR names {root}, which does not exist (mistyped?): create it first if it "
                        "is right")
    elif missing and download:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            failures.append(f"cannot create {directory}: {exc}")
        else:
            for name in missing:
                failures += _download(name, directory)
        missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise MnistNotFoundError(_missing_message(split, missing, directory, data_dir, download, failures))
    for path in paths:
        _verify(path)
    return paths[0], paths[1]


def _missing_message(split: str, missing: list[str], directory: Path, data_dir: str | os.PathLike[str] | None,
                     download: bool, failures: list[str]) -> str:
    if data_dir is not None:
        source = "the data_dir argument"
    elif os.environ.get("LVM_DATA_DIR", "").strip():
        source = "LVM_DATA_DIR"
    else:
        source = "the default cache directory, since LVM_DATA_DIR is not set"
    lines = [
        f"MNIST {split} split: missing {', '.join(missing)} in {directory.resolve()} (chosen by {source}).",
    ]
    if not download:
        lines.append("Not downloaded because download=False.")
    elif failures:
        lines.append("Download failed from every mirror:")
        lines += [f"  - {failure}" for failure in failures]
    all_files = ", ".join(sorted(MNIST_MD5))
    lines.append(
        f"To fix: copy the MNIST .gz files ({all_files}) into {directory.resolve()}, or set LVM_DATA_DIR to a "
        f"directory whose mnist/ folder holds them, or run with download=True on a machine with internet.")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------
# Parsing IDX


def _read_idx(path: Path, magic: int) -> np.ndarray:
    """An IDX file of unsigned bytes as a ``uint8`` array of its stated dimensions, checked throughout."""
    try:
        with gzip.open(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{path}: not a readable gzip file ({exc})") from exc
    if len(raw) < 4:
        raise ValueError(f"{path}: too short for an IDX header ({len(raw)} bytes)")
    got = int.from_bytes(raw[:4], "big")
    if got != magic:
        raise ValueError(f"{path}: wrong IDX magic number {got}, expected {magic}")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} bytes, need {header})")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(dims, dtype=np.int64))
    payload = len(raw) - header
    if payload != expected:
        what = "truncated" if payload < expected else "has trailing bytes"
        raise ValueError(f"{path}: IDX payload {what}: {payload} bytes for dimensions {list(dims)} "
                         f"({expected} bytes expected)")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def mnist(split: str, data_dir: str | os.PathLike[str] | None = None,
          download: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST images and labels, read from the original IDX files.

    Args:
        split: ``"train"`` (60,000 images) or ``"test"`` (10,000).
        data_dir: directory holding ``mnist/``; ``None`` means ``LVM_DATA_DIR``, else the user cache directory.
        download: fetch missing files from :data:`MNIST_MIRRORS` (needs internet).

    Returns:
        ``(images, labels)``: images ``float32 [n, 784]`` with grey levels scaled to [0, 1], labels
        ``int64 [n]`` in 0..9.

    Raises:
        MnistNotFoundError: files are missing and could not be downloaded (a :exc:`FileNotFoundError`).
        ChecksumError: a file's MD5 is wrong (a :exc:`ValueError`; delete the file and retry).
        ValueError: a bad ``split``, or a file that is not valid MNIST IDX.
    """
    if split not in MNIST_FILES:
        raise ValueError(f"split must be one of {sorted(MNIST_FILES)}, got {split!r}")
    images_path, labels_path = _ensure_files(split, data_dir, download)
    images = _read_idx(images_path, _IMAGES_MAGIC)
    labels = _read_idx(labels_path, _LABELS_MAGIC)
    if images.shape[1:] != (_SIDE, _SIDE):
        raise ValueError(f"{images_path}: images must be {_SIDE}x{_SIDE}, got {images.shape[1]}x{images.shape[2]}")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{images_path.name} holds {images.shape[0]} images but {labels_path.name} holds "
                         f"{labels.shape[0]} labels: the two files do not belong together")
    if labels.size and labels.max() > 9:
        raise ValueError(f"{labels_path}: labels must be digits 0..9, found {int(labels.max())}")
    # astype copies, so the tensors own writable memory rather than the read-only bytes buffer.
    x = torch.from_numpy(images.reshape(len(images), -1).astype(np.float32) / np.float32(255))
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


# ---------------------------------------------------------------------------------------------------------
# Binarisation


def _check_unit_interval(images: object, name: str) -> torch.Tensor:
    images = as_tensor(images, name)
    # One reduction (one device sync) checks range and NaN together: NaN fails both comparisons.
    if not bool(((images >= 0) & (images <= 1)).all()):
        raise ValueError(f"{name} must hold probabilities (grey levels in [0, 1]), "
                         f"got values from {float(images.min()):.4g} to {float(images.max()):.4g}")
    return images


def dynamic_binarize(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """A fresh binary image x ~ Bernoulli(images), drawn on the input's device (dynamic binarisation).

    Each call draws again, so a model trained with this transform (``lvm.fit(..., transform=dynamic_binarize)``
    draws once per epoch) sees a new binary version of every digit each epoch, which regularises.

    Args:
        images: grey levels in [0, 1], any shape, e.g. ``[n, 784]``.
        generator (~torch.Generator | None): an optional generator on the same device, for reproducible
            draws.

    Returns:
        a tensor of 0s and 1s, same shape, dtype and device as ``images``.
    """
    images = _check_unit_interval(images, "images")
    return torch.bernoulli(images, generator=generator)


def static_binarize(images: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """One fixed binary draw x ~ Bernoulli(images): the same ``seed`` gives the same images on any device.

    The draw uses a CPU generator, so the result does not depend on where ``images`` lives.

    Args:
        images: grey levels in [0, 1], any shape.
        seed: the seed of the draw.

    Returns:
        a tensor of 0s and 1s, same shape, dtype and device as ``images``.
    """
    images = _check_unit_interval(images, "images")
    generator = torch.Generator().manual_seed(check_int(seed, "seed", minimum=0))  # 1.7 is not silently 1
    # Drawn on the CPU, where a seeded generator gives the same bits whatever device the images live on.
    return torch.bernoulli(images.detach().cpu(), generator=generator).to(images.device)


# ---------------------------------------------------------------------------------------------------------
# scikit-learn's digits


def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's bundled 8x8 digits (always offline): a small stand-in for MNIST.

    Returns:
        ``(images, labels)``: images ``float32 [1797, 64]`` in [0, 1] (the 17 grey levels divided by 16),
        labels ``int64 [1797]`` in 0..9.
    """
    from sklearn.datasets import load_digits  # imported here: only this loader needs scikit-learn

    bunch = load_digits()
    x = torch.from_numpy(np.asarray(bunch.data, dtype=np.float32) / np.float32(16))
    y = torch.from_numpy(np.asarray(bunch.target, dtype=np.int64))
    return x, y


# ---------------------------------------------------------------------------------------------------------
# Splits per profile


@dataclasses.dataclass
class MnistSplits:
    """Training, validation and test sets: images ``float32 [n, 784]`` in [0, 1], labels ``int64 [n]``."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    description: str


def _resolve_profile(profile: object) -> Profile:
    if profile is None:
        return current_profile()
    if isinstance(profile, Profile):
        return profile
    if isinstance(profile, str):
        try:
            return profile_named(profile)
        except ValueError:
            raise ValueError(f"profile must be a Profile, a profile name or None, got {profile!r}") from None
    raise ValueError(f"profile must be a Profile, a profile name or None, got {type(profile).__name__}")


def mnist_splits(profile: Profile | str | None = None, data_dir: str | os.PathLike[str] | None = None,
                 download: bool = True, seed: int = 0) -> MnistSplits:
    """The MNIST splits a run profile uses.

    * A profile with ``mnist_train`` set (``quick``): only the 10k **test** split (1.6 MB, a small and
      fast stand-in for the 60k training split), shuffled with ``seed``; the first ``mnist_train`` images
      train, the next ``mnist_val`` validate, and the test set *is* the validation set (``description`` says so).
    * A profile with ``mnist_train=None`` (``full``): the training split shuffled with ``seed``; the last
      ``mnist_val`` images validate (50k/10k for MNIST), the rest train; the test split is the test set.

    Args:
        profile: a :class:`~lvm.profiles.Profile`, its name, or ``None`` for ``lvm.profiles.current_profile()``.
        data_dir, download: as in :func:`mnist`.
        seed: the seed of the shuffle (the same seed gives the same split).
    """
    profile = _resolve_profile(profile)
    generator = torch.Generator().manual_seed(int(seed))
    if profile.mnist_train is not None:
        x, y = mnist("test", data_dir=data_dir, download=download)
        n_train, n_val = profile.mnist_train, profile.mnist_val
        if n_train < 1 or n_val < 1 or n_train + n_val > len(x):
            raise ValueError(f"profile {profile.name!r} asks for {n_train} training + {n_val} validation images, "
                             f"but the MNIST test split holds {len(x)}")
        order = torch.randperm(len(x), generator=generator)
        train, val = order[:n_train], order[n_train:n_train + n_val]
        description = (f"profile {profile.name!r}: {n_train} training and {n_val} validation images carved out of "
                       f"MNIST's {len(x)}-image test split, a small stand-in for the training split. The test set "
                       f"IS the validation set, so 'test' numbers here are validation numbers.")
        return MnistSplits(x[train], y[train], x[val], y[val], x[val], y[val], description)
    x, y = mnist("train", data_dir=data_dir, download=download)
    x_test, y_test = mnist("test", data_dir=data_dir, download=download)
    n_val = profile.mnist_val
    if n_val < 1 or n_val >= len(x):
        raise ValueError(f"profile {profile.name!r} asks for {n_val} validation images, but the MNIST training "
                         f"split holds {len(x)} (some must be left to train on)")
    order = torch.randperm(len(x), generator=generator)
    train, val = order[:len(x) - n_val], order[len(x) - n_val:]
    description = (f"profile {profile.name!r}: {len(train)} training and {n_val} validation images from MNIST's "
                   f"{len(x)}-image training split; the {len(x_test)}-image test split is the test set.")
    return MnistSplits(x[train], y[train], x[val], y[val], x_test, y_test, description)
