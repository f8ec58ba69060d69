"""A separate process that writes to a leaderboard (run by the crash and concurrency tests).

    python _worker.py append  ROOT WORKER N_ROWS BATCH START_FILE   # N_ROWS rows in appends of BATCH
    python _worker.py forever ROOT BATCH STUDY                     # append batches until killed
    python _worker.py compact ROOT STOP_FILE                       # compact until STOP_FILE exists

Every finished append is acknowledged on stdout ("ack <batch>") only after ``append`` returned.
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

from archbench.errors import ArchbenchError
from archbench.leaderboard import Leaderboard


def rows(study: str, start: int, n: int, batch: int) -> list[dict]:
    return [
        {
            "arch_id": f"{(start + i) % 4096:012x}",
            "study": study,
            "trial": start + i,
            "seed": batch,
            "task": "charlm",
            "status": "ok",
            "val_loss": (start + i) * 0.001,
            "latency_ms": 1.0 + (start + i) % 97,
            "device_name": "cpu",
            "error": "x" * 200,  # make parts big enough that a kill can land mid-write
        }
        for i in range(n)
    ]


def main(argv: list[str]) -> None:
    mode, root = argv[0], Path(argv[1])
    lb = Leaderboard(root)
    if mode == "append":
        worker, n_rows, batch, start_file = argv[2], int(argv[3]), int(argv[4]), Path(argv[5])
        while not start_file.exists():
            time.sleep(0.005)
        for b, start in enumerate(range(0, n_rows, batch)):
            lb.append(rows(f"w{worker}", start, min(batch, n_rows - start), b))
    elif mode == "forever":
        batch, study = int(argv[2]), argv[3]
        b = 0
        while True:
            lb.append(rows(study, b * batch, batch, b))
            print(f"ack {b}", flush=True)
            b += 1
    elif mode == "compact":
        stop = Path(argv[2])
        merges = 0
        while not stop.exists():
            with contextlib.suppress(ArchbenchError):  # the lock is taken by nobody else here, but be safe
                merges += len(lb.compact(small_rows=10_000, target_rows=100_000).new_parts)
            time.sleep(0.05)
        print(f"merges {merges}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
