"""Search efficiency: hypervolume against evaluations for every registered strategy, sequential and with
trials in flight, median over seeds.

Two kinds of problems, both answered without training so that many seeds are cheap:

* **Tabular**: a space whose every member was trained on ``charlm`` and measured once, for real, on
  this machine; the table is a leaderboard under ``benchmarks/data/`` (built by ``--build-table`` with
  Ray, resumable, reused afterwards). ``small``: 81 architectures (depth x width x attention x residual);
  ``large``: 480 (depth x width x FFN ratio x attention x residual). Strategies run through the real
  search loop (:class:`~archbench.search.loop.SearchLoop`, the strategy and its Optuna journal, the
  leaderboard) with the ``lookup`` evaluator (``val_loss`` x ``latency_ms``).
* **Synthetic** (pymoo's ZDT1 with 2 objectives and DTLZ2 with 3): the variables are discretised to
  101 levels and the strategies run through the same ask/tell contract on a small vector "space".

**Trials in flight** (``--concurrency 1 4 8``). A parallel search asks for a new trial while others run, so
the strategy proposes with N - 1 trials asked but not told; that is what this benchmark must reproduce.
Real Ray per run (a cluster start, a task per trial) costs seconds per run on this 2-core machine and
lands instant lookups in arbitrary order, so the trials run on :class:`EventExecutor` instead: a
discrete-event clock. The loop keeps N trials in flight exactly as with Ray (it asks while the others
run); each trial's answer is looked up at submission and "finishes" after the time that architecture
took to train when the table was built (``train_time_s``: big ones take longer, as on a real cluster);
the loop's wait hands back the earliest to finish, so results land one at a time in completion order and
every ask sees the real set of pending (RUNNING) trials in the strategy's storage. The synthetic
problems do the same on the bare ask/tell contract, with durations drawn from a log-normal.
``collisions`` counts asks that proposed an architecture already in flight; ``repeats`` counts trials
whose architecture was evaluated earlier in the run (both waste an evaluation).

Hypervolume uses a fixed reference point per problem and is reported as a fraction of the best
achievable (the table's own front, or the analytic front's hypervolume for ZDT1/DTLZ2), after the first
k trials (by trial number). On the table latency enters as log(latency_ms): it spans two orders of
magnitude, and a 2x speed-up should count the same at 0.2 ms as at 20 ms. ZDT1's reference point is
(1.1, 10) because random points have f2 of about 5 at the start. Random search is the baseline.

Every registered strategy runs unless ``--strategies`` names some. Cells (problem x concurrency x
strategy) are written to ``--out`` as each finishes, and a rerun with the same ``--out`` skips the cells
already there (so long runs can be split and resumed); ``--merge`` joins such files into one.
(Over 400 lines: one benchmark, its two problem kinds, the event executor and the table build belong
together; the executor exists only for this benchmark.)

    python benchmarks/search_efficiency.py --build-table --table large     # once: trains and measures
    python benchmarks/search_efficiency.py --problems large --concurrency 1 4 8 --seeds 10
    python benchmarks/search_efficiency.py --merge a.json b.json --out benchmarks/results/search_efficiency.json
"""

from __future__ import annotations

import argparse
import heapq
import json
import logging
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core per run: GP's torch would oversubscribe a shared machine

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
SYNTHETIC = ("zdt1", "dtlz2")
TARGET = (
    "the default, 4 in flight, 480-arch table, median of 10 seeds at 48 evaluations: >= 0.95 of the front, "
    ">= 1.15x random"
)


def strategy_names() -> list[str]:
    """Every registered strategy, random (the baseline) first."""
    from archbench.search import STRATEGIES

    return sorted(STRATEGIES.names(), key=lambda n: (n != "random", n))


def default_strategy() -> str:
    """The strategy of archbench's default search config (conf/config.yaml's ``search`` group)."""
    import yaml

    conf = Path(__file__).resolve().parents[1] / "src" / "archbench" / "conf"
    group = next(d["search"] for d in yaml.safe_load((conf / "config.yaml").read_text())["defaults"] if "search" in d)
    return yaml.safe_load((conf / "search" / f"{group}.yaml").read_text())["strategy"]


def bench_space(table: str) -> Any:
    from archbench import SearchSpace

    return SearchSpace.from_dict({"name": f"lm_bench_{table}", "fields": TABLES[table][1]})


