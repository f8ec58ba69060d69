"""The nanoGPT / llm.c shard format and .npy token files: written, read back token for token, refused
in one line when wrong."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from archbench.data import shards
from archbench.errors import ConfigError


def nanogpt_load(path: Path) -> np.ndarray:
    """How modded-nanogpt's and llm.c's loaders read a shard: 256 int32, then header[2] uint16 tokens."""
    header = np.fromfile(path, dtype=np.int32, count=256)
    assert header[0] == 20240520 and header[1] == 1
    with open(path, "rb") as f:
        f.seek(256 * 4)
        tokens = np.frombuffer(f.read(), dtype=np.uint16)
    assert len(tokens) == header[2]
    return tokens


def test_a_shard_reads_back_token_for_token_as_nanogpt_reads_it(tmp_path: Path) -> None:
    tokens = np.random.default_rng(0).integers(0, 50257, size=10_001)
    path = tmp_path / "s.bin"
    shards.write_shard(path, tokens, vocab_size=50257)
    assert path.stat().st_size == 1024 + 2 * len(tokens)
    assert np.array_equal(nanogpt_load(path), tokens)
    info = shards.inspect(path)
    assert (info.count, info.dtype, info.offset) == (len(tokens), np.dtype("<u2"), 1024)
    mapped = shards.open_tokens(info)
    assert np.array_equal(mapped, tokens) and not mapped.flags.writeable


def test_vocabularies_above_65536_use_llmc_uint32_layout(tmp_path: Path) -> None:
    tokens = np.array([0, 65535, 65536, 128255], dtype=np.int64)
    path = tmp_path / "big.bin"
    shards.write_shard(path, tokens, vocab_size=128256)
    header = np.fromfile(path, dtype=np.int32, count=3)
    assert header.tolist() == [20240801, 7, 4]
    assert np.array_equal(shards.open_tokens(shards.inspect(path)), tokens)


@pytest.mark.parametrize("dtype", ["uint16", "uint32"])
def test_npy_token_arrays_are_mapped(tmp_path: Path, dtype: str) -> None:
    tokens = np.arange(1000, dtype=dtype)
    np.save(tmp_path / "t.npy", tokens)
    info = shards.inspect(tmp_path / "t.npy")
    assert info.count == 1000 and np.array_equal(shards.open_tokens(info), tokens)


def _corrupt(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / "bad.bin"
    shards.write_shard(path, np.arange(100), vocab_size=256)
    raw = bytearray(path.read_bytes())
    if kind == "magic":
        raw[:4] = np.int32(12345).tobytes()
    elif kind == "truncated":
        raw = raw[:-10]
    elif kind == "trailing":
        raw += b"\0\0"
    elif kind == "short":
        raw = raw[:100]
    path.write_bytes(bytes(raw))
    return path


@pytest.mark.parametrize(
    ("kind", "fragment"),
    [
        ("magic", "magic 12345 version 1 is not a token shard"),
        ("truncated", "the header says 100 tokens (200 bytes) but the body holds 190 bytes (truncated)"),
        ("trailing", "body holds 202 bytes (trailing bytes)"),
        ("short", "shorter than the 1024-byte header"),
    ],
)
def test_a_broken_shard_is_refused_in_one_line(tmp_path: Path, kind: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        shards.inspect(_corrupt(tmp_path, kind))
    assert fragment in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("array", [np.arange(10, dtype=np.int64), np.zeros((2, 3), dtype=np.uint16)])
def test_npy_of_another_type_or_shape_is_refused(tmp_path: Path, array: np.ndarray) -> None:
    np.save(tmp_path / "x.npy", array)
    with pytest.raises(ConfigError, match="expected a 1-D array of uint16 or uint32 tokens"):
        shards.inspect(tmp_path / "x.npy")
