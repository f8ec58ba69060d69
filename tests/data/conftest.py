"""Data the tests make: text corpora from this machine's own files, a BPE tokenizer trained on them, and a
private data cache per test (nothing is downloaded; nothing is left in ~/.cache)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from archbench.evaluators.corpus import list_files, stdlib_root

VOCAB = 512


def stdlib_texts(n: int, skip: int = 0) -> list[tuple[str, str]]:
    """``n`` (name, text) pairs of this Python's standard library sources (real text, no download)."""
    files = list_files(stdlib_root())[skip : skip + n]
    return [(f"{i:03d}_{p.name}", p.read_text(encoding="utf-8", errors="replace")) for i, p in enumerate(files)]


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Each test prepares into its own cache (nothing is left in ~/.cache)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("ARCHBENCH_CACHE_DIR", str(cache))
    yield cache


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    """40 text files (~300 KB) and a hidden file that must be left out."""
    root = tmp_path / "corpus"
    (root / "sub").mkdir(parents=True)
    for i, (name, text) in enumerate(stdlib_texts(40, skip=10)):
        (root / ("sub" if i % 2 else "") / f"{name}.txt").write_text(text, encoding="utf-8")
    (root / ".hidden").write_text("never read")
    return root


@pytest.fixture
def jsonl_file(tmp_path: Path) -> Path:
    """One JSON object per paragraph of some stdlib sources, the text under "content", some nulls."""
    path = tmp_path / "docs.jsonl"
    lines = []
    for name, text in stdlib_texts(20, skip=60):
        for para in text.split("\n\n"):
            if para.strip():
                lines.append(json.dumps({"id": name, "content": para}))
    lines.insert(3, json.dumps({"id": "empty", "content": None}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def bpe_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A byte-level BPE tokenizer.json (vocabulary 512, <|endoftext|> special) trained here on local text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator((text for _, text in stdlib_texts(60)), trainer)
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    tok.save(str(path))
    return path
