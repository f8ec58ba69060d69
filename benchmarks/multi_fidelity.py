"""The multi-fidelity funnel against the single-fidelity default at the same wall-clock budget.

On ``charlm`` with ``space=lm_tiny`` and the default strategy (``--strategy``), for each seed it runs two
searches of ``--wall`` seconds each (``search timeout``: nothing new starts after it; rows that land later
are not counted) on one local Ray instance with ``--concurrency`` workers, one torch thread each, warmed
by a short search first so that no arm pays for starting workers; every trial is measured as
``archbench search`` measures it:

* single: every candidate trained at the top budget (``--base`` x the last rung);
* halving: ``search.fidelity=halving`` over ``--rungs`` with ``--eta``; its front is made of top-rung rows
  only, so both fronts hold models trained for the same number of steps. Rung 0 takes a quick look at
  cost (``--screen quick``, the default) and the top rung measures again in full, so both fronts hold
  full measurements; the quick look's error on the top rows (``screen_latency_ms / latency_ms - 1``) is
  reported.

``--continuation`` (``search.continuation=true``): a promoted trial continues its last rung's training
state instead of training again from scratch; it needs the ``wsd`` schedule, which both arms then train
under with the same warm-up (10% of rung 0's steps), so a top-rung row and a single-fidelity row of one
architecture are the same model (``--schedule`` picks the schedule of both arms otherwise).
``--single-schedule default`` trains the single-fidelity arm under archbench's default instead (cosine,
warmed up over 10% of its budget): the funnel against the single-fidelity default as users run it.
The funnel is calibrated (``search.calibrate``, its default); ``--no-calibrate`` runs it as the results
whose settings say ``"calibrate": false`` were run. (``--promotion strata`` and ``--capped``, which earlier
results record, were removed with the settings they tried: both lost.)

Hypervolume (val_loss, latency_ms, both minimised) is computed on one reference point for every run: the
worst value of each objective over all final front candidates of all runs plus 10% of its range. For
each seed it reports the final hypervolumes and the time each arm needs to reach the other's final
hypervolume; medians over seeds. Target (issue #8): the funnel reaches the single-fidelity final
hypervolume in at most half the time single fidelity needs for it. Prints a table and writes JSON and a
PNG to ``benchmarks/results/``.

    python benchmarks/multi_fidelity.py                       # 3 seeds x 2 arms x 150 s on this machine
    python benchmarks/multi_fidelity.py --seeds 5 --wall 300 --base steps=60
    python benchmarks/multi_fidelity.py --wall 480 --continuation \
        --out benchmarks/results/multi_fidelity_cpu_480s_continued.json
    python benchmarks/multi_fidelity.py --wall 480 --continuation --single-schedule default \
        --out benchmarks/results/multi_fidelity_cpu_480s_continued_vs_default.json
    python benchmarks/multi_fidelity.py --wall 480 --continuation --warmup-steps 32 --single-schedule default \
        --out benchmarks/results/multi_fidelity_cpu_480s_continued_w32_vs_default.json
    python benchmarks/multi_fidelity.py --wall 480 --continuation --warmup-steps 32 --single-schedule default \
        --calibrate --out benchmarks/results/multi_fidelity_cpu_480s_calibrated_w32_vs_default.json
    python benchmarks/multi_fidelity.py --wall 480 --continuation --warmup-steps 32 --single-schedule default \
        --calibrate --first-seed 3 --ref 2.841935976035893,18.028955699999997 \
        --out benchmarks/results/multi_fidelity_cpu_480s_calibrated_w32_vs_default_s3-5.json   # the run above's ref
    python benchmarks/multi_fidelity.py \
        --combine benchmarks/results/multi_fidelity_cpu_480s_calibrated_w32_vs_default*.json   # all 6 seeds
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from archbench import Leaderboard, SearchSpace
from archbench.errors import ConfigError
from archbench.leaderboard.hypervolume import hypervolume_of
from archbench.leaderboard.objectives import Objective
from archbench.search import RayConfig, SearchConfig, run_search
from archbench.search.fidelity import FidelityConfig
from archbench.train_config import TrainConfig

RESULTS = Path(__file__).resolve().parent / "results"
OBJECTIVES = (Objective("val_loss"), Objective("latency_ms"))
NAMES = [o.name for o in OBJECTIVES]


def run_arm(arm: str, seed: int, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """One search of ``args.wall`` seconds; its rows with seconds since the start, and its counts."""
    rungs = tuple(float(x) for x in args.rungs.split(","))
    fidelity = FidelityConfig(
        "halving", rungs, args.eta, args.screen, continuation=args.continuation, calibrate=args.calibrate,
    )  # fmt: skip
    top_budget = fidelity.budgets(args.base)[-1]
    lb = work / f"{arm}-s{seed}" / "lb"
    config = SearchConfig(
        space=SearchSpace.builtin(args.space),
        task="charlm",
        budget=args.base if arm == "halving" else top_budget,
        strategy=args.strategy,
        fidelity=fidelity if arm == "halving" else FidelityConfig(),
        objectives=OBJECTIVES,
        n_trials=10_000,  # the wall-clock budget ends the run
        timeout_s=args.wall,
        concurrency=args.concurrency,
        seed=seed,
        study=f"{arm}-s{seed}",
        leaderboard=str(lb),
        ray=RayConfig(cpus_per_trial=1),  # the benchmark's Ray instance (see main)
        cache=False,
        progress=False,
        plot=False,
        train=train_config(args) if arm == "halving" or args.single_schedule != "default" else TrainConfig(),
    )
    t0 = time.time()
    outcome = run_search(config)
    df = Leaderboard(lb).query(status=None).collect()
    ts = [datetime.fromisoformat(s).timestamp() - t0 for s in df["created_at"].to_list()]
    df = df.with_columns(pl.Series("t", ts))
    top = fidelity.top if arm == "halving" else 0
    front_rows = df.filter((pl.col("status") == "ok") & (pl.col("rung").fill_null(0) == top))
    front_rows = front_rows.drop_nulls(NAMES)
    per_rung = df.group_by(pl.col("rung").fill_null(0)).len().sort("rung").rows() if df.height else []  # (rung, rows)
    took = [datetime.fromisoformat(e).timestamp() - datetime.fromisoformat(b).timestamp()
            for b, e in zip(df["started_at"].to_list(), df["created_at"].to_list(), strict=True)]  # fmt: skip
    df = df.with_columns(pl.Series("row_s", took))
    costs = df.group_by(pl.col("rung").fill_null(0)).agg(
        pl.col("row_s").median().alias("median_s"), pl.col("row_s").sum().alias("worker_s")
    )
    return {
        "arm": arm,
        "seed": seed,
        "budget": config.budget,
        "top_budget": top_budget,
        "wall_s": outcome.wall_s,
        "candidates": outcome.trials,
        "ok": outcome.ok,
        "rows_per_rung": {int(r): int(n) for r, n in per_rung},
        # seconds a row took on its worker (start to landing), median and total per rung: what a rung costs
        "row_seconds": {int(r["rung"]): {"median": r["median_s"], "total": r["worker_s"]} for r in costs.to_dicts()},
        "first_top_row_s": min((p[2] for p in front_rows.select(*NAMES, "t").rows()), default=None),
        "points": front_rows.select(*NAMES, "t").rows(),
        "rank_agreement": rank_agreement(df) if arm == "halving" else None,
        "screen_error": list(outcome.screen_error),  # the top rows' quick look against their full measurement
        "train_schedule": sorted(set(df["train_schedule"].drop_nulls().to_list())) if df.height else [],
        "resumed_steps": resumed_steps(df),
        "calibration": [dataclasses.asdict(m) for m in outcome.calibration],  # --calibrate: each rung's map at the end
    }


def resumed_steps(df: pl.DataFrame) -> dict[int, float | None]:
    """Median steps each rung's rows took over from the rung below (0: trained from scratch)."""
    if not df.height or "train_resumed_steps" not in df.columns:
        return {}
    agg = df.group_by(pl.col("rung").fill_null(0)).agg(pl.col("train_resumed_steps").median().alias("resumed"))
    return {int(r["rung"]): r["resumed"] for r in agg.to_dicts()}


