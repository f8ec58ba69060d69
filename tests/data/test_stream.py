"""The memory-mapped token stream: windows stay inside one file, cover every valid start, and read the
right tokens."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from archbench.data import TokenStream, shards


@pytest.fixture
def stream(tmp_path: Path) -> TokenStream:
    sizes = (50, 3, 20)  # the middle file is shorter than a window
    infos = []
    base = 0
    for i, n in enumerate(sizes):
        shards.write_shard(tmp_path / f"s{i}.bin", np.arange(base, base + n), 1000)
        infos.append(shards.inspect(tmp_path / f"s{i}.bin"))
        base += n
    return TokenStream(infos)


def test_every_valid_start_is_one_window_inside_one_file(stream: TokenStream) -> None:
    length = 5
    n = stream.starts(length)
    assert len(stream) == 73 and n == (50 - 4) + 0 + (20 - 4)
    windows = stream.windows(np.arange(n), length)
    assert (np.diff(windows, axis=1) == 1).all()  # consecutive ids: no window spans two files
    firsts = windows[:, 0].tolist()
    assert firsts == list(range(0, 46)) + list(range(53, 69))
    with pytest.raises(IndexError):
        stream.windows(np.array([n]), length)


def test_head_reads_across_files(stream: TokenStream) -> None:
    assert stream.head(55).tolist() == list(range(55)) and stream.head(1000).tolist() == list(range(73))
    assert stream.head(10).dtype == np.int64


def _rss_file_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("RssFile:")).split()[1]) / 1024


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RssFile from Linux's /proc")
def test_drawing_does_not_grow_resident_memory_with_the_corpus(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    shards.write_shard(path, np.random.default_rng(0).integers(0, 256, 32_000_000), 256)  # 64 MB
    stream = TokenStream([shards.inspect(path)])
    rng = np.random.default_rng(1)
    before = _rss_file_mb()
    for _ in range(500):  # 8,000 windows: without the hand-back they map most of the file
        stream.windows(rng.integers(0, stream.starts(257), 16), 257)
    assert _rss_file_mb() - before < 8
