"""A token stream over several token files, read through memory maps: nothing is loaded up front.

Training draws windows at random positions: a window lies inside one file (as nanoGPT's loaders read
one shard at a time), each valid start in the whole stream equally likely. Drawing a batch costs one
vectorised gather per file it touches and the page faults of the windows themselves, so it does not get
slower as the corpus grows.

Memory stays flat: a fault maps more than the window it serves (the page's neighbours in the page cache,
Linux's fault-around; a whole large folio, up to 2 MB, on file systems that cache in them; random-access
advice stops neither), so the pages a process has mapped would otherwise grow towards the whole corpus as
training touches more of it (measured: 4,800 windows of 514 bytes mapped 190 MB of a 200 MB file). After
each window is read, the stretch of the map around it is handed back (``MADV_DONTNEED``: the process drops
its mappings, the data stays in the page cache and is mapped again when drawn), so resident memory does not
depend on the corpus size; this costs a system call per window.

The caller supplies the random start indices (from its own seeded generator), so the stream knows
nothing of training.
"""

from __future__ import annotations

import mmap
from collections.abc import Sequence

import numpy as np

from archbench.data.shards import ShardInfo, open_tokens

_SPAN = 2 << 20  # the largest stretch one fault maps (a PMD-sized folio); a multiple of the page size


class TokenStream:
    """The tokens of ``files`` in order, as one sequence."""

    def __init__(self, files: Sequence[ShardInfo]) -> None:
        self.files = tuple(files)
        self.arrays = [open_tokens(f) for f in self.files]
        self.lengths = np.array([len(a) for a in self.arrays], dtype=np.int64)
        bases = [getattr(a.base, "obj", a.base) for a in self.arrays]  # frombuffer holds a memoryview of the map
        self.maps = [b if isinstance(b, mmap.mmap) else None for b in bases]

    def __len__(self) -> int:
        return int(self.lengths.sum())

    def starts(self, length: int) -> int:
        """How many windows of ``length`` tokens lie inside one file: draw starts from ``[0, this)``."""
        return int(np.clip(self.lengths - length + 1, 0, None).sum())

    def windows(self, starts: np.ndarray, length: int) -> np.ndarray:
        """``(len(starts), length)`` int64 tokens: window ``i`` is the ``starts[i]``-th valid window.

        The work is per window (a slice, then handing back the 2 MB-aligned stretch of the map around it),
        never per file, so a batch costs the same whether the corpus has one shard or hundreds."""
        per_file = np.clip(self.lengths - length + 1, 0, None)
        ends = np.cumsum(per_file)
        starts = np.asarray(starts, dtype=np.int64)
        if len(starts) and (starts.min() < 0 or starts.max() >= ends[-1]):
            raise IndexError(f"window starts must lie in [0, {int(ends[-1])})")
        which = np.searchsorted(ends, starts, side="right")
        offsets = starts - (ends - per_file)[which]
        out = np.empty((len(starts), length), dtype=np.int64)
        for i, (f, off) in enumerate(zip(which.tolist(), offsets.tolist(), strict=True)):
            out[i] = self.arrays[f][off : off + length]
            self._release(f, off, length)
        return out

    def _release(self, f: int, offset: int, length: int) -> None:
        """Hand back the map around tokens ``[offset, offset + length)`` of file ``f`` (see the module
        docstring); the stretch is widened to 2 MB boundaries, the largest a fault maps."""
        m = self.maps[f]
        if m is None or not hasattr(mmap, "MADV_DONTNEED"):
            return
        item = self.arrays[f].itemsize
        first = self.files[f].offset + offset * item
        lo = first // _SPAN * _SPAN
        hi = min(len(m), -(-(first + length * item) // _SPAN) * _SPAN)
        m.madvise(mmap.MADV_DONTNEED, lo, hi - lo)

    def head(self, n: int) -> np.ndarray:
        """The first ``n`` tokens (fewer when the stream is shorter), as an int64 copy."""
        out, left = [], n
        for arr in self.arrays:
            if left <= 0:
                break
            take = arr[:left]
            out.append(np.asarray(take, dtype=np.int64))
            left -= len(take)
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)