def train_config(args: argparse.Namespace) -> TrainConfig:
    """Both arms' schedule: with ``--continuation``, wsd with the warm-up a continued funnel's trials run
    under (``SearchConfig.trial_train_config``: ``--warmup-steps``, else 10% of rung 0's steps)."""
    schedule = args.schedule or ("wsd" if args.continuation else "cosine")
    if not args.continuation:
        return TrainConfig(schedule=schedule)
    try:
        funnel = SearchConfig(
            space=SearchSpace.builtin(args.space),
            budget=args.base,
            fidelity=FidelityConfig("halving", tuple(float(x) for x in args.rungs.split(",")), continuation=True),
            train=TrainConfig(schedule=schedule, warmup_steps=args.warmup_steps),
        )
        return funnel.trial_train_config()
    except ConfigError as exc:
        raise SystemExit(f"--continuation: {exc}") from None


def warm_up(args: argparse.Namespace, work: Path) -> None:
    """A few tiny trials so every worker has imported torch and read the corpus before any timed run."""
    config = SearchConfig(
        space=SearchSpace.builtin(args.space), budget="steps=2", n_trials=2 * args.concurrency,
        concurrency=args.concurrency, study="warm-up", leaderboard=str(work / "warm-up" / "lb"),
        ray=RayConfig(cpus_per_trial=1), cache=False, progress=False, plot=False,
    )  # fmt: skip
    run_search(config)


