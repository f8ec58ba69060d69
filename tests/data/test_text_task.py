"""``task=text``: batches from the memory-mapped shards, a fixed validation set, bits per byte under any
tokenizer, the vocabulary refusal, ``vocab_size: task``, and the data digest on every task's rows."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from archbench import Architecture, SearchSpace
from archbench.data import load_tokenizer, shards
from archbench.data.plan import is_validation_doc
from archbench.errors import ConfigError
from archbench.evaluators import IGNORE, evaluate, get_task

from .conftest import VOCAB

ARCH = Architecture(depth=1, width=32, heads=2, max_seq_len=32, vocab_size=VOCAB)


def test_batches_are_windows_of_the_training_shards(corpus_dir: Path, bpe_tokenizer: Path) -> None:
    task = get_task("text", data=str(corpus_dir), tokenizer=str(bpe_tokenizer), val_tokens=2000)
    data = task.prepare(ARCH)
    a = data.train_batch(torch.Generator().manual_seed(1), 8)
    b = data.train_batch(torch.Generator().manual_seed(1), 8)
    assert a.x.shape == (8, 32) and a.x.dtype == torch.int64 and torch.equal(a.x, b.x)  # seeded
    assert torch.equal(a.x[:, 1:], a.y[:, :-1]) and int(a.x.max()) < VOCAB
    train = task.dataset().train_stream.head(10**7)
    row = a.x[0].numpy()
    hits = np.flatnonzero(np.all(np.lib.stride_tricks.sliding_window_view(train, 32) == row, axis=1))
    assert len(hits) >= 1  # the window is a stretch of the training shards


def test_the_validation_set_is_the_same_targets_for_every_sequence_length(corpus_dir: Path) -> None:
    task = get_task("text", data=str(corpus_dir), val_tokens=1000)
    val = task.dataset().val_stream.head(1001)
    for seq_len in (16, 24, 32):
        data = (
            task.prepare(ARCH.replace(vocab_size=256))
            if seq_len == 32
            else get_task("text", data=str(corpus_dir), val_tokens=1000, seq_len=seq_len).prepare(
                ARCH.replace(vocab_size=256)
            )
        )
        y = torch.cat([b.y.reshape(-1) for b in data.val_batches(7)])
        assert y[y != IGNORE].tolist() == val[1:].tolist()  # tokens 1..1000, in order, whatever the windows


def test_bits_per_byte_under_bytes_is_loss_over_ln2(corpus_dir: Path) -> None:
    task = get_task("text", data=str(corpus_dir), val_tokens=1000)
    assert task.summarize(1000 * 2.0, 0, 1000) == {"val_loss": 2.0, "val_bpb": 2.0 / math.log(2)}
    assert task.data_columns()["val_bytes_per_token"] == 1.0


def test_validation_bytes_are_exact_over_whole_documents(jsonl_file: Path, bpe_tokenizer: Path) -> None:
    task = get_task("text", data=str(jsonl_file), tokenizer=str(bpe_tokenizer), text_column="content")
    ds = task.dataset()
    tok = load_tokenizer(str(bpe_tokenizer))
    docs = [json.loads(line)["content"] for line in jsonl_file.read_text().splitlines()]
    val_docs = [d.encode() for d in docs if d is not None and is_validation_doc(d.encode(), 0.1)][:5]
    counts = [1 + len(tok.tok.encode(d.decode(), add_special_tokens=False).ids) for d in val_docs]
    assert ds.val_bytes(0, sum(counts)) == sum(map(len, val_docs))
    assert ds.val_bytes(0, counts[0] // 2) == pytest.approx(len(val_docs[0]) * (counts[0] // 2) / counts[0])
    n = min(task.val_tokens, len(ds.val_stream) - 1)
    per = task.data_columns()["val_bytes_per_token"]
    assert 1.5 < per < 6 and task.summarize(n * 3.0, 0, n)["val_bpb"] == pytest.approx(3.0 / math.log(2) / per)


def test_an_architecture_with_a_smaller_vocabulary_is_refused_in_one_line(
    corpus_dir: Path, bpe_tokenizer: Path
) -> None:
    task = get_task("text", data=str(corpus_dir), tokenizer=str(bpe_tokenizer))
    with pytest.raises(ConfigError) as err:
        task.prepare(ARCH.replace(vocab_size=256))
    assert str(err.value) == (
        f"task text: tokenizer {bpe_tokenizer} has 512 tokens but the architecture's vocab_size is 256; "
        "give vocab_size >= 512 (vocab_size: task in a space)"
    )
    assert task.vocab_size() == VOCAB


def test_vocab_size_task_in_a_space_is_the_tokenizers() -> None:
    fields = {"depth": [1, 2], "width": 32, "heads": 2, "vocab_size": "task"}
    assert SearchSpace.from_dict({"name": "s", "fields": fields}, task_vocab=512).choices["vocab_size"] == (512,)
    both = {**fields, "vocab_size": ["task", 1024]}
    assert SearchSpace.from_dict({"name": "s", "fields": both}, task_vocab=512).choices["vocab_size"] == (512, 1024)
    with pytest.raises(ConfigError, match="vocab_size: task needs a task whose vocabulary is known"):
        SearchSpace.from_dict({"name": "s", "fields": fields})


def test_the_digest_follows_corpus_tokenizer_split_and_validation_size(
    corpus_dir: Path, bpe_tokenizer: Path, tmp_path: Path
) -> None:
    base = get_task("text", data=str(corpus_dir)).digest()
    moved = shutil.copytree(corpus_dir, tmp_path / "moved")
    assert get_task("text", data=str(moved)).digest() == base
    others = [
        get_task("text", data=str(corpus_dir), tokenizer=str(bpe_tokenizer)),
        get_task("text", data=str(corpus_dir), val_fraction=0.2),
        get_task("text", data=str(corpus_dir), val_tokens=999),
    ]
    (moved / "new.txt").write_text("one more document\n")
    others.append(get_task("text", data=str(moved)))
    digests = [t.digest() for t in others]
    assert base not in digests and len(set(digests)) == len(digests)
    assert get_task("text", data=str(corpus_dir), batch_size=3).digest() == base  # how it is drawn: not data


def test_charlm_digest_is_its_content_not_its_place(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(12):
        (src / f"m{i}.py").write_text(f"def f{i}():\n    return {i}\n" * 50)
    a = get_task("charlm", root=str(src)).digest()
    b = get_task("charlm", root=str(shutil.copytree(src, tmp_path / "copy"))).digest()
    (src / "m0.py").write_text("changed = True\n")
    assert a == b != get_task("charlm", root=str(src)).digest()
    assert get_task("recall").digest() != get_task("recall", num_pairs=4).digest()


def test_token_files_train_in_place_with_bits_per_byte_by_decoding(tmp_path: Path) -> None:
    text = (Path(json.__file__).read_bytes() * 3)[:60_000]
    (tmp_path / "shards").mkdir()
    shards.write_shard(tmp_path / "shards" / "val_000000.bin", np.frombuffer(text[:5000], np.uint8), 256)
    shards.write_shard(tmp_path / "shards" / "train_000001.bin", np.frombuffer(text[5000:], np.uint8), 256)
    task = get_task("text", data=str(tmp_path / "shards"), val_tokens=2000)
    assert task.prepare(ARCH.replace(vocab_size=256)).val_x.shape == (63, 32)
    assert task.data_columns()["val_bytes_per_token"] == 1.0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["charlm", "recall", "digits", "text"])
def test_every_task_row_carries_its_data_digest(name: str, corpus_dir: Path) -> None:
    arch = Architecture(depth=1, width=32, heads=2, max_seq_len=64)
    task = get_task(name, **({"data": str(corpus_dir), "val_tokens": 512} if name == "text" else {}))
    row = evaluate(arch, task, "steps=2", measure=False, device="cpu").to_row()
    assert row["status"] == "ok" and row["data_digest"] == task.digest() and len(row["data_digest"]) == 16
    if name == "text":
        assert row["val_bpb"] == pytest.approx(row["val_loss"] / math.log(2))  # bytes: one byte per token
        assert row["val_bytes_per_token"] == 1.0