def build_table(table: str, workers: int) -> None:
    """Train and measure every architecture of the bench space once (real data, real timing)."""
    import ray

    from archbench import Leaderboard
    from archbench.search.trial_evaluators import TrainEvaluator

    path = TABLES[table][0]
    space = bench_space(table)
    archs = space.sample(space.size().valid, seed=0)
    lb = Leaderboard(path)
    done = set(lb.query(status=None).collect()["arch_id"].to_list()) if lb.exists() else set()
    todo = [a for a in archs if a.arch_id not in done]
    print(f"table: {len(archs)} architectures, {len(done)} already measured, {len(todo)} to go")
    ray.init(
        address="local", num_cpus=workers, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR
    )
    evaluator = TrainEvaluator(task=TASK, budget=BUDGET, seed=0, threads=1)
    run = ray.remote(lambda a, n: evaluator(a, study=path.name, trial=n)).options(num_cpus=1)
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


class EventExecutor:
    """The search loop's executor on a discrete-event clock (see the module docstring): a submitted trial is
    answered at once and finishes ``duration(result)`` later; ``wait`` hands back the earliest to finish."""

    gpus = 0

    def __init__(self, concurrency: int, duration: Callable[[Any], float]) -> None:
        self.concurrency, self.duration = concurrency, duration
        self.now, self._next = 0.0, 0
        self._heap: list[tuple[float, int]] = []
        self._results: dict[int, Any] = {}
        self._arch: dict[int, str] = {}
        self.collisions = 0

    def slots(self) -> int:
        return self.concurrency

    def run_once(self, fn: Callable[[], Any]) -> Any:
        return fn()

    def submit(self, evaluator: Any, suggestion: Any, study: str) -> int:
        key, self._next = self._next, self._next + 1
        arch_id = suggestion.arch.arch_id
        self.collisions += arch_id in self._arch.values()
        result = evaluator(suggestion.arch, study=study, trial=suggestion.number)
        heapq.heappush(self._heap, (self.now + self.duration(result), key))
        self._results[key], self._arch[key] = result, arch_id
        return key

    def wait(self, refs: list[int], timeout: float) -> list[int]:
        done, key = heapq.heappop(self._heap)
        self.now = done
        return [key]

    def get_many(self, refs: list[int]) -> list[Any]:
        for ref in refs:
            self._arch.pop(ref)
        return [self._results.pop(ref) for ref in refs]

    def shutdown(self) -> None:
        pass


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

    def sample(self, n: int, seed: int = 0, unique: bool = False) -> list[Point]:
        rng = np.random.default_rng(seed)
        return [Point(tuple(int(v) for v in rng.integers(0, self.levels, self.n_var))) for _ in range(n)]


def hv(points: np.ndarray, ref: np.ndarray) -> float:
    from pymoo.indicators.hv import HV

    inside = points[np.all(points < ref, axis=1)] if len(points) else points
    return float(HV(ref_point=ref)(inside)) if len(inside) else 0.0


def curve(points: np.ndarray, ref: np.ndarray, best: float, checkpoints: Sequence[int]) -> list[float]:
    return [hv(points[:k], ref) / best for k in checkpoints]


def repeats(arch_ids: Sequence[str]) -> int:
    return len(arch_ids) - len(set(arch_ids))


@dataclass(frozen=True)
class Run:
    """One seed's outcome: the hypervolume curve and the evaluations it wasted."""

    curve: list[float]
    collisions: int
    repeats: int


def run_synthetic(name: str, strategy: str, seed: int, evals: int, concurrency: int, checkpoints: Sequence[int]) -> Run:
    from pymoo.problems import get_problem

    from archbench.leaderboard.objectives import Objective
    from archbench.search import STRATEGIES, Feedback

    problem = get_problem("zdt1", n_var=12) if name == "zdt1" else get_problem("dtlz2", n_var=8, n_obj=3)
    space = GridSpace(problem.n_var)
    objectives = tuple(Objective(f"f{i}") for i in range(problem.n_obj))
    rng = np.random.default_rng(seed)
    by_number: dict[int, tuple[str, tuple[float, ...]]] = {}
    heap: list[tuple[float, int, Any, tuple[float, ...]]] = []
    now, asked, collisions = 0.0, 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        strat = STRATEGIES.get(strategy)(space, objectives, seed, Path(tmp), study="s", population_size=20)
        while len(by_number) < evals:
            s = strat.ask() if len(heap) < concurrency and asked < evals else None
            if s is not None:
                asked += 1
                collisions += any(p.arch.arch_id == s.arch.arch_id for _, _, p, _ in heap)
                f = problem.evaluate(np.array(s.arch.x, dtype=float) / (space.levels - 1))
                values = tuple(float(v) for v in np.ravel(f))
                heapq.heappush(heap, (now + float(rng.lognormal(0.0, 0.5)), s.number, s, values))
                continue
            now, _, done, values = heapq.heappop(heap)
            by_number[done.number] = (done.arch.arch_id, values)
            strat.tell(Feedback(done, values))
        strat.close()
    seen = [by_number[n] for n in sorted(by_number)]
    ref = np.array([1.1, 10.0]) if name == "zdt1" else np.full(problem.n_obj, 1.1)
    best = hv(problem.pareto_front(), ref)
    pts = np.array([v for _, v in seen])
    return Run(curve(pts, ref, best, checkpoints), collisions, repeats([a for a, _ in seen]))


