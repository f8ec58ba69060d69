"""Driver scaling: archbench's search loop vs Ray Tune on fixed-duration sleep trials.

A local Ray instance pretends to have W CPUs (``num_cpus=W``; sleeping trials use no CPU, so a 2-core
machine can host them). Each trial sleeps ``--duration`` seconds. For each W we run the same number of
trials through

* archbench: ``run_search`` with the default strategy (Optuna NSGA-II, journal storage on disk) and
  the ``sleep`` evaluator, every result appended to a real parquet leaderboard;
* Ray Tune: ``tune.Tuner`` with ``OptunaSearch`` (NSGA-II sampler, in memory) and a function trainable
  that sleeps the same time and reports the same two metrics;

and report throughput against the ideal (W / duration) and the driver process's own CPU time per trial
(``time.process_time`` of the driver: Tune's controller runs in the driver too). Workers are warmed up
before each timed run. Writes ``benchmarks/results/driver_scaling.json``.

    python benchmarks/driver_scaling.py                      # W = 1..32; Tune side by side at W = 4, 16
    python benchmarks/driver_scaling.py --workers 16 --trials 1000 --tune-workers 16 --tune-trials 1000

Ray Tune spends about a second of driver time per trial here, so by default it runs ``--tune-trials``
(200) trials at ``--tune-workers`` (4 and 16), and archbench runs the same count there for the
side-by-side columns; the scaling columns use ``--trials`` (1000 at W >= 16, 64 x W below).
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
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

RESULTS = Path(__file__).resolve().parent / "results"


def warm_up(ray, workers: int) -> None:
    @ray.remote(num_cpus=1)
    def noop() -> int:
        import archbench.search.trial_evaluators  # noqa: F401  (what the trials import)

        time.sleep(0.2)
        return os.getpid()

    ray.get([noop.remote() for _ in range(workers * 2)])


def run_archbench(workers: int, trials: int, duration: float, tmp: Path) -> dict:
    from archbench import SearchSpace
    from archbench.leaderboard.objectives import Objective
    from archbench.search import RayConfig, SearchConfig, run_search

    config = SearchConfig(
        space=SearchSpace.builtin("lm_small"),
        strategy="optuna_nsga2",
        strategy_options={"population_size": 16},
        objectives=(Objective("val_loss"), Objective("latency_ms")),
        n_trials=trials,
        concurrency=workers,
        leaderboard=str(tmp / f"ab-{workers}" / "lb"),
        evaluator="sleep",
        evaluator_options={"seconds": duration},
        ray=RayConfig(),
        progress=False,
        plot=False,
    )
    cpu0, t0 = time.process_time(), time.perf_counter()
    outcome = run_search(config)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    assert outcome.trials == trials and outcome.ok == trials
    return {"wall_s": wall, "driver_cpu_s": cpu}


def run_tune(workers: int, trials: int, duration: float, tmp: Path) -> dict:
    import optuna
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def trainable(config: dict) -> None:
        time.sleep(duration)
        tune.report({"val_loss": 1.0 / (1 + config["depth"] * config["width"]), "latency_ms": float(config["depth"])})

    space = {
        "depth": tune.choice([2, 4, 6, 8, 12]),
        "width": tune.choice([128, 192, 256, 384, 512]),
        "heads": tune.choice([2, 4, 8]),
        "ffn_ratio": tune.choice([2.0, 3.0, 4.0]),
        "residual": tune.choice(["pre_ln", "post_ln", "deepnet", "rezero", "value_residual", "denseformer", "laurel"]),
        "attention": tune.choice(["dense", "sliding_window", "block_sparse", "linear"]),
    }
    search = OptunaSearch(
        metric=["val_loss", "latency_ms"],
        mode=["min", "min"],
        sampler=optuna.samplers.NSGAIISampler(population_size=16, seed=0),
    )
    tuner = tune.Tuner(
        trainable,
        param_space=space,
        tune_config=tune.TuneConfig(search_alg=search, num_samples=trials, max_concurrent_trials=workers),
        run_config=tune.RunConfig(storage_path=str(tmp / f"tune-{workers}"), verbose=0),
    )
    cpu0, t0 = time.process_time(), time.perf_counter()
    results = tuner.fit()
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    assert len(results) == trials
    return {"wall_s": wall, "driver_cpu_s": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2, 4, 8, 16, 32])
    parser.add_argument("--trials", type=int, default=1000, help="trials at W >= 16 (smaller W: 64 x W)")
    parser.add_argument("--duration", type=float, default=1.0, help="seconds each trial sleeps (Ray's own test: 1)")
    parser.add_argument("--tune-workers", type=int, nargs="*", default=[4, 16])
    parser.add_argument("--tune-trials", type=int, default=200)
    parser.add_argument("--skip-tune", action="store_true")
    parser.add_argument("--out", default=str(RESULTS / "driver_scaling.json"))
    args = parser.parse_args()

    import ray

    rows = []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for w in args.workers:
            trials = args.trials if w >= 16 else min(args.trials, 64 * w)
            ideal_s = trials * args.duration / w
            ray.init(
                address="local", num_cpus=w, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR
            )
            try:
                warm_up(ray, w)
                ours = run_archbench(w, trials, args.duration, tmp)
                side = None
                if not args.skip_tune and w in args.tune_workers:
                    n = args.tune_trials
                    side = (n, run_archbench(w, n, args.duration, tmp / "side"), run_tune(w, n, args.duration, tmp))
            finally:
                ray.shutdown()
            row = {
                "workers": w,
                "trials": trials,
                "duration_s": args.duration,
                "ideal_s": ideal_s,
                "archbench_wall_s": ours["wall_s"],
                "archbench_efficiency": ideal_s / ours["wall_s"],
                "archbench_driver_ms_per_trial": 1e3 * ours["driver_cpu_s"] / trials,
            }
            if side:
                n, mine, tune_r = side
                ideal_n = n * args.duration / w
                row.update(
                    side_by_side_trials=n,
                    side_archbench_efficiency=ideal_n / mine["wall_s"],
                    side_archbench_driver_ms_per_trial=1e3 * mine["driver_cpu_s"] / n,
                    tune_wall_s=tune_r["wall_s"],
                    tune_efficiency=ideal_n / tune_r["wall_s"],
                    tune_driver_ms_per_trial=1e3 * tune_r["driver_cpu_s"] / n,
                )
            rows.append(row)
            print_row(row)
    out = {
        "benchmark": "driver_scaling",
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "note": "efficiency = ideal time (trials * duration / workers) / wall time; driver ms = driver CPU / trial",
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out}")


def print_row(r: dict) -> None:
    if not hasattr(print_row, "header"):
        print_row.header = True  # type: ignore[attr-defined]
        head = f"{'W':>3} {'trials':>6} {'ideal s':>8} | {'archbench eff':>13} {'ms/trial':>8}"
        print(head + f" | side-by-side: {'n':>4} {'ours eff':>8} {'ms/trial':>8} {'tune eff':>8} {'ms/trial':>8}")
    line = (
        f"{r['workers']:>3} {r['trials']:>6} {r['ideal_s']:>8.1f} | {r['archbench_efficiency']:>13.3f} "
        f"{r['archbench_driver_ms_per_trial']:>8.2f} |"
    )
    if "tune_efficiency" in r:
        line += (
            f"               {r['side_by_side_trials']:>4} {r['side_archbench_efficiency']:>8.3f} "
            f"{r['side_archbench_driver_ms_per_trial']:>8.2f} {r['tune_efficiency']:>8.3f} "
            f"{r['tune_driver_ms_per_trial']:>8.2f}"
        )
    print(line, flush=True)


if __name__ == "__main__":
    main()