def rank_agreement(df: pl.DataFrame) -> dict[str, float | None]:
    """Spearman's rho of val_loss between rung 0 and each later rung, over the trials that reached it."""
    from scipy.stats import spearmanr

    ok = df.filter(pl.col("status") == "ok").select("trial", "rung", "val_loss")
    base = ok.filter(pl.col("rung") == 0)
    out: dict[str, float | None] = {}
    for rung in sorted(set(ok["rung"].drop_nulls().to_list()) - {0}):
        pair = base.join(ok.filter(pl.col("rung") == rung), on="trial", suffix="_r")
        rho = spearmanr(pair["val_loss"], pair["val_loss_r"]).statistic if pair.height >= 3 else None
        out[f"rung0_vs_rung{rung}"] = None if rho is None or np.isnan(rho) else float(rho)
        out[f"n_rung{rung}"] = pair.height
    return out


def curve(points: list[tuple[float, float, float]], ref: np.ndarray, wall: float) -> list[tuple[float, float]]:
    """Hypervolume of the rows created by each moment ``t <= wall``, as (t, hv) steps."""
    pts = sorted((p for p in points if p[2] <= wall), key=lambda p: p[2])
    out, seen = [(0.0, 0.0)], []
    for v0, v1, t in pts:
        seen.append((v0, v1))
        out.append((t, hypervolume_of(np.array(seen), ref)))
    return out


def hv_at(steps: list[tuple[float, float]], t: float) -> float:
    return max((hv for s, hv in steps if s <= t), default=0.0)


def time_to(steps: list[tuple[float, float]], target: float) -> float | None:
    """First moment the curve reaches ``target`` (within a relative 1e-9); None if it never does."""
    for t, hv in steps:
        if hv >= target * (1 - 1e-9):
            return t
    return None


def rung_costs(runs: list[dict[str, Any]]) -> dict[str, float]:
    """A funnel row's cost at each rung over a single-fidelity row's: medians of seconds per row."""

    def med(arm: str, rung: int) -> float:
        return float(np.median([r["row_seconds"][rung]["median"] for r in runs
                                if r["arm"] == arm and rung in r["row_seconds"]]))  # fmt: skip

    rungs = sorted({k for r in runs if r["arm"] == "halving" for k in r["row_seconds"]})
    return {str(rung): med("halving", rung) / med("single", 0) for rung in rungs}


def error_summary(errors: list[float]) -> dict[str, float | int | None]:
    """Median and 90th percentile of the absolute relative errors, the median signed one, and the count."""
    if not errors:
        return {"n": 0, "median_abs": None, "p90_abs": None, "median": None}
    a = np.abs(errors)
    return {"n": len(errors), "median_abs": float(np.median(a)), "p90_abs": float(np.quantile(a, 0.9)),
            "median": float(np.median(errors))}  # fmt: skip


def median(values: list[float | None]) -> float | None:
    """Median where a None (never reached) counts as infinitely late; None if the median is one."""
    med = float(np.median([np.inf if v is None else v for v in values]))
    return None if not np.isfinite(med) else med