def run_tabular(table: str, strategy: str, seed: int, evals: int, concurrency: int, checkpoints: Sequence[int],
                facts: dict[str, Any], options: dict[str, Any]) -> Run:  # fmt: skip
    from archbench import Leaderboard
    from archbench.leaderboard.objectives import Objective
    from archbench.search import SearchConfig
    from archbench.search.loop import SearchLoop
    from archbench.search.study import check_or_create

    with tempfile.TemporaryDirectory() as tmp:
        config = SearchConfig(
            space=bench_space(table), task=TASK, budget=BUDGET, strategy=strategy, strategy_options=options,
            objectives=(Objective("val_loss"), Objective("latency_ms")), n_trials=evals, seed=seed,
            concurrency=concurrency, leaderboard=str(Path(tmp) / "lb"), evaluator="lookup",
            evaluator_options={"table": str(TABLES[table][0])}, progress=False, plot=False, cache=False,
        )  # fmt: skip
        check_or_create(config.study_dir, config.study_name, config.identity())
        executor = EventExecutor(concurrency, lambda r: float(r.metric("train_time_s") or 1.0))
        SearchLoop(config, config.study_name, Leaderboard(config.leaderboard), executor).run(time.monotonic())
        df = Leaderboard(config.leaderboard).query(status=None).collect().sort("trial")
    bad = [np.inf, np.inf]
    pts = np.array([[r["val_loss"], np.log(r["latency_ms"])] if r["status"] == "ok" else bad for r in df.to_dicts()])
    return Run(curve(pts, facts["ref"], facts["best"], checkpoints), executor.collisions, repeats(df["arch_id"]))


def table_facts(table: str) -> dict[str, Any]:
    from archbench import Leaderboard

    df = Leaderboard(TABLES[table][0]).query(status="ok").collect()
    pts = df.select("val_loss", "latency_ms").to_numpy()
    pts[:, 1] = np.log(pts[:, 1])
    ref = pts.max(axis=0) + 0.1 * (pts.max(axis=0) - pts.min(axis=0))
    return {"rows": df.height, "ref": ref, "best": hv(pts, ref), "device": df["device_name"][0]}


