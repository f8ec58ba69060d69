"""Search efficiency: hypervolume against evaluations for every strategy, median over seeds.

Two kinds of problems, both answered without training so that many seeds are cheap:

* **Tabular**: a space whose every member was trained on ``charlm`` and measured once, for real, on
  this machine; the table is a leaderboard under ``benchmarks/data/`` (built by ``--build-table`` with
  Ray, resumable, reused afterwards). ``--table small``: 81 architectures (depth x width x attention x
  residual); ``--table large`` (default): 480 (depth x width x FFN ratio x attention x residual).
  Strategies run through the real driver with the ``lookup`` evaluator (``val_loss`` x
  ``latency_ms``), so this also exercises the lookup path end to end.
* **Synthetic** (pymoo's ZDT1 with 2 objectives and DTLZ2 with 3): the variables are discretised to
  101 levels and the strategies run through the same ask/tell contract on a small vector "space".

Hypervolume uses a fixed reference point per problem and is reported as a fraction of the best
achievable (the table's own front, or the analytic front's hypervolume for ZDT1/DTLZ2). On the table
latency enters as log(latency_ms): it spans two orders of magnitude, and a 2x speed-up should count
the same at 0.2 ms as at 20 ms. ZDT1's reference point is (1.1, 10) because random points have
f2 of about 5 at the start. Random search is the baseline.
Writes ``benchmarks/results/search_efficiency.json`` and ``search_efficiency.png``.

    python benchmarks/search_efficiency.py --build-table      # once: trains and measures the table's archs
    python benchmarks/search_efficiency.py                    # strategies x seeds on all problems
    python benchmarks/search_efficiency.py --table small --tabular-evals 16   # the 81-arch table
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
TASK, BUDGET = "charlm", "steps=60"
COMMON = {"heads": 2, "window": 16, "max_seq_len": 64, "vocab_size": 256, "quant": "fp32"}
TABLES: dict[str, tuple[Path, dict[str, Any]]] = {  # name -> (leaderboard, space fields)
    "small": (
        HERE / "data" / "tabular_lm_bench",
        {"depth": [1, 2, 4], "width": [32, 64, 128], "ffn_ratio": 2.0,
         "attention": ["dense", "sliding_window", "linear"], "residual": ["pre_ln", "rezero", "laurel"], **COMMON},
    ),
    "large": (
        HERE / "data" / "tabular_lm_bench_large",
        {"depth": [1, 2, 3, 4, 6], "width": [32, 64, 96, 128], "ffn_ratio": [2.0, 4.0],
         "attention": ["dense", "sliding_window", "linear"], "residual": ["pre_ln", "post_ln", "rezero", "laurel"],
         **COMMON},
    ),
}  # fmt: skip
TABLE, BENCH_FIELDS = TABLES["large"]
STRATEGIES = ["random", "optuna_nsga2", "optuna_tpe", "optuna_nsga3", "pymoo_nsga2", "pymoo_nsga3", "pymoo_agemoea"]
DEFAULT = "optuna_tpe"  # archbench's default search (conf/search/tpe.yaml)


def use_table(name: str) -> None:
    """Select the tabular benchmark the functions below read and build."""
    global TABLE, BENCH_FIELDS
    TABLE, BENCH_FIELDS = TABLES[name]


def bench_space() -> Any:
    from archbench import SearchSpace

    name = "lm_bench" if TABLE.name == "tabular_lm_bench" else "lm_bench_large"
    return SearchSpace.from_dict({"name": name, "fields": BENCH_FIELDS})


def build_table(workers: int) -> None:
    """Train and measure every architecture of the bench space once (real data, real timing)."""
    import ray

    from archbench import Leaderboard
    from archbench.search.trial_evaluators import TrainEvaluator

    space = bench_space()
    archs = space.sample(space.size().valid, seed=0)
    lb = Leaderboard(TABLE)
    done = set(lb.query(status=None).collect()["arch_id"].to_list()) if lb.exists() else set()
    todo = [a for a in archs if a.arch_id not in done]
    print(f"table: {len(archs)} architectures, {len(done)} already measured, {len(todo)} to go")
    ray.init(
        address="local", num_cpus=workers, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR
    )
    evaluator = TrainEvaluator(task=TASK, budget=BUDGET, seed=0, threads=1)
    run = ray.remote(lambda a, n: evaluator(a, study=TABLE.name, trial=n)).options(num_cpus=1)
    pending = {run.remote(a, i): a for i, a in enumerate(todo)}
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        for ref in ready:
            pending.pop(ref)
            result = ray.get(ref)
            lb.append([result.to_row()])  # one part per row: a build stopped midway resumes
            print(f"  {result.arch.describe():70s} {result.status} val_loss={result.metric('val_loss')}", flush=True)
    ray.shutdown()
    lb.compact()


@dataclass(frozen=True)
class Point:
    """A point of the discretised synthetic problems (duck-types an Architecture for the strategies)."""

    x: tuple[int, ...]

    @property
    def arch_id(self) -> str:
        return "-".join(map(str, self.x))


class GridSpace:
    """``n_var`` integer variables with ``levels`` values each: the integer encoding a strategy needs (Optuna's
    strategies build their parameters on it)."""

    def __init__(self, n_var: int, levels: int = 101) -> None:
        self.name, self.n_var, self.levels = f"grid{n_var}", n_var, levels
        self.free_fields = tuple(f"x{i}" for i in range(n_var))

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros(self.n_var, dtype=np.int64), np.full(self.n_var, self.levels - 1, dtype=np.int64)

    def decode(self, x: Sequence[int]) -> Point:
        return Point(tuple(int(v) for v in np.clip(np.asarray(x).round(), 0, self.levels - 1)))

    def encode(self, p: Point) -> np.ndarray:
        return np.array(p.x, dtype=np.int64)

    def sample(self, n: int, seed: int = 0) -> list[Point]:
        rng = np.random.default_rng(seed)
        return [Point(tuple(int(v) for v in rng.integers(0, self.levels, self.n_var))) for _ in range(n)]


def hv(points: np.ndarray, ref: np.ndarray) -> float:
    from pymoo.indicators.hv import HV

    inside = points[np.all(points < ref, axis=1)] if len(points) else points
    return float(HV(ref_point=ref)(inside)) if len(inside) else 0.0


def curve(points: np.ndarray, ref: np.ndarray, best: float, checkpoints: Sequence[int]) -> list[float]:
    return [hv(points[:k], ref) / best for k in checkpoints]


def run_synthetic(name: str, strategy: str, seed: int, evals: int, checkpoints: Sequence[int]) -> list[float]:
    from pymoo.problems import get_problem

    from archbench.leaderboard.objectives import Objective
    from archbench.search import STRATEGIES, Feedback

    problem = get_problem("zdt1", n_var=12) if name == "zdt1" else get_problem("dtlz2", n_var=8, n_obj=3)
    n_obj = problem.n_obj
    space = GridSpace(problem.n_var)
    objectives = tuple(Objective(f"f{i}") for i in range(n_obj))
    with tempfile.TemporaryDirectory() as tmp:
        strat = STRATEGIES.get(strategy)(space, objectives, seed, Path(tmp), study="s", population_size=20)
        seen = []
        while len(seen) < evals:
            s = strat.ask()
            if s is None:
                for p in strat.pending():
                    f = problem.evaluate(np.array(p.arch.x, dtype=float) / (space.levels - 1))
                    strat.tell(Feedback(p, tuple(float(v) for v in np.ravel(f))))
                continue
            f = problem.evaluate(np.array(s.arch.x, dtype=float) / (space.levels - 1))
            values = tuple(float(v) for v in np.ravel(f))
            seen.append(values)
            strat.tell(Feedback(s, values))
        strat.close()
    ref = np.array([1.1, 10.0]) if name == "zdt1" else np.full(n_obj, 1.1)
    best = hv(problem.pareto_front(), ref)
    return curve(np.array(seen[:evals]), ref, best, checkpoints)


def run_tabular(strategy: str, seed: int, evals: int, checkpoints: Sequence[int], table: dict[str, Any]) -> list[float]:
    from archbench import Leaderboard
    from archbench.leaderboard.objectives import Objective
    from archbench.search import RayConfig, SearchConfig, run_search

    with tempfile.TemporaryDirectory() as tmp:
        config = SearchConfig(
            space=bench_space(), task=TASK, budget=BUDGET, strategy=strategy,
            strategy_options={} if strategy == "random" else {"population_size": 8},
            objectives=(Objective("val_loss"), Objective("latency_ms")), n_trials=evals, seed=seed,
            leaderboard=str(Path(tmp) / "lb"), evaluator="lookup", evaluator_options={"table": str(TABLE)},
            ray=RayConfig(executor="inline"), progress=False, plot=False, cache=False,
        )  # fmt: skip
        run_search(config)
        df = Leaderboard(Path(tmp) / "lb").query(status=None).collect().sort("trial")
    pts = np.array(
        [[r["val_loss"], np.log(r["latency_ms"])] if r["status"] == "ok" else [np.inf, np.inf] for r in df.to_dicts()]
    )
    return curve(pts, table["ref"], table["best"], checkpoints)


def table_facts() -> dict[str, Any]:
    from archbench import Leaderboard

    df = Leaderboard(TABLE).query(status="ok").collect()
    pts = df.select("val_loss", "latency_ms").to_numpy()
    pts[:, 1] = np.log(pts[:, 1])
    ref = pts.max(axis=0) + 0.1 * (pts.max(axis=0) - pts.min(axis=0))
    return {"rows": df.height, "ref": ref, "best": hv(pts, ref), "device": df["device_name"][0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-table", action="store_true", help="train + measure the table's archs first")
    parser.add_argument("--table", choices=sorted(TABLES), default="large", help="tabular benchmark (large: 480)")
    parser.add_argument("--build-only", action="store_true", help="build the table, run no strategies")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--tabular-evals", type=int, default=30)
    parser.add_argument("--synthetic-evals", type=int, default=200)
    parser.add_argument("--strategies", nargs="*", default=STRATEGIES)
    args = parser.parse_args()
    use_table(args.table)
    if args.build_table or args.build_only:
        build_table(args.workers)
    if args.build_only:
        return
    tab_name = TABLE.name

    results: dict[str, Any] = {}
    facts = table_facts()
    problems = {
        tab_name: (args.tabular_evals, lambda st, sd, cp: run_tabular(st, sd, args.tabular_evals, cp, facts)),
        "zdt1": (args.synthetic_evals, lambda st, sd, cp: run_synthetic("zdt1", st, sd, args.synthetic_evals, cp)),
        "dtlz2": (args.synthetic_evals, lambda st, sd, cp: run_synthetic("dtlz2", st, sd, args.synthetic_evals, cp)),
    }
    for name, (evals, fn) in problems.items():
        checkpoints = sorted({max(1, evals * k // 10) for k in range(1, 11)})
        results[name] = {"evaluations": checkpoints, "strategies": {}}
        print(f"\n{name}: normalised hypervolume (median over {args.seeds} seeds) after N evaluations")
        print(f"{'strategy':15s} " + " ".join(f"{c:>6d}" for c in checkpoints) + "   vs random  s/run")
        for strategy in args.strategies:
            t0 = time.perf_counter()
            curves = np.array([fn(strategy, seed, checkpoints) for seed in range(args.seeds)])
            med = np.median(curves, axis=0)
            results[name]["strategies"][strategy] = {
                "median": med.tolist(),
                "q25": np.quantile(curves, 0.25, axis=0).tolist(),
                "q75": np.quantile(curves, 0.75, axis=0).tolist(),
                "seconds_per_run": (time.perf_counter() - t0) / args.seeds,
            }
            base = results[name]["strategies"].get("random", {}).get("median")
            ratio = med[-1] / base[-1] if base and base[-1] > 0 else float("nan")
            results[name]["strategies"][strategy]["ratio_to_random_final"] = ratio
            spr = results[name]["strategies"][strategy]["seconds_per_run"]
            print(f"{strategy:15s} " + " ".join(f"{v:6.3f}" for v in med) + f"   {ratio:8.3f}  {spr:5.1f}", flush=True)

    tab = results[tab_name]["strategies"]
    target = tab[DEFAULT]["ratio_to_random_final"] if DEFAULT in tab and "random" in tab else None
    out = {
        "benchmark": "search_efficiency",
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "table": {
            "path": str(TABLE.relative_to(HERE.parent)),
            "rows": facts["rows"],
            "task": TASK,
            "budget": BUDGET,
            "device": facts["device"],
            "ref": facts["ref"].tolist(),
        },
        "seeds": args.seeds,
        "default_strategy": DEFAULT,
        "default_vs_random_on_table": target,
        "target": "default strategy >= 1.05x random search's hypervolume at the same budget on the table",
        "results": results,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = "search_efficiency" if args.table == "large" else f"search_efficiency_{args.table}"
    (RESULTS / f"{stem}.json").write_text(json.dumps(out, indent=2))
    plot(results, RESULTS / f"{stem}.png")
    print(f"\ndefault ({DEFAULT}) vs random on the table at {args.tabular_evals} evaluations: {target:.3f}x")
    print(f"wrote {RESULTS / stem}.json and {stem}.png")


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 4))
    for ax, (name, res) in zip(np.atleast_1d(axes), results.items(), strict=True):
        x = res["evaluations"]
        for strategy, r in res["strategies"].items():
            style = {"lw": 2.5, "color": "black"} if strategy == "random" else {"lw": 1.5}
            ax.plot(x, r["median"], label=strategy, **style)
            ax.fill_between(x, r["q25"], r["q75"], alpha=0.12)
        ax.set_title(name)
        ax.set_xlabel("evaluations")
        ax.set_ylabel("hypervolume / best")
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