def reference_point(text: str) -> list[float]:
    """``--ref``: two numbers, val_loss and latency_ms (argparse turns the error into one line)."""
    try:
        ref = [float(x) for x in text.split(",")]
    except ValueError:
        ref = []
    if len(ref) != len(NAMES):
        raise argparse.ArgumentTypeError(f"{text!r}: give {len(NAMES)} numbers, val_loss,latency_ms, e.g. 2.84,18.0")
    return ref


def non_negative(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: must be a whole number of at least 0")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--first-seed", type=non_negative, default=0, help="seeds run are first-seed, first-seed + 1, ..."
    )
    parser.add_argument(
        "--ref",
        type=reference_point,
        default=None,
        help="reference point val_loss,latency_ms (default: the worst of this run's front candidates + 10%% of "
        "their range), e.g. another run's, so that the two runs' hypervolumes compare",
    )
    parser.add_argument("--wall", type=float, default=150.0, help="seconds per search (default 150)")
    parser.add_argument("--base", default="steps=40", help="the funnel's base budget (default steps=40)")
    parser.add_argument("--rungs", default="1,3,9", help="budget multipliers (default 1,3,9)")
    parser.add_argument("--eta", type=int, default=3)
    parser.add_argument("--screen", default="quick", help="how rung 0 measures: quick (default) | full")
    parser.add_argument("--continuation", action="store_true", help="promotions continue (search.continuation=true)")
    parser.add_argument(
        "--calibrate",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="tell stopped candidates on the top rung's scale (search.calibrate, the default; --no-calibrate: "
        "as the results recorded with calibrate false in their settings)",
    )
    parser.add_argument(
        "--schedule",
        default=None,
        help="both arms' schedule: cosine | wsd (default: wsd with --continuation, else cosine)",
    )
    parser.add_argument(
        "--single-schedule",
        choices=("same", "default"),
        default="same",
        help="single fidelity trains as the funnel does (same) or under the default TrainConfig "
        "(default: cosine, 10%% warm-up)",
    )
    parser.add_argument(
        "--warmup-steps",
        type=int,
        default=None,
        help="with --continuation: the warm-up of every rung (default: 10%% of rung 0's steps)",
    )
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--space", default="lm_tiny")
    parser.add_argument("--strategy", default="optuna_tpe", help="search strategy of both arms (default: the default)")
    parser.add_argument("--out", default=str(RESULTS / "multi_fidelity_cpu.json"))
    parser.add_argument(
        "--combine",
        nargs="+",
        metavar="JSON",
        default=None,
        help="run nothing: print the seeds of earlier runs' JSON files (one reference point) together",
    )
    args = parser.parse_args(argv)
    if args.combine:
        return combine([Path(f) for f in args.combine])
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    import ray

    work = Path(tempfile.mkdtemp(prefix="archbench-mf-"))
    runs: list[dict[str, Any]] = []
    started, load_before = time.time(), os.getloadavg()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(address="local", num_cpus=args.concurrency, include_dashboard=False, log_to_driver=False)
    try:
        warm_up(args, work)
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            for arm in ("single", "halving"):
                run = run_arm(arm, seed, args, work)
                runs.append(run)
                print(f"seed {seed} {arm:8s} {run['candidates']:3d} candidates, rows per rung "
                      f"{run['rows_per_rung']}, {len(run['points'])} front candidates, {run['wall_s']:.0f} s",
                      flush=True)  # fmt: skip
    finally:
        ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)

    every = np.array([p[:2] for r in runs for p in r["points"] if p[2] <= args.wall], dtype=float)
    if not len(every):
        print(f"no top-budget row landed within --wall {args.wall:.0f} s: give a longer wall", file=sys.stderr)
        return 1
    ref = every.max(axis=0) + 0.1 * (every.max(axis=0) - every.min(axis=0))
    if args.ref:  # another run's reference point, so that the two runs' hypervolumes compare
        ref = np.array(args.ref, dtype=float)
    per_seed = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        single = next(r for r in runs if r["arm"] == "single" and r["seed"] == seed)
        funnel = next(r for r in runs if r["arm"] == "halving" and r["seed"] == seed)
        cs, cf = curve(single["points"], ref, args.wall), curve(funnel["points"], ref, args.wall)
        hs, hf = hv_at(cs, args.wall), hv_at(cf, args.wall)
        ts_own = time_to(cs, hs)
        tf = time_to(cf, hs)
        per_seed.append({
            "seed": seed, "hv_single": hs, "hv_halving": hf,
            "single_time_to_own_final": ts_own,
            "halving_time_to_single_final": tf,
            "single_time_to_halving_final": time_to(cs, hf),
            "halving_over_single_time": None if tf is None or not ts_own else tf / ts_own,
            "curve_single": cs, "curve_halving": cf,
        })  # fmt: skip

    summary = {
        "hv_single": float(np.median([s["hv_single"] for s in per_seed])),
        "hv_halving": float(np.median([s["hv_halving"] for s in per_seed])),
        "single_time_to_own_final": median([s["single_time_to_own_final"] for s in per_seed]),
        "halving_time_to_single_final": median([s["halving_time_to_single_final"] for s in per_seed]),
        "single_time_to_halving_final": median([s["single_time_to_halving_final"] for s in per_seed]),
        "halving_over_single_time": median([s["halving_over_single_time"] for s in per_seed]),
        "candidates_single": float(np.median([r["candidates"] for r in runs if r["arm"] == "single"])),
        "candidates_halving": float(np.median([r["candidates"] for r in runs if r["arm"] == "halving"])),
        "first_top_row_single_s": median([r["first_top_row_s"] for r in runs if r["arm"] == "single"]),
        "first_top_row_halving_s": median([r["first_top_row_s"] for r in runs if r["arm"] == "halving"]),
        "rows_per_rung_halving": {  # how many trials each rung trained (median over seeds)
            str(k): float(np.median([r["rows_per_rung"].get(k, 0) for r in runs if r["arm"] == "halving"]))
            for k in sorted({k for r in runs if r["arm"] == "halving" for k in r["rows_per_rung"]})
        },
        "rung_cost_over_single": rung_costs(runs),
        "resumed_steps_halving": {  # median steps each rung continued from the rung below
            str(k): float(
                np.median(
                    [
                        r["resumed_steps"][k]
                        for r in runs
                        if r["arm"] == "halving" and r["resumed_steps"].get(k) is not None
                    ]
                )
            )
            for k in sorted({k for r in runs if r["arm"] == "halving" for k in r["resumed_steps"]})
        },
        "screen_error": error_summary([e for r in runs for e in r["screen_error"]]),
    }
    ratio = summary["halving_over_single_time"]
    summary["target_met"] = ratio is not None and ratio <= 0.5
    settings = {k: v for k, v in vars(args).items() if k != "out"}
    settings.update(task="charlm", objectives=NAMES, torch_threads=1)
    out = {
        "benchmark": "multi_fidelity",
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_avg_before": load_before,
            "load_avg_after": os.getloadavg(),
        },
        "settings": settings,
        "ref": ref.tolist(),
        "target": "the funnel reaches the single-fidelity final hypervolume in at most half the time",
        "summary": summary,
        "per_seed": per_seed,
        "runs": runs,
        "total_s": time.time() - started,
    }
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    plot(per_seed, args, path.with_suffix(".png"))
    report(summary, per_seed, args)
    print(f"wrote {path} and {path.with_suffix('.png').name}")
    return 0


