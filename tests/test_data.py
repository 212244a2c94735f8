"""Tests of lvm.data: the MNIST IDX loader (on tiny IDX files generated here), downloads from file:// mirrors,
binarisation, scikit-learn's digits and the per-profile splits; plus one test on the real MNIST test split."""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from lvm import data
from lvm.profiles import Profile

TEST_IMAGES, TEST_LABELS = data.MNIST_FILES["test"]
TRAIN_IMAGES, TRAIN_LABELS = data.MNIST_FILES["train"]


# --- helpers: valid (or deliberately broken) IDX files ------------------------------------------------------


def idx_gz(array: np.ndarray, magic: int | None = None, payload_cut: int = 0) -> bytes:
    """Gzipped IDX bytes of a uint8 array: magic (0x0000 08 ndim), big-endian uint32 dims, then the payload."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    if magic is None:
        magic = 0x0800 | array.ndim
    header = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = array.tobytes()
    if payload_cut:
        payload = payload[:-payload_cut]
    return gzip.compress(header + payload, mtime=0)


def make_images(n: int, start: int = 0) -> np.ndarray:
    """``n`` distinct 28x28 uint8 images; image i encodes its index (start + i) in its first two pixels."""
    rng = np.random.default_rng(start + 12345)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    index = np.arange(start, start + n)
    images[:, 0, 0] = index % 256
    images[:, 0, 1] = index // 256
    return images


def decode_index(x: torch.Tensor) -> torch.Tensor:
    """Invert make_images' encoding on loaded images ``[n, 784]`` in [0, 1]."""
    raw = torch.round(x[:, :2] * 255).long()
    return raw[:, 0] + 256 * raw[:, 1]


def write_file(directory: Path, name: str, content: bytes, monkeypatch) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(content)
    monkeypatch.setitem(data.MNIST_MD5, name, hashlib.md5(content).hexdigest())
    return path


def write_split(root: Path, split: str, images: np.ndarray, labels: np.ndarray, monkeypatch) -> None:
    """Write a split's two IDX files to ``root/mnist`` and make their MD5s the expected ones."""
    image_name, label_name = data.MNIST_FILES[split]
    write_file(root / "mnist", image_name, idx_gz(images), monkeypatch)
    write_file(root / "mnist", label_name, idx_gz(labels), monkeypatch)


