"""Every registered task: deterministic, non-trivial data, and a validation set never seen in training."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from archbench import Architecture
from archbench.errors import ConfigError, UnknownNameError
from archbench.evaluators import IGNORE, TASKS, CharLM, Recall, get_task
from archbench.evaluators.corpus import is_validation, load_corpus

ARCH = Architecture(depth=1, width=32, heads=2, max_seq_len=64)
BUILTIN = ("charlm", "recall", "digits")


def _val(task_name: str) -> tuple[torch.Tensor, torch.Tensor]:
    data = get_task(task_name).prepare(ARCH)
    batches = list(data.val_batches(100))
    return torch.cat([b.x for b in batches]), torch.cat([b.y for b in batches])


def test_builtin_tasks_are_registered_and_unknown_names_list_them() -> None:
    assert set(BUILTIN) <= set(TASKS.names())
    with pytest.raises(UnknownNameError, match=r"known: .*charlm"):
        get_task("charlmm")
    with pytest.raises(ConfigError, match="unknown setting"):
        get_task("charlm", batchsize=3)


@pytest.mark.parametrize("name", BUILTIN)
def test_validation_set_is_fixed_and_non_trivial(name: str) -> None:
    x1, y1 = _val(name)
    x2, y2 = _val(name)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    scored = y1[y1 != IGNORE]
    assert scored.numel() >= 300
    assert scored.unique().numel() >= 10  # many distinct targets, not a constant
    assert x1.unique().numel() >= 17
    assert x1.min() >= 0 and x1.max() < ARCH.vocab_size


@pytest.mark.parametrize("name", BUILTIN)
def test_training_batches_follow_the_seed(name: str) -> None:
    data = get_task(name).prepare(ARCH)
    a = data.train_batch(torch.Generator().manual_seed(1), 8)
    b = data.train_batch(torch.Generator().manual_seed(1), 8)
    c = data.train_batch(torch.Generator().manual_seed(2), 8)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert not torch.equal(a.x, c.x)
    assert a.x.dtype == torch.long and a.x.shape[0] == 8 and a.x.shape[1] <= ARCH.max_seq_len


def test_charlm_splits_by_file_and_validation_comes_only_from_held_out_files() -> None:
    corpus = load_corpus()
    assert len(corpus.train) > 5_000_000 and len(corpus.val) > 200_000  # several MB of real source
    assert not set(corpus.train_files) & set(corpus.val_files)
    assert list(corpus.train_files) == sorted(corpus.train_files)
    assert all(is_validation(f, 0.1) for f in corpus.val_files)
    assert not any(is_validation(f, 0.1) for f in corpus.train_files)
    assert not any("site-packages" in f or f.startswith("test/") for f in corpus.train_files + corpus.val_files)
    root = corpus.root
    first = b"".join((Path(root) / f).read_bytes() for f in corpus.val_files[:3])
    assert bytes(corpus.val[: len(first)]) == first
    # The fixed validation windows are exactly the first val_bytes bytes of the held-out files.
    x, y = _val("charlm")
    assert bytes(x[:, 0].tolist()[:4]) == bytes(corpus.val[0 : 4 * 64 : 64])
    assert torch.equal(x[:, 1:], y[:, :-1])
    assert x.numel() == (CharLM().val_bytes // 64) * 64


def test_charlm_corpus_is_cached_in_memory_and_on_disk(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ARCHBENCH_CACHE_DIR", str(tmp_path))
    root = tmp_path / "src"
    (root / "pkg").mkdir(parents=True)
    for i in range(40):
        (root / "pkg" / f"m{i:02d}.py").write_text(f"x_{i} = {i} * 2\n" * 20)
    a = load_corpus(root)
    assert list(tmp_path.glob("charlm-*.npz"))
    assert load_corpus(root) is a  # in memory
    (root / "pkg" / "m00.py").write_text("changed = True\n")
    b = load_corpus(root)
    assert b is not a and b.digest != a.digest  # a changed file is noticed


def test_recall_answers_lie_beyond_a_short_window() -> None:
    task = Recall()
    data = task.prepare(ARCH)
    batch = data.train_batch(torch.Generator().manual_seed(0), 64)
    pairs = data.pairs
    assert pairs == 8
    distances = []
    for x, y in zip(batch.x, batch.y, strict=True):
        for t in (y != IGNORE).nonzero().flatten().tolist():
            key, value = x[t].item(), y[t].item()
            src = (x[: 2 * pairs] == key).nonzero().flatten()
            assert len(src) == 1 and x[src[0] + 1].item() == value  # the answer is the value stored with the key
            distances.append(t - (src[0].item() + 1))
    assert min(distances) >= ARCH.max_seq_len - 4 * pairs  # 32 tokens back at least: beyond window 16 or 32
    assert len(distances) == 64 * pairs


def test_recall_validation_sequences_never_appear_in_training() -> None:
    data = Recall().prepare(ARCH)
    val = {hashlib.sha1(row.numpy().tobytes()).digest() for row in data.val_x}
    assert len(val) == len(data.val_x)
    for seed in range(3):
        batch = data.train_batch(torch.Generator().manual_seed(seed), 1024)
        assert not val & {hashlib.sha1(row.numpy().tobytes()).digest() for row in batch.x}


def test_digits_validation_images_are_not_training_images() -> None:
    data = get_task("digits").prepare(ARCH)
    train = {row.numpy().tobytes() for row in data.train_x}
    assert not any(row.numpy().tobytes() in train for row in data.val_x)
    assert len(data.train_x) + len(data.val_x) == 1797
    assert data.val_y.bincount().min() >= 30  # stratified: every class in validation


@pytest.mark.parametrize(
    ("name", "arch", "match"),
    [
        ("charlm", ARCH.replace(vocab_size=128), "vocab_size >= 256"),
        ("recall", ARCH.replace(vocab_size=100), "vocab_size >= num_keys"),
        ("digits", ARCH.replace(max_seq_len=32), "max_seq_len >= 64"),
    ],
)
def test_tasks_refuse_architectures_that_cannot_do_them(name: str, arch: Architecture, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        get_task(name).prepare(arch)
