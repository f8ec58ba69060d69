"""Synthetic leaderboard rows for the tests (and the worker scripts they start)."""

from __future__ import annotations

import random
from typing import Any

from archbench.search_space.architecture import Architecture

DEVICES = ("NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-40GB", "cpu: AMD EPYC 7B13")
ARCHS = [
    Architecture(depth=d, width=w, heads=h, quant=q)
    for d in (2, 4, 8)
    for w in (64, 128)
    for h in (2, 4)
    for q in ("fp32", "bf16")
]


def make_rows(n: int, seed: int = 0, task: str = "charlm", study: str = "s", **fixed: Any) -> list[dict[str, Any]]:
    """``n`` rows like TrialResult.to_row() writes, with some failures (null metrics) mixed in."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        arch = rng.choice(ARCHS)
        status = rng.choices(["ok", "failed", "oom", "infeasible"], weights=[85, 5, 5, 5])[0]
        measured = status in ("ok", "infeasible")
        row: dict[str, Any] = {
            "arch_id": arch.arch_id,
            "study": study,
            "trial": i,
            "task": task,
            "budget": "steps=100",
            "seed": seed,
            "status": status,
            "error": "" if measured else "CUDA out of memory",
            **arch.to_dict(),
            "val_loss": round(rng.uniform(1.0, 3.0), 3) if measured else None,
            "val_acc": round(rng.uniform(0.2, 0.9), 3) if measured else None,
            "latency_ms": round(rng.uniform(0.5, 9.0), 2) if measured else None,
            "energy_mj": round(rng.uniform(1.0, 50.0), 1) if measured and rng.random() > 0.1 else None,
            "params": arch.depth * arch.width * arch.width * 12,
            "device_name": rng.choice(DEVICES),
            "device_kind": "cuda",
            "created_at": f"2026-11-{1 + i % 28:02d}T00:00:{i % 60:02d}.000000+00:00",
        }
        row.update(fixed)
        rows.append(row)
    return rows