@pytest.fixture(autouse=True)
def _no_ambient_data_dir(monkeypatch, tmp_path):
    """Tests pass data_dir explicitly unless they test the environment; never touch the user's cache."""
    monkeypatch.delenv("LVM_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


@pytest.fixture
def small_test_split(tmp_path, monkeypatch):
    images = make_images(7)
    labels = np.arange(7, dtype=np.uint8) % 10
    write_split(tmp_path, "test", images, labels, monkeypatch)
    return tmp_path, images, labels


# --- loading good files ---------------------------------------------------------------------------------------


def test_good_files_round_trip(small_test_split):
    root, images, labels = small_test_split
    x, y = data.mnist("test", data_dir=root, download=False)
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert x.shape == (7, 784) and y.shape == (7,)
    expected = torch.from_numpy(images.reshape(7, 784).astype(np.float64) / 255.0)
    torch.testing.assert_close(x.double(), expected, rtol=0, atol=1e-7)
    assert torch.equal(y, torch.from_numpy(labels.astype(np.int64)))
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0


def test_full_range_scales_to_zero_and_one(tmp_path, monkeypatch):
    images = make_images(2)
    images[0, 5, 5], images[1, 5, 5] = 0, 255
    write_split(tmp_path, "test", images, np.array([3, 4], dtype=np.uint8), monkeypatch)
    x, _ = data.mnist("test", data_dir=tmp_path, download=False)
    assert float(x[0, 5 * 28 + 5]) == 0.0 and float(x[1, 5 * 28 + 5]) == 1.0


def test_bad_split_names_split():
    with pytest.raises(ValueError, match="split"):
        data.mnist("validation")


# --- broken files ---------------------------------------------------------------------------------------------


def test_truncated_payload_raises_naming_file(tmp_path, monkeypatch):
    write_file(tmp_path / "mnist", TEST_IMAGES, idx_gz(make_images(3), payload_cut=10), monkeypatch)
    write_file(tmp_path / "mnist", TEST_LABELS, idx_gz(np.zeros(3, np.uint8)), monkeypatch)
    with pytest.raises(ValueError, match=f"{TEST_IMAGES}.*truncated"):
        data.mnist("test", data_dir=tmp_path, download=False)


def test_trailing_bytes_raise(tmp_path, monkeypatch):
    extra = gzip.compress(gzip.decompress(idx_gz(np.zeros(3, np.uint8))) + b"\x00", mtime=0)
    write_file(tmp_path / "mnist", TEST_IMAGES, idx_gz(make_images(3)), monkeypatch)
    write_file(tmp_path / "mnist", TEST_LABELS, extra, monkeypatch)
    with pytest.raises(ValueError, match=TEST_LABELS):
        data.mnist("test", data_dir=tmp_path, download=False)


def test_wrong_magic_raises(tmp_path, monkeypatch):
    # Labels written with the images' magic number 2051 (and 1 dimension): the labels file is rejected.
    write_file(tmp_path / "mnist", TEST_IMAGES, idx_gz(make_images(3)), monkeypatch)
    write_file(tmp_path / "mnist", TEST_LABELS, idx_gz(np.zeros(3, np.uint8), magic=2051), monkeypatch)
    with pytest.raises(ValueError, match=f"{TEST_LABELS}.*magic.*2051.*2049"):
        data.mnist("test", data_dir=tmp_path, download=False)


def test_wrong_image_size_raises(tmp_path, monkeypatch):
    write_file(tmp_path / "mnist", TEST_IMAGES, idx_gz(np.zeros((3, 8, 8), np.uint8)), monkeypatch)
    write_file(tmp_path / "mnist", TEST_LABELS, idx_gz(np.zeros(3, np.uint8)), monkeypatch)
    with pytest.raises(ValueError, match="28x28"):
        data.mnist("test", data_dir=tmp_path, download=False)


def test_wrong_checksum_says_which_file_and_what_to_do(small_test_split, monkeypatch):
    root = small_test_split[0]
    good = data.MNIST_MD5[TEST_LABELS]
    monkeypatch.setitem(data.MNIST_MD5, TEST_LABELS, "0" * 32)
    with pytest.raises(data.ChecksumError) as info:
        data.mnist("test", data_dir=root, download=False)
    message = str(info.value)
    assert TEST_LABELS in message and "0" * 32 in message and good in message and "delete" in message
    assert isinstance(info.value, ValueError)


def test_count_mismatch_raises(tmp_path, monkeypatch):
    write_split(tmp_path, "test", make_images(5), np.zeros(4, np.uint8), monkeypatch)
    with pytest.raises(ValueError, match="5 images but .* 4 labels"):
        data.mnist("test", data_dir=tmp_path, download=False)


def test_label_out_of_range_raises(tmp_path, monkeypatch):
    write_split(tmp_path, "test", make_images(2), np.array([1, 10], np.uint8), monkeypatch)
    with pytest.raises(ValueError, match="0..9"):
        data.mnist("test", data_dir=tmp_path, download=False)


# --- missing files and where they are looked for ------------------------------------------------------------


def test_missing_files_without_download_give_helpful_error(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        data.mnist("train", data_dir=tmp_path, download=False)
    message = str(info.value)
    assert isinstance(info.value, data.MnistNotFoundError)
    assert TRAIN_IMAGES in message and TRAIN_LABELS in message
    assert str((tmp_path / "mnist").resolve()) in message
    assert "LVM_DATA_DIR" in message and "copy" in message and "internet" in message
    assert not (tmp_path / "mnist").exists()  # download=False creates nothing


def test_only_the_missing_file_is_named(small_test_split):
    root = small_test_split[0]
    (root / "mnist" / TEST_LABELS).unlink()
    with pytest.raises(data.MnistNotFoundError) as info:
        data.mnist("test", data_dir=root, download=False)
    assert f"missing {TEST_LABELS} in" in str(info.value)


def test_lvm_data_dir_is_honoured(small_test_split, monkeypatch):
    root, images, _ = small_test_split
    monkeypatch.setenv("LVM_DATA_DIR", str(root))
    x, _ = data.mnist("test", download=False)
    assert x.shape == (len(images), 784)
    assert data.data_root() == root


def test_data_dir_argument_beats_lvm_data_dir(small_test_split, tmp_path, monkeypatch):
    root = small_test_split[0]
    monkeypatch.setenv("LVM_DATA_DIR", str(tmp_path / "elsewhere"))
    assert data.data_root(root) == root
    x, _ = data.mnist("test", data_dir=root, download=False)
    assert x.shape[0] == 7


def test_default_directory_is_the_user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data.data_root() == tmp_path / "cache" / "lvm"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data.data_root() == tmp_path / "home" / ".cache" / "lvm"
    with pytest.raises(data.MnistNotFoundError, match="LVM_DATA_DIR is not set"):
        data.mnist("test", download=False)


# --- downloading (mirrors are file:// URLs) -----------------------------------------------------------------


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A directory served as a file:// mirror holding a valid test split; returns (mirror dir, target root)."""
    served = tmp_path / "mirror"
    served.mkdir()
    images, labels = make_images(4), np.array([9, 8, 7, 6], np.uint8)
    for name, array in ((TEST_IMAGES, images), (TEST_LABELS, labels)):
        content = idx_gz(array)
        (served / name).write_bytes(content)
        monkeypatch.setitem(data.MNIST_MD5, name, hashlib.md5(content).hexdigest())
    return served, tmp_path / "target"


def test_download_writes_verified_files(mirror, monkeypatch):
    served, target = mirror
    monkeypatch.setattr(data, "MNIST_MIRRORS", (served.as_uri() + "/",))
    x, y = data.mnist("test", data_dir=target)
    assert x.shape == (4, 784) and y.tolist() == [9, 8, 7, 6]
    for name in (TEST_IMAGES, TEST_LABELS):
        assert (target / "mnist" / name).read_bytes() == (served / name).read_bytes()
    assert sorted(os.listdir(target / "mnist")) == sorted([TEST_IMAGES, TEST_LABELS])  # no temp files left


def test_corrupt_download_leaves_nothing_behind(mirror, monkeypatch):
    served, target = mirror
    (served / TEST_IMAGES).write_bytes(b"not what was promised")
    monkeypatch.setattr(data, "MNIST_MIRRORS", (served.as_uri(),))  # no trailing slash: still joined right
    with pytest.raises(data.MnistNotFoundError) as info:
        data.mnist("test", data_dir=target)
    message = str(info.value)
    assert TEST_IMAGES in message and "checksum mismatch" in message and data.MNIST_MD5[TEST_IMAGES] in message
    assert not (target / "mnist" / TEST_IMAGES).exists()
    assert os.listdir(target / "mnist") == [TEST_LABELS]  # the good file is kept; no temp file remains


def test_a_mistyped_lvm_data_dir_is_not_created(mirror, tmp_path, monkeypatch):
    served, _ = mirror
    monkeypatch.setattr(data, "MNIST_MIRRORS", (served.as_uri() + "/",))
    mistyped = tmp_path / "dtaa"
    monkeypatch.setenv("LVM_DATA_DIR", str(mistyped))
    with pytest.raises(data.MnistNotFoundError, match=r"LVM_DATA_DIR names .*dtaa, which does not exist"):
        data.mnist("test")
    assert not mistyped.exists()  # nothing created, nothing downloaded into the wrong place
    mistyped.mkdir()  # once it exists, it was meant: download into it
    x, _ = data.mnist("test")
    assert x.shape == (4, 784) and (mistyped / "mnist" / TEST_IMAGES).is_file()


@pytest.mark.parametrize("seed, error", [("abc", "seed must be"), (1.7, "seed must be"), (-1, "seed must be"),
                                         (True, "seed must be")])
def test_static_binarize_names_a_bad_seed(seed, error):
    with pytest.raises(ValueError, match=error):
        data.static_binarize(torch.full((2, 3), 0.5), seed=seed)


def test_failing_first_mirror_falls_back_to_second(mirror, tmp_path, monkeypatch):
    served, target = mirror
    missing = (tmp_path / "no-such-mirror").as_uri() + "/"
    monkeypatch.setattr(data, "MNIST_MIRRORS", (missing, served.as_uri() + "/"))
    x, _ = data.mnist("test", data_dir=target)
    assert x.shape == (4, 784)
    assert sorted(os.listdir(target / "mnist")) == sorted([TEST_IMAGES, TEST_LABELS])


def test_corrupt_first_mirror_falls_back_to_second(mirror, tmp_path, monkeypatch):
    served, target = mirror
    bad = tmp_path / "bad-mirror"
    bad.mkdir()
    for name in (TEST_IMAGES, TEST_LABELS):
        (bad / name).write_bytes((served / name).read_bytes()[:-5])  # truncated downloads
    monkeypatch.setattr(data, "MNIST_MIRRORS", (bad.as_uri() + "/", served.as_uri() + "/"))
    _, y = data.mnist("test", data_dir=target)
    assert y.tolist() == [9, 8, 7, 6]


def test_all_mirrors_failing_names_each_mirror(tmp_path, monkeypatch):
    mirrors = tuple((tmp_path / f"gone{i}").as_uri() + "/" for i in range(2))
    monkeypatch.setattr(data, "MNIST_MIRRORS", mirrors)
    with pytest.raises(data.MnistNotFoundError) as info:
        data.mnist("test", data_dir=tmp_path / "target")
    message = str(info.value)
    for mirror_url in mirrors:
        assert mirror_url + TEST_IMAGES in message and mirror_url + TEST_LABELS in message
    assert os.listdir(tmp_path / "target" / "mnist") == []


def test_download_through_patched_urlopen(tmp_path, monkeypatch):
    """The same path with urlopen replaced: an HTTP error from the first mirror, the bytes from the second."""
    import io
    import urllib.error

    content = idx_gz(make_images(2))
    monkeypatch.setitem(data.MNIST_MD5, TEST_IMAGES, hashlib.md5(content).hexdigest())
    labels = idx_gz(np.array([1, 2], np.uint8))
    monkeypatch.setitem(data.MNIST_MD5, TEST_LABELS, hashlib.md5(labels).hexdigest())
    served = {TEST_IMAGES: content, TEST_LABELS: labels}
    calls = []

    def fake_urlopen(request, timeout=None):
        url = request.full_url
        calls.append(url)
        if url.startswith("https://first.example/"):
            raise urllib.error.HTTPError(url, 503, "Service Unavailable", None, None)
        return io.BytesIO(served[url.rsplit("/", 1)[1]])

    monkeypatch.setattr(data, "MNIST_MIRRORS", ("https://first.example/", "https://second.example/"))
    monkeypatch.setattr(data.urllib.request, "urlopen", fake_urlopen)
    _, y = data.mnist("test", data_dir=tmp_path)
    assert y.tolist() == [1, 2]
    assert calls == [f"https://{host}.example/{name}" for name in (TEST_IMAGES, TEST_LABELS)
                     for host in ("first", "second")]


# --- binarisation ---------------------------------------------------------------------------------------------


def test_dynamic_binarize_values_mean_and_freshness():
    torch.manual_seed(0)
    p = torch.full((200, 500), 0.3)
    first, second = data.dynamic_binarize(p), data.dynamic_binarize(p)
    assert first.shape == p.shape and first.dtype == p.dtype and first.device == p.device
    assert set(first.unique().tolist()) <= {0.0, 1.0}
    stderr = math.sqrt(0.3 * 0.7 / p.numel())
    assert abs(float(first.mean()) - 0.3) < 4 * stderr
    assert not torch.equal(first, second)


def test_dynamic_binarize_follows_per_pixel_probabilities():
    probs = torch.tensor([0.0, 0.1, 0.5, 0.9, 1.0])
    x = data.dynamic_binarize(probs.expand(20_000, 5), generator=torch.Generator().manual_seed(1))
    stderr = torch.sqrt(probs * (1 - probs) / 20_000)
    assert (torch.abs(x.mean(0) - probs) <= 4 * stderr + 1e-12).all()


def test_dynamic_binarize_generator_reproducible():
    p = torch.rand(50, 784, generator=torch.Generator().manual_seed(2))
    a = data.dynamic_binarize(p, generator=torch.Generator().manual_seed(3))
    b = data.dynamic_binarize(p, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_static_binarize_reproducible_and_right_mean():
    p = torch.full((300, 300), 0.6)
    a, b = data.static_binarize(p, seed=5), data.static_binarize(p, seed=5)
    assert torch.equal(a, b)
    assert not torch.equal(a, data.static_binarize(p, seed=6))
    assert set(a.unique().tolist()) <= {0.0, 1.0} and a.dtype == p.dtype
    assert abs(float(a.mean()) - 0.6) < 4 * math.sqrt(0.6 * 0.4 / p.numel())
    assert torch.equal(p, torch.full((300, 300), 0.6))  # the input is left alone


@pytest.mark.parametrize("binarize", [data.dynamic_binarize, data.static_binarize])
@pytest.mark.parametrize("bad", [1.5, -0.1, float("nan")])
def test_binarize_rejects_non_probabilities(binarize, bad):
    with pytest.raises(ValueError, match="images"):
        binarize(torch.tensor([0.2, bad]))


# --- scikit-learn digits --------------------------------------------------------------------------------------


def test_digits_shapes_and_range():
    x, y = data.digits()
    assert x.shape == (1797, 64) and x.dtype == torch.float32
    assert y.shape == (1797,) and y.dtype == torch.int64
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    # Grey levels are integers 0..16 divided by 16.
    torch.testing.assert_close(x * 16, torch.round(x * 16), rtol=0, atol=1e-5)
    assert sorted(y.unique().tolist()) == list(range(10))


# --- splits per profile ---------------------------------------------------------------------------------------


def tiny_profile(train: int | None, val: int) -> Profile:
    return Profile("tiny", mc_samples=10, mnist_train=train, mnist_val=val, vae_epochs=1, vae_epochs_2d=1,
                   batch_size=4, eval_examples=2, eval_k=2)


def write_indexed_split(root: Path, split: str, n: int, start: int, monkeypatch) -> None:
    """n images whose label is (their encoded index) % 10, so image/label pairing can be checked."""
    labels = (np.arange(start, start + n) % 10).astype(np.uint8)
    write_split(root, split, make_images(n, start=start), labels, monkeypatch)


def test_quick_splits_sizes_disjointness_determinism(tmp_path, monkeypatch):
    write_indexed_split(tmp_path, "test", 50, 0, monkeypatch)
    profile = tiny_profile(30, 12)
    s = data.mnist_splits(profile, data_dir=tmp_path, download=False)
    assert s.x_train.shape == (30, 784) and s.y_train.shape == (30,)
    assert s.x_val.shape == (12, 784) and s.y_val.shape == (12,)
    assert torch.equal(s.x_test, s.x_val) and torch.equal(s.y_test, s.y_val)
    train_ids, val_ids = decode_index(s.x_train), decode_index(s.x_val)
    assert len(set(train_ids.tolist()) | set(val_ids.tolist())) == 42  # distinct images, disjoint sets
    assert torch.equal(s.y_train, train_ids % 10) and torch.equal(s.y_val, val_ids % 10)  # pairs kept
    assert train_ids.tolist() != sorted(train_ids.tolist())  # shuffled
    assert "test split" in s.description and "validation" in s.description
    again = data.mnist_splits(profile, data_dir=tmp_path, download=False)
    assert torch.equal(again.x_train, s.x_train) and torch.equal(again.x_val, s.x_val)
    other = data.mnist_splits(profile, data_dir=tmp_path, download=False, seed=1)
    assert not torch.equal(other.x_train, s.x_train)


def test_quick_splits_never_touch_the_training_split(tmp_path, monkeypatch):
    write_indexed_split(tmp_path, "test", 20, 0, monkeypatch)  # no training files at all
    s = data.mnist_splits(tiny_profile(10, 5), data_dir=tmp_path, download=False)
    assert len(s.x_train) == 10


def test_full_splits_use_training_split_and_real_test_set(tmp_path, monkeypatch):
    write_indexed_split(tmp_path, "train", 20, 0, monkeypatch)
    write_indexed_split(tmp_path, "test", 7, 1000, monkeypatch)
    s = data.mnist_splits(tiny_profile(None, 5), data_dir=tmp_path, download=False)
    train_ids, val_ids, test_ids = decode_index(s.x_train), decode_index(s.x_val), decode_index(s.x_test)
    assert len(train_ids) == 15 and len(val_ids) == 5
    assert sorted(train_ids.tolist() + val_ids.tolist()) == list(range(20))  # a partition of the training split
    assert test_ids.tolist() == list(range(1000, 1007))  # the test split, unshuffled
    assert torch.equal(s.y_val, val_ids % 10)
    again = data.mnist_splits(tiny_profile(None, 5), data_dir=tmp_path, download=False)
    assert torch.equal(again.x_val, s.x_val)


def test_profile_by_name_and_too_small_split(tmp_path, monkeypatch):
    write_indexed_split(tmp_path, "test", 50, 0, monkeypatch)
    with pytest.raises(ValueError, match="profile 'quick'.*8000"):  # quick needs 8000 + 2000 images
        data.mnist_splits("quick", data_dir=tmp_path, download=False)


@pytest.mark.parametrize("bad", ["medium", 3])
def test_bad_profile_names_profile(bad):
    with pytest.raises(ValueError, match="profile"):
        data.mnist_splits(bad)


# --- the real MNIST test split --------------------------------------------------------------------------------

# CI sets LVM_DATA_DIR; here the shared directory beside the repository holds the real test split.
_SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
_CONFIGURED = os.environ.get("LVM_DATA_DIR", "").strip()  # read at import: the autouse fixture unsets it
# Class counts of the MNIST test split as published with the data set (LeCun, Cortes & Burges).
_MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.needs_mnist
def test_real_mnist_test_split():
    if not _CONFIGURED and not (_SHARED / "mnist").is_dir():
        pytest.skip(f"real MNIST not here: LVM_DATA_DIR is unset and {_SHARED / 'mnist'} does not exist")
    root = Path(_CONFIGURED) if _CONFIGURED else _SHARED
    x, y = data.mnist("test", data_dir=root, download=False)
    assert x.shape == (10000, 784) and x.dtype == torch.float32
    assert y.shape == (10000,) and y.dtype == torch.int64
    counts = torch.bincount(y, minlength=10)
    assert int(counts.sum()) == 10000
    assert counts.tolist() == _MNIST_TEST_COUNTS
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    assert 0.10 < float(x.mean()) < 0.16  # mostly black background, as in every MNIST digit


def test_a_trickling_mirror_is_given_up_on_at_the_deadline(tmp_path, monkeypatch):
    """A server that sends one byte at a time, each within the read timeout, never trips it: the per-file
    deadline must stop the download, and the next mirror must be tried."""
    import io

    content = idx_gz(make_images(2))
    labels = idx_gz(np.array([1, 2], np.uint8))
    monkeypatch.setitem(data.MNIST_MD5, TEST_IMAGES, hashlib.md5(content).hexdigest())
    monkeypatch.setitem(data.MNIST_MD5, TEST_LABELS, hashlib.md5(labels).hexdigest())
    served = {TEST_IMAGES: content, TEST_LABELS: labels}
    now = [0.0]
    reads = []

    class Trickle(io.BytesIO):
        """Endless zero bytes, one per read, each taking 10 (simulated) seconds."""

        def read(self, size=-1):
            now[0] += 10.0
            reads.append(1)
            if len(reads) > 10_000:  # a safety stop for the test itself
                return b""
            return b"\0"

        read1 = read

    def fake_urlopen(request, timeout=None):
        url = request.full_url
        if url.startswith("https://slow.example/"):
            return Trickle()
        return io.BytesIO(served[url.rsplit("/", 1)[1]])

    monkeypatch.setattr(data, "_clock", lambda: now[0])
    monkeypatch.setattr(data, "MNIST_MIRRORS", ("https://slow.example/", "https://fast.example/"))
    monkeypatch.setattr(data.urllib.request, "urlopen", fake_urlopen)
    _, y = data.mnist("test", data_dir=tmp_path)
    assert y.tolist() == [1, 2]
    # Two files, each given up on the slow mirror after the 300 s deadline: 30 reads of 10 s (+1 past it).
    assert len(reads) <= 2 * (data._DEADLINE_S // 10 + 1)
    assert sorted(os.listdir(tmp_path / "mnist")) == sorted([TEST_IMAGES, TEST_LABELS])  # no .part left


def test_a_mirror_that_only_trickles_is_reported(tmp_path, monkeypatch):
    import io

    now = [0.0]

    class Trickle(io.BytesIO):
        def read(self, size=-1):
            now[0] += 10.0
            return b"\0" if now[0] < 1e5 else b""

        read1 = read

    monkeypatch.setattr(data, "_clock", lambda: now[0])
    monkeypatch.setattr(data, "MNIST_MIRRORS", ("https://slow.example/",))
    monkeypatch.setattr(data.urllib.request, "urlopen", lambda request, timeout=None: Trickle())
    with pytest.raises(data.MnistNotFoundError, match=r"TimeoutError: gave up after 300 s"):
        data.mnist("test", data_dir=tmp_path)