def combine(paths: list[Path]) -> int:
    """Every seed of earlier runs side by side (their hypervolumes must share a reference point), with the
    median over all of them of the time the funnel needs to reach single fidelity's final hypervolume."""
    from rich.console import Console
    from rich.table import Table

    try:
        files = [json.loads(p.read_text()) for p in paths]
    except (OSError, json.JSONDecodeError) as exc:
        print(f"--combine: cannot read {exc}", file=sys.stderr)
        return 2
    refs = {tuple(f["ref"]) for f in files}
    if len(refs) != 1:
        print(
            f"--combine: the runs use different reference points {sorted(refs)}: rerun one with --ref", file=sys.stderr
        )
        return 2
    table = Table(title=f"funnel vs single fidelity, reference point {list(refs.pop())}")
    for col in ("seed", "funnel / single time", "HV single", "HV funnel", "best loss single", "best loss funnel",
                "candidates single", "candidates funnel", "map rung 0 (slope, R^2)", "map rung 1 (slope, R^2)",
                "map trials"):  # fmt: skip
        table.add_column(col, justify="right")
    ratios = []
    for f in files:
        runs = {(r["arm"], r["seed"]): r for r in f["runs"]}
        for s in f["per_seed"]:
            single, funnel = runs[("single", s["seed"])], runs[("halving", s["seed"])]
            ratio = s["halving_over_single_time"]
            ratios.append(ratio)
            maps = {m["rung"]: m for m in funnel.get("calibration", [])}
            fits = [f"{maps[r]['slope']:.2f}, {maps[r]['r2']:.2f}" if r in maps else "-" for r in (0, 1)]
            best = [min((p[0] for p in r["points"]), default=float("nan")) for r in (single, funnel)]
            table.add_row(str(s["seed"]), "never" if ratio is None else f"{ratio:.2f}x", f"{s['hv_single']:.2f}",
                          f"{s['hv_halving']:.2f}", f"{best[0]:.3f}", f"{best[1]:.3f}", str(single["candidates"]),
                          str(funnel["candidates"]), *fits, str(maps[0]["n"]) if 0 in maps else "-")  # fmt: skip
    Console(width=200).print(table)
    med = median(ratios)
    shown = "never reached" if med is None else f"{med:.2f}x"
    verdict = "met" if med is not None and med <= 0.5 else "not met"
    print(f"median over {len(ratios)} seeds of the funnel's time to single's final HV / single's own: {shown} "
          f"(target <= 0.5x: {verdict})")  # fmt: skip
    return 0


