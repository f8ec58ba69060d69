"""Ask-time scaling: a strategy's seconds per ask once 100, 300 and 1,000 trials have been told.

A model-based strategy refits on its whole history at every ask (a Gaussian process's fit grows as the
cube of the trials), so a sampler that is cheap at 50 trials may cost more than a trial at 1,000. This
times each registered strategy on ``lm_small`` (16 searched fields, the space of a real GPU search):
first it is told N trials (objectives a fixed smooth function of the encoding plus noise, so that there is
a front to model), then it is asked ``--asks`` times (each answer told before the next ask) and the
median seconds per ask are kept. The Optuna strategies learn the N trials as finished trials through
``warm`` (what their samplers read from storage, the same as told ones; asking 1,000 times to get there
would cost the very time being measured), the others through real ask/tell.

Timings are of this machine (``machine`` in the JSON); on a shared machine they are noisy, so compare
the ratios within one run. Writes ``benchmarks/results/ask_time.json``.

    python benchmarks/ask_time.py                       # every strategy at 100, 300, 1000
    python benchmarks/ask_time.py --strategies optuna_gp --told 100 300 --asks 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core, as the driver of a search on a shared machine has

HERE = Path(__file__).resolve().parent
SPACE = HERE.parent / "src" / "archbench" / "conf" / "space" / "lm_small.yaml"


def values_of(space: Any, arch: Any, rng: np.random.Generator) -> tuple[float, float]:
    """Two conflicting objectives of the encoding (bigger models: lower loss, higher latency), with noise."""
    _, upper = space.bounds()
    x = space.encode(arch) / np.maximum(upper, 1)
    size = float(x[:2].mean())  # depth and width
    loss = 2.0 - size + 0.3 * float(np.sin(3 * x).mean()) + 0.05 * rng.standard_normal()
    latency = float(np.exp(3 * size + 0.5 * x[2:].mean())) * (1 + 0.05 * rng.standard_normal())
    return loss, latency


def teach(strategy: Any, space: Any, n: int, rng: np.random.Generator) -> str:
    """Tell ``strategy`` ``n`` trials; how (``warm`` for the Optuna strategies, see the docstring)."""
    from archbench.search import Feedback
    from archbench.search.optuna_strategies import OptunaStrategy

    if isinstance(strategy, OptunaStrategy):
        for arch in space.sample(n, seed=int(rng.integers(1 << 30)), unique=False):
            strategy.warm(arch, values_of(space, arch, rng))
        return "warm"
    told = 0
    while told < n:
        s = strategy.ask()
        for p in [s] if s is not None else strategy.pending():
            strategy.tell(Feedback(p, values_of(space, p.arch, rng)))
            told += 1
    return "ask/tell"


def time_asks(name: str, n: int, asks: int, seed: int = 0) -> dict[str, Any]:
    from archbench import SearchSpace
    from archbench.leaderboard.objectives import Objective
    from archbench.search import STRATEGIES, Feedback

    space = SearchSpace.from_yaml(SPACE)
    rng = np.random.default_rng(seed)
    objectives = (Objective("val_loss"), Objective("latency_ms"))
    with tempfile.TemporaryDirectory() as tmp:
        strategy = STRATEGIES.get(name)(space, objectives, seed, Path(tmp), study="ask-time", n_startup_trials=8)
        how = teach(strategy, space, n, rng)
        seconds = []
        while len(seconds) < asks:
            t0 = time.perf_counter()
            s = strategy.ask()
            if s is None:  # a generation barrier: answer what is pending (not timed) and ask again
                for p in strategy.pending():
                    strategy.tell(Feedback(p, values_of(space, p.arch, rng)))
                continue
            seconds.append(time.perf_counter() - t0)
            strategy.tell(Feedback(s, values_of(space, s.arch, rng)))
        strategy.close()
    return {"told": n, "taught_by": how, "asks": asks, "median_s": float(np.median(seconds)), "seconds": seconds}


def main() -> None:
    from archbench.search import STRATEGIES

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strategies", nargs="*", default=None, help="default: every registered strategy")
    parser.add_argument("--told", type=int, nargs="*", default=[100, 300, 1000])
    parser.add_argument("--asks", type=int, default=5)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "ask_time.json")
    args = parser.parse_args()
    names = args.strategies or sorted(STRATEGIES.names())
    out = json.loads(args.out.read_text()) if args.out.exists() else {}
    out.update({
        "benchmark": "ask_time",
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_1m_at_start": os.getloadavg()[0],
                    "omp_threads": os.environ.get("OMP_NUM_THREADS")},
        "space": "lm_small",
    })  # fmt: skip
    results = out.setdefault("results", {})
    print(f"{'strategy':15s} " + " ".join(f"{n:>9d}" for n in args.told) + "   (median seconds per ask after N told)")
    for name in names:
        row = results.setdefault(name, {})
        for n in args.told:
            if str(n) not in row:
                row[str(n)] = time_asks(name, n, args.asks)
                args.out.write_text(json.dumps(out, indent=2))
        print(f"{name:15s} " + " ".join(f"{row[str(n)]['median_s']:9.3f}" for n in args.told), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