def strategy_options(strategy: str) -> dict[str, Any]:
    """The options archbench's own conf gives ``strategy`` (conf/search/<strategy>.yaml), as a user gets them."""
    import yaml

    path = Path(__file__).resolve().parents[1] / "src" / "archbench" / "conf" / "search" / f"{strategy}.yaml"
    return dict(yaml.safe_load(path.read_text()).get("options") or {}) if path.exists() else {}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """A cell's medians and quartiles over its seeds (each seed's run kept under ``runs``)."""
    curves = np.array([r["curve"] for r in runs])
    return {
        "seeds": len(runs),
        "median": np.median(curves, axis=0).tolist(),
        "q25": np.quantile(curves, 0.25, axis=0).tolist(),
        "q75": np.quantile(curves, 0.75, axis=0).tolist(),
        "collisions_per_run": float(np.mean([r["collisions"] for r in runs])),
        "repeats_per_run": float(np.mean([r["repeats"] for r in runs])),
        "seconds_per_run": float(np.mean([r["seconds"] for r in runs])),
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-table", choices=sorted(TABLES), help="train + measure this table's archs, then stop")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--problems", nargs="*", default=["large", "small", *SYNTHETIC],
                        choices=[*TABLES, *SYNTHETIC])  # fmt: skip
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--concurrency", type=int, nargs="*", default=[1, 4, 8])
    parser.add_argument("--table-fraction", type=float, default=0.1, help="a table's budget: this share of its rows")
    parser.add_argument("--synthetic-evals", type=int, default=48)
    parser.add_argument("--strategies", nargs="*", default=None, help="default: every registered strategy")
    parser.add_argument("--out", type=Path, default=RESULTS / "search_efficiency.json")
    parser.add_argument("--merge", type=Path, nargs="*", help="join these result files into --out, run nothing")
    args = parser.parse_args()
    if args.build_table:
        build_table(args.build_table, args.workers)
        return
    if args.merge:
        out = merge([json.loads(p.read_text()) for p in args.merge])
        write(out, args.out, plot_too=True)
        return
    strategies = args.strategies or strategy_names()
    from archbench.search import STRATEGIES

    for s in strategies:
        STRATEGIES.get(s)  # an unknown name fails here, with the known ones listed
    out = json.loads(args.out.read_text()) if args.out.exists() else header(args)
    for problem in args.problems:
        if problem in TABLES:
            facts = table_facts(problem)
            evals = max(1, round(args.table_fraction * facts["rows"]))
            out["tables"][problem] = {"path": str(TABLES[problem][0].relative_to(HERE.parent)), "rows": facts["rows"],
                                      "task": TASK, "budget": BUDGET, "device": facts["device"],
                                      "ref": facts["ref"].tolist()}  # fmt: skip

            def fn(st: str, sd: int, c: int, cp: Sequence[int], p: str = problem, f: dict = facts, e: int = evals
                   ) -> Run:  # fmt: skip
                return run_tabular(p, st, sd, e, c, cp, f, strategy_options(st))
        else:
            evals = args.synthetic_evals

            def fn(st: str, sd: int, c: int, cp: Sequence[int], p: str = problem, e: int = evals) -> Run:
                return run_synthetic(p, st, sd, e, c, cp)

        checkpoints = sorted({max(1, evals * k // 10) for k in range(1, 11)})
        res = out["results"].setdefault(problem, {"evaluations": checkpoints, "concurrency": {}})
        for c in args.concurrency:
            cell = res["concurrency"].setdefault(str(c), {})
            print(f"\n{problem}, {c} in flight: normalised hypervolume (median of {args.seeds} seeds) after N evals")
            print(f"{'strategy':15s} " + " ".join(f"{k:>6d}" for k in checkpoints) + "  collide repeat  s/run")
            for strategy in strategies:
                runs = cell.get(strategy, {}).get("runs", [])
                for seed in range(len(runs), args.seeds):  # a rerun with the same --out goes on from here
                    t0 = time.perf_counter()
                    run = fn(strategy, seed, c, checkpoints)
                    runs.append({"seed": seed, "curve": run.curve, "collisions": run.collisions,
                                 "repeats": run.repeats, "seconds": time.perf_counter() - t0})  # fmt: skip
                    cell[strategy] = summarise(runs)
                    write(out, args.out)
                r = cell[strategy]
                print(f"{strategy:15s} " + " ".join(f"{v:6.3f}" for v in r["median"])
                      + f"  {r['collisions_per_run']:7.2f} {r['repeats_per_run']:6.2f} {r['seconds_per_run']:6.1f}",
                      flush=True)  # fmt: skip
    write(out, args.out, plot_too=True)
    print(f"wrote {args.out}")


def header(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "benchmark": "search_efficiency",
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "executor": "EventExecutor: the search loop with N trials in flight on a discrete-event clock (docstring)",
        "seeds": args.seeds,
        "default_strategy": default_strategy(),
        "target": TARGET,
        "tables": {},
        "results": {},
    }


def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from several: cells of later parts fill what earlier ones lack."""
    out = {**parts[0], "command": [p["command"] for p in parts], "tables": {}, "results": {}}
    out["default_strategy"] = default_strategy()  # the conf's now (a part may predate a change of default)
    for part in parts:
        out["tables"].update(part["tables"])
        for problem, res in part["results"].items():
            mine = out["results"].setdefault(problem, {"evaluations": res["evaluations"], "concurrency": {}})
            for c, cell in res["concurrency"].items():
                for strategy, r in cell.items():
                    mine["concurrency"].setdefault(c, {}).setdefault(strategy, r)
    return out


def write(out: dict[str, Any], path: Path, plot_too: bool = False) -> None:
    """The result file (with each strategy's ratio to random at the last checkpoint), then its plot."""
    for res in out["results"].values():
        for cell in res["concurrency"].values():
            base = cell.get("random", {}).get("median")
            for r in cell.values():
                r["ratio_to_random_final"] = r["median"][-1] / base[-1] if base and base[-1] > 0 else None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=2))
    tmp.replace(path)
    if plot_too:
        plot(out["results"], path.with_suffix(".png"))


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = [(p, c, cell) for p, res in results.items() for c, cell in res["concurrency"].items()]
    if not cells:
        return
    fig, axes = plt.subplots(1, len(cells), figsize=(4.5 * len(cells), 4), squeeze=False)
    for ax, (name, c, cell) in zip(axes[0], cells, strict=True):
        x = results[name]["evaluations"]
        for strategy, r in cell.items():
            style = {"lw": 2.5, "color": "black"} if strategy == "random" else {"lw": 1.5}
            ax.plot(x, r["median"], label=strategy, **style)
            ax.fill_between(x, r["q25"], r["q75"], alpha=0.12)
        ax.set_title(f"{name}, {c} in flight")
        ax.set_xlabel("evaluations")
        ax.set_ylabel("hypervolume / best")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