def report(summary: dict[str, Any], per_seed: list[dict[str, Any]], args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    def s(v: float | None) -> str:
        return "not reached" if v is None else f"{v:.0f} s"

    table = Table(title=f"funnel vs single fidelity, {args.wall:.0f} s each, median of {args.seeds} seeds")
    for col in ("", "single", "halving"):
        table.add_column(col, justify="right")
    table.add_row("final hypervolume", f"{summary['hv_single']:.4g}", f"{summary['hv_halving']:.4g}")
    table.add_row("candidates", f"{summary['candidates_single']:.0f}", f"{summary['candidates_halving']:.0f}")
    table.add_row("time to single's final HV", s(summary["single_time_to_own_final"]),
                  s(summary["halving_time_to_single_final"]))  # fmt: skip
    table.add_row("time to the funnel's final HV", s(summary["single_time_to_halving_final"]), "-")
    table.add_row("first top-budget row", s(summary["first_top_row_single_s"]), s(summary["first_top_row_halving_s"]))
    Console().print(table)
    rows = ", ".join(f"rung {k} {v:.0f}" for k, v in summary["rows_per_rung_halving"].items())
    print(f"the funnel's rows per rung (median): {rows}")
    costs = ", ".join(f"rung {k} {v:.2f}x" for k, v in summary["rung_cost_over_single"].items())
    print(f"a row's cost (median seconds) over a single-fidelity row's: {costs}")
    err = summary["screen_error"]
    if err["n"]:
        print(f"rung 0's quick latency vs the top rung's full one: median |error| {err['median_abs']:.1%}, "
              f"p90 {err['p90_abs']:.1%}, median signed {err['median']:+.1%} over {err['n']} rows")  # fmt: skip
    ratio = summary["halving_over_single_time"]
    verdict = "met" if summary["target_met"] else "not met"
    shown = "never reached" if ratio is None else f"{ratio:.2f}x"
    print(f"funnel time to single's final HV / single's own time: {shown} (target <= 0.5x: {verdict})")


def plot(per_seed: list[dict[str, Any]], args: argparse.Namespace, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for s in per_seed:
        for key, color in (("curve_single", "tab:blue"), ("curve_halving", "tab:orange")):
            t, hv = zip(*[*s[key], (args.wall, s[key][-1][1])], strict=True)
            label = ("single fidelity" if key == "curve_single" else "halving funnel") if s is per_seed[0] else None
            ax.step(t, hv, where="post", color=color, alpha=0.8, label=label)
    ax.set_xlabel("wall-clock seconds")
    ax.set_ylabel("hypervolume (val_loss, latency_ms)")
    ax.set_title(f"charlm / {args.space}: top-budget fronts, {args.seeds} seeds")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    raise SystemExit(main())
