"""The multi-fidelity funnel: the promotion rule, rung rows, resume mid-funnel, study identity, GPU sharing."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from archbench import ConfigError, Leaderboard
from archbench.leaderboard.objectives import Objective
from archbench.search import RayConfig, run_search
from archbench.search.calibration import MIN_PAIRS, fit_rung_map
from archbench.search.fidelity import Completion, FidelityConfig, Funnel, promoted_row, rank_order, top_of_rung
from archbench.search.progress import front_hypervolume
from archbench.search.trial_evaluators import SleepEvaluator, TrainEvaluator
from tests.search.test_driver import ARCHBENCH, rows, sleep_config
from tests.search.test_driver import local_ray as local_ray  # the module's Ray instance (a fixture)

OBJ = (Objective("val_loss"), Objective("latency_ms"))
HALVING = FidelityConfig("halving", (1, 3, 9), 3, calibrate=False)  # each rung's own values (calibrated: below)


def test_only_the_top_third_by_nondominated_rank_is_promoted() -> None:
    # Nine trials: rank 0 = {0, 1, 2, 3} (3 lies close between 0 and 1: its crowding distance is smallest),
    # rank 1 = {4, 5}, rank 2 = {6}; 7 failed, 8 broke a constraint. floor(9 / 3) = 3 go on.
    done = [
        Completion(0, (1.0, 9.0)), Completion(1, (2.0, 5.0)), Completion(2, (9.0, 1.0)), Completion(3, (1.5, 7.0)),
        Completion(4, (3.0, 8.0)), Completion(5, (9.5, 2.0)), Completion(6, (10.0, 10.0)), Completion(7, None),
        Completion(8, (0.5, 0.5), feasible=False),
    ]  # fmt: skip
    assert rank_order(done, OBJ)[:4] == [0, 2, 1, 3]  # extremes (infinite crowding) first, then 1 before 3
    assert top_of_rung(done, OBJ, eta=3) == [0, 2, 1]
    assert set(rank_order(done, OBJ)) == set(range(7))  # failed and infeasible are never promoted
    assert top_of_rung(done[:5], OBJ, eta=3) == [0]  # asynchronous: floor(5 / 3) = 1 of what finished so far
    assert top_of_rung(done[:2], OBJ, eta=3) == []
    maxed = (Objective("val_acc", "max"), Objective("latency_ms"))
    flipped = [Completion(c.trial, None if c.values is None else (-c.values[0], c.values[1])) for c in done[:7]]
    assert top_of_rung(flipped, maxed, eta=3) == [0, 2]  # the same ranking for a maximised objective


def test_the_funnel_promotes_from_the_highest_rung_first_and_logs_it(tmp_path: Path) -> None:
    funnel = Funnel(HALVING, OBJ, tmp_path)
    for t in range(6):
        funnel.record(0, t, {"status": "ok"}, (float(t), float(6 - t)) if t != 3 else (3.0, 3.0))
    first = funnel.next_promotion()
    assert first is not None and first[1] == 1
    funnel.launch(*first)
    second = funnel.next_promotion()
    assert second is not None and second[1] == 1 and second[0] != first[0]
    funnel.launch(*second)
    assert funnel.next_promotion() is None  # floor(6 / 3) = 2, both launched
    for t, vals in ((first[0], (0.1, 0.1)), (second[0], (0.2, 0.2))):
        funnel.record(1, t, {"status": "ok"}, vals)
    assert funnel.next_promotion() is None  # floor(2 / 3) = 0 at rung 1
    for t in (6, 7, 8):
        funnel.record(0, t, {"status": "ok"}, (0.01 * t, 0.01 * t))
    third = funnel.next_promotion()
    assert third is not None and third[1] == 1
    funnel.launch(*third)
    funnel.record(1, third[0], {"status": "ok"}, (0.05, 0.05))
    assert funnel.next_promotion() == (third[0], 2)  # rung 1 now has 3 completions: its best goes to rung 2 first
    funnel.launch(third[0], 2)
    again = Funnel(HALVING, OBJ, tmp_path)  # a restarted driver reads the log
    again.rows = dict(funnel.rows)
    assert (third[0], 2) in again.unfinished() and (first[0], 1) in again.unfinished()


def test_a_promoted_row_keeps_the_rung0_measurement() -> None:
    base = {"trial": 3, "rung": 0, "budget": "steps=10", "status": "ok", "val_loss": 3.0, "latency_ms": 1.5,
            "params": 1000, "device_name": "cpu-x", "train_time_s": 1.0, "cached": True,
            "null_reasons": json.dumps({"energy_mj": "no NVML"}), "energy_mj": None}  # fmt: skip
    trained = {"trial": 3, "rung": 2, "budget": "steps=90", "status": "ok", "val_loss": 2.0, "latency_ms": None,
               "params": None, "device_name": "cpu-x", "train_time_s": 9.0, "cached": False, "energy_mj": None,
               "null_reasons": json.dumps({"latency_ms": "not measured: measure=False", "params": "x",
                                           "energy_mj": "not measured: measure=False"})}  # fmt: skip
    row = promoted_row(trained, base)
    assert (row["budget"], row["rung"], row["val_loss"], row["train_time_s"]) == ("steps=90", 2, 2.0, 9.0)
    assert (row["latency_ms"], row["params"], row["cached"]) == (1.5, 1000, False)
    assert json.loads(row["null_reasons"]) == {"energy_mj": "no NVML"}
    assert row["feasible"] is None  # judged again by the driver


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "halfing"}, "search.fidelity='halfing': must be one of single, halving"),
        ({"mode": "halving", "rungs": (1,)}, "at least two increasing positive budget multipliers"),
        ({"mode": "halving", "rungs": (1, 9, 3)}, "at least two increasing positive budget multipliers"),
        ({"mode": "halving", "eta": 1}, "search.eta=1: must be an integer of at least 2"),
        ({"mode": "halving", "calibrate": 1}, "search.calibrate=1: must be true or false"),
    ],
)
def test_bad_fidelity_settings_are_one_line(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        FidelityConfig(**kwargs)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_rung_budgets_scale_the_base_budget() -> None:
    assert HALVING.budgets("steps=30") == ("steps=30", "steps=90", "steps=270")
    assert FidelityConfig("halving", (1, 2.5), 2).budgets("seconds=4") == ("seconds=4", "seconds=10")
    with pytest.raises(ConfigError, match="two rungs round to one budget"):
        FidelityConfig("halving", (1, 1.2), 2).budgets("steps=2")


def _funnel_invariants(df: pl.DataFrame, n_trials: int, eta: int) -> None:
    budgets = {0: "steps=10", 1: "steps=30", 2: "steps=90"}
    first = df.filter(pl.col("rung") == 0)["trial"]
    assert first.len() == first.n_unique() == n_trials  # (Optuna numbers later rungs' records too: gaps)
    assert df.select("trial", "rung").is_duplicated().sum() == 0  # one row per trial and rung
    for rung, budget in budgets.items():
        assert (df.filter(pl.col("rung") == rung)["budget"] == budget).all()
    for rung in (0, 1):
        here = df.filter(pl.col("rung") == rung)
        above = set(df.filter(pl.col("rung") == rung + 1)["trial"].to_list())
        assert above <= set(here["trial"].to_list())  # nobody skips a rung
        done = [Completion(r["trial"], (r["val_loss"], r["latency_ms"])) for r in here.to_dicts()]
        # ASHA: once the funnel is drained, every top trial went on (and maybe more)
        assert set(top_of_rung(done, OBJ, eta)) <= above


@pytest.mark.slow
def test_rung_rows_in_the_leaderboard_on_ray(tmp_path: Path, local_ray: object) -> None:
    config = sleep_config(tmp_path, n_trials=12, budget="steps=10", fidelity=HALVING, ray=RayConfig(),
                          evaluator_options={"seconds": 0.02})  # fmt: skip
    outcome = run_search(config)
    df = rows(tmp_path / "lb")
    _funnel_invariants(df, 12, 3)
    assert df.filter(pl.col("rung") == 1).height >= 4 and df.filter(pl.col("rung") == 2).height >= 1
    assert outcome.trials == 12 and [b for b, _ in outcome.rungs] == ["steps=10", "steps=30", "steps=90"]
    top = df.filter(pl.col("rung") == 2)
    assert {r["trial"] for r in outcome.front} <= set(top["trial"].to_list())  # the front is the top rung's
    pts = top.select("val_loss", "latency_ms").to_numpy()
    assert outcome.hypervolume == pytest.approx(front_hypervolume(pts, OBJ))
    saved = json.loads((outcome.study_dir / "study.json").read_text())
    assert saved["fidelity"] == {"mode": "halving", "rungs": [1, 3, 9], "eta": 3, "screen": "quick"}
    assert saved["space_hash"].startswith("sha256:")


def _die_at(monkeypatch: pytest.MonkeyPatch, budget: str, nth: int) -> Callable[[], None]:
    """Make the ``nth`` sleep trial at ``budget`` raise an uncatchable interrupt (what a SIGKILL leaves:
    the promotion logged, no row); returns the function that puts the real evaluator back."""
    real = SleepEvaluator.__call__
    calls = {"n": 0}

    def dying(self: SleepEvaluator, arch: object, study: str, trial: int) -> object:
        if self.rung_budget == budget:
            calls["n"] += 1
            if calls["n"] == nth:
                raise KeyboardInterrupt
        return real(self, arch, study, trial)

    monkeypatch.setattr(SleepEvaluator, "__call__", dying)
    return lambda: monkeypatch.setattr(SleepEvaluator, "__call__", real)


def test_resume_mid_funnel_reruns_the_promotion_in_flight(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The driver dies (an uncatchable interrupt) while submitting its second rung-1 promotion: that
    promotion was logged but has no row. The rerun runs it (once), keeps every earlier row, and drains."""
    config = sleep_config(tmp_path, n_trials=12, budget="steps=10", fidelity=HALVING,
                          evaluator_options={"seconds": 0.0})  # fmt: skip
    restore = _die_at(monkeypatch, "steps=30", 2)
    with pytest.raises(KeyboardInterrupt):
        run_search(config)
    restore()
    before = rows(tmp_path / "lb")
    log = [json.loads(x) for x in (config.study_dir / "promotions.jsonl").read_text().splitlines()]
    lost = [p for p in log if before.filter((pl.col("trial") == p["trial"]) & (pl.col("rung") == p["rung"])).is_empty()]
    assert len(lost) == 1 and lost[0]["rung"] == 1
    run_search(config)
    after = rows(tmp_path / "lb")
    _funnel_invariants(after, 12, 3)
    assert after.filter((pl.col("trial") == lost[0]["trial"]) & (pl.col("rung") == 1)).height == 1
    kept = after.join(before.select("trial", "rung", "created_at"), on=["trial", "rung"], how="inner")
    assert kept.height == before.height and (kept["created_at"] == kept["created_at_right"]).all()  # not rerun


def test_changing_the_fidelity_of_a_study_is_refused(tmp_path: Path) -> None:
    run_search(sleep_config(tmp_path, n_trials=3, study="f", budget="steps=10"))
    with pytest.raises(ConfigError) as info:
        run_search(sleep_config(tmp_path, n_trials=3, study="f", budget="steps=10", fidelity=HALVING))
    msg = str(info.value)
    assert 'fidelity.mode was "single", now "halving"; fidelity.rungs was unset, now [1, 3, 9]' in msg
    assert "\n" not in msg
    run_search(sleep_config(tmp_path, n_trials=6, study="h", budget="steps=10", fidelity=HALVING))
    with pytest.raises(ConfigError, match=r"\(fidelity.rungs was \[1, 3, 9\], now \[1, 2, 4\]\)"):
        run_search(sleep_config(tmp_path, n_trials=6, study="h", budget="steps=10",
                                fidelity=FidelityConfig("halving", (1, 2, 4), 3)))  # fmt: skip


def test_a_study_json_from_before_fidelity_and_space_hash_still_resumes(tmp_path: Path) -> None:
    outcome = run_search(sleep_config(tmp_path, n_trials=2, study="old"))
    path = outcome.study_dir / "study.json"
    saved = json.loads(path.read_text())
    legacy = {k: v for k, v in saved.items() if k not in ("fidelity", "space_hash")}
    path.write_text(json.dumps(legacy))
    assert run_search(sleep_config(tmp_path, n_trials=3, study="old")).trials == 3
    assert json.loads(path.read_text()) == saved  # rewritten with what it implied, no change recorded


def test_cache_is_keyed_on_the_budget(tmp_path: Path) -> None:
    from archbench.run_settings import RunSettings
    from archbench.search.cache import Cache

    run_search(sleep_config(tmp_path, n_trials=9, budget="steps=10", fidelity=HALVING, study="a"))
    lb = Leaderboard(tmp_path / "lb")
    cache = Cache(lb, "sleep", ["steps=10", "steps=30"], {"device_name": "sleep"}, RunSettings(), enabled=True)
    df = rows(tmp_path / "lb")
    for r in df.filter(pl.col("rung") <= 1).to_dicts():
        arch = _arch(r)
        assert cache.get(arch, r["budget"])["val_loss"] == pytest.approx(r["val_loss"])
    promoted = set(df.filter(pl.col("rung") == 1)["arch_id"].to_list())
    never = df.filter((pl.col("rung") == 0) & ~pl.col("arch_id").is_in(list(promoted)))
    assert all(cache.get(_arch(r), "steps=30") is None for r in never.to_dicts())


def _arch(row: dict) -> object:
    from archbench import Architecture

    return Architecture.from_dict({k: row[k] for k in Architecture.field_names()})


def test_training_only_tasks_take_the_gpu_fraction_measuring_ones_a_whole_gpu() -> None:
    from archbench.search.executor import RayExecutor

    executor = RayExecutor.__new__(RayExecutor)  # the options alone: no Ray needed
    executor.config, executor.gpus = RayConfig(train_gpu_fraction=0.25), 1
    assert executor.options(measures=True)["num_gpus"] == 1
    assert executor.options(measures=False)["num_gpus"] == 0.25
    train = TrainEvaluator(constraints=("params<=10",))
    assert train.at_budget("steps=30", measure=True).measure is True
    promoted = train.at_budget("steps=90", measure=False)
    assert promoted.measure is False and promoted.constraints == () and promoted.budget == "steps=90"
    with pytest.raises(ConfigError, match=r"ray.train_gpu_fraction=1.5: must be a number in \(0, 1\]"):
        RayConfig(train_gpu_fraction=1.5)


@pytest.mark.slow
def test_cli_funnel_settings_and_bad_values(tmp_path: Path) -> None:
    from archbench.cli.main import compose
    from archbench.cli.search import config_from_dict

    config = config_from_dict(compose(["search.fidelity=halving", "budget.rungs=[1,4]", "budget.eta=2", "timeout=60"]))
    assert config.fidelity == FidelityConfig("halving", (1, 4), 2) and config.timeout_s == 60
    assert config_from_dict(compose([])).fidelity.mode == "single"
    calibrated = config_from_dict(compose(["search.fidelity=halving", "search.calibrate=true"])).fidelity
    assert calibrated.calibrate is True and calibrated.identity()["calibrate"] is True
    bad = {"search.fidelity=halfing": "search.fidelity='halfing': must be one of single, halving",
           "ray.train_gpu_fraction=0": "ray.train_gpu_fraction=0: must be a number in (0, 1]"}  # fmt: skip
    for arg, message in bad.items():
        result = subprocess.run([ARCHBENCH, "search", arg, f"leaderboard={tmp_path / 'lb'}"],
                                capture_output=True, text=True, timeout=120)  # fmt: skip
        assert result.returncode == 2 and message in result.stderr and result.stderr.count("\n") == 1, result.stderr


def test_timeout_starts_nothing_new(tmp_path: Path) -> None:
    outcome = run_search(sleep_config(tmp_path, n_trials=50, evaluator_options={"seconds": 0.2}, timeout_s=0.5))
    assert 1 <= outcome.trials < 50  # rerunning the same command continues the study


def test_other_gpu_processes_are_counted_at_the_pynvml_boundary() -> None:
    from dataclasses import dataclass

    from archbench.latency.nvml import other_compute_processes
    from tests.latency.fake_nvml import FakePynvml, NVMLError

    @dataclass
    class Proc:
        pid: int
        usedGpuMemory: int = 0

    class WithProcesses(FakePynvml):
        def __init__(self, pids: list[int]) -> None:
            super().__init__()
            self.pids = pids

        def nvmlDeviceGetHandleByUUID(self, uuid: str) -> object:
            if uuid != "GPU-abc":
                raise NVMLError(13)
            return ("gpu", 0)

        def nvmlDeviceGetComputeRunningProcesses(self, handle: object) -> list[Proc]:
            return [Proc(p) for p in self.pids]

    import os

    me = os.getpid()
    assert other_compute_processes("GPU-abc", nvml=WithProcesses([me])) == 0
    assert other_compute_processes("GPU-abc", nvml=WithProcesses([me, 4242, 4243])) == 2
    assert other_compute_processes("GPU-abc", nvml=WithProcesses([91001, 91002])) == 1  # host PIDs in a container
    assert other_compute_processes("GPU-abc", nvml=WithProcesses([])) is None  # NVML sees no process here
    assert other_compute_processes("GPU-zzz", nvml=WithProcesses([me])) is None
    assert other_compute_processes(None, index=0, nvml=WithProcesses([me, 7])) == 1
    fake = WithProcesses([me])
    other_compute_processes("GPU-abc", nvml=fake)
    assert fake.initialised == 0  # NVML shut down again
    from archbench import Architecture
    from archbench.search.trial_evaluators import failed_result, flag_shared_gpu

    result = failed_result(Architecture(), "charlm", "steps=1", "s", 0, 0, "failed", "x")
    result = type(result)(**{**result.__dict__, "hardware": {"gpu_uuid": "GPU-abc", "device_name": "H100"}})
    flagged = flag_shared_gpu(result, nvml=WithProcesses([me, 5]))
    assert flagged.hardware["gpu_other_processes"] == 1 and flagged.to_row()["gpu_other_processes"] == 1


def _learnt(config: object) -> tuple[dict[int, list[float]], dict[str, list[list[float]]]]:
    """What the study's Optuna journal holds: each trial's told values by trial number, and every record
    (told trials and later rungs' records) by arch_id."""
    import optuna

    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(config.study_dir / "optuna.journal"))  # type: ignore[attr-defined]
    )
    study = optuna.load_study(study_name=config.study_name, storage=storage)  # type: ignore[attr-defined]
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert all(t.state == optuna.trial.TrialState.RUNNING for t in study.trials if t not in finished)
    told = {t.number: list(t.values) for t in finished if "archbench_rung" not in t.user_attrs}
    records: dict[str, list[list[float]]] = {}
    for t in finished:
        records.setdefault(t.user_attrs["arch_id"], []).append(list(t.values))
    return told, records


def _check_learnt(config: object, df: pl.DataFrame, n_trials: int) -> None:
    """Every candidate was told once; its highest rung's values reached the strategy (told, or learnt
    afterwards), and it was told its own values of some rung."""
    told, records = _learnt(config)
    assert sorted(told) == sorted(df.filter(pl.col("rung") == 0)["trial"].to_list())
    last = df.sort("rung").group_by("trial").last()
    for r in last.to_dicts():
        assert [r["val_loss"], r["latency_ms"]] in records[r["arch_id"]]
        own = df.filter(pl.col("trial") == r["trial"]).select("val_loss", "latency_ms").rows()
        assert tuple(told[r["trial"]]) in own


def test_each_candidate_is_told_once_and_learnt_at_its_highest_rung(tmp_path: Path) -> None:
    """Told rung-0 values only, a strategy learns what is good after a short run; here it learns what the
    funnel found good after the long one (the sleep evaluator's loss falls with the rung's budget)."""
    config = sleep_config(tmp_path, strategy="optuna_tpe", n_trials=12, budget="steps=10", fidelity=HALVING,
                          evaluator_options={"seconds": 0.0})  # fmt: skip
    run_search(config)
    df = rows(tmp_path / "lb")
    _funnel_invariants(df, 12, 3)
    _check_learnt(config, df, 12)
    told, _ = _learnt(config)
    later = df.filter(pl.col("rung") >= 1).select("trial", "val_loss", "latency_ms").rows()
    assert any(told[t] == [v, lat] for t, v, lat in later)  # some waited, and were told a later rung's values


def test_a_resumed_funnel_tells_its_waiting_candidates_their_highest_rung(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed while candidates wait for promotion (untold, pending in the journal), the rerun tells each of
    them once, with the row of the highest rung it reached, and asks for no extra candidate."""
    config = sleep_config(tmp_path, strategy="optuna_tpe", n_trials=12, budget="steps=10", fidelity=HALVING,
                          evaluator_options={"seconds": 0.0})  # fmt: skip
    restore = _die_at(monkeypatch, "steps=90", 1)
    with pytest.raises(KeyboardInterrupt):
        run_search(config)
    restore()
    told_before, _ = _learnt(config)
    assert len(told_before) < 12  # some candidates were waiting when the driver died
    run_search(config)
    df = rows(tmp_path / "lb")
    _funnel_invariants(df, 12, 3)
    _check_learnt(config, df, 12)


def test_screening_rungs_skip_the_quantized_models_quality_unless_it_is_ranked(tmp_path: Path) -> None:
    from archbench.search.loop import rung_evaluators

    config = sleep_config(tmp_path, budget="steps=10", fidelity=HALVING)
    flags = [e.validate_quant for e in rung_evaluators(config, TrainEvaluator(budget="steps=10"))]
    assert flags == [False, False, True]  # only the top rung's rows are whole
    ranked = sleep_config(tmp_path, budget="steps=10", fidelity=HALVING,
                          objectives=(Objective("val_loss_quant"), Objective("latency_ms")))  # fmt: skip
    assert [e.validate_quant for e in rung_evaluators(ranked, TrainEvaluator(budget="steps=10"))] == [True] * 3
    from archbench.constraints import parse_constraints

    cons = parse_constraints("val_bpb_quant<=3")
    judged = sleep_config(tmp_path, budget="steps=10", fidelity=HALVING, constraints=cons)
    assert [e.validate_quant for e in rung_evaluators(judged, TrainEvaluator(budget="steps=10"))] == [True] * 3


def test_a_row_without_a_needed_metric_is_no_cache_hit(tmp_path: Path) -> None:
    from archbench import Architecture
    from archbench.run_settings import RunSettings
    from archbench.search.cache import Cache
    from archbench.trial import NOT_VALIDATED

    lb = Leaderboard(tmp_path / "lb")
    arch = Architecture(depth=1, width=32, heads=2, max_seq_len=32)
    base = {**arch.to_dict(), "arch_id": arch.arch_id, "task": "charlm", "budget": "steps=10", "status": "ok",
            "device_name": "cpu-x", "val_loss": 2.0, "latency_ms": 1.0, **RunSettings().columns()}  # fmt: skip
    cache = Cache(lb, "charlm", ["steps=10"], {"device_name": "cpu-x"}, RunSettings(), enabled=True,
                  needed=("val_loss_quant",))  # fmt: skip
    cache.add({**base, "val_loss_quant": None, "null_reasons": json.dumps({"val_loss_quant": NOT_VALIDATED})})
    assert cache.get(arch, "steps=10") is None
    cache.add({**base, "val_loss_quant": None, "null_reasons": json.dumps({"val_loss_quant": "diverged: ..."})})
    assert cache.get(arch, "steps=10")["val_loss_quant"] is None  # what a new run would give too: a hit
    cache.add({**base, "val_loss_quant": 2.1})
    assert cache.get(arch, "steps=10")["val_loss_quant"] == 2.1


def test_a_funnel_drains_behind_a_generation_barrier(tmp_path: Path) -> None:
    """Candidates waiting for promotion hold back pymoo's generation barrier: the funnel still drains,
    and every candidate is told once (TPE and random search run funnels in the tests above)."""
    config = sleep_config(tmp_path, strategy="pymoo_nsga2", n_trials=12, budget="steps=10", fidelity=HALVING,
                          evaluator_options={"seconds": 0.0}, strategy_options={"population_size": 4})  # fmt: skip
    outcome = run_search(config)
    df = rows(tmp_path / "lb")
    _funnel_invariants(df, 12, 3)
    assert outcome.trials == 12 and df.filter(pl.col("rung") == 2).height >= 1


def test_rung_zero_takes_a_quick_look_and_the_top_rung_measures_again() -> None:
    from archbench.search.loop import rung_evaluators

    config = sleep_config(Path("unused"), budget="steps=10", fidelity=HALVING)
    flags = [(e.measure, e.screen) for e in rung_evaluators(config, TrainEvaluator(budget="steps=10"))]
    assert flags == [(True, True), (False, False), (True, False)]
    full = FidelityConfig("halving", (1, 3, 9), 3, screen="full", calibrate=False)
    config = sleep_config(Path("unused"), budget="steps=10", fidelity=full)
    flags = [(e.measure, e.screen) for e in rung_evaluators(config, TrainEvaluator(budget="steps=10"))]
    assert flags == [(True, False), (False, False), (False, False)]
    assert full.identity() == {"mode": "halving", "rungs": [1, 3, 9], "eta": 3}  # what studies from before say
    with pytest.raises(ConfigError, match=r"^search.screen='fast': must be one of quick, full$"):
        FidelityConfig("halving", screen="fast")


def test_a_top_row_measured_again_is_its_own_with_the_quick_look_beside_it() -> None:
    base = {"trial": 3, "rung": 0, "budget": "steps=10", "status": "ok", "latency_ms": 1.5, "params": 1000,
            "latency_stop_reason": "time_cap", "measure_effort": "screen", "val_loss": 3.0}  # fmt: skip
    trained = {"trial": 3, "rung": 2, "budget": "steps=90", "status": "ok", "latency_ms": 1.4, "params": 1000,
               "latency_stop_reason": "median_precise", "measure_effort": "full", "val_loss": 2.0}  # fmt: skip
    row = promoted_row(trained, base, measured=True)
    assert (row["latency_ms"], row["measure_effort"], row["latency_stop_reason"]) == (1.4, "full", "median_precise")
    assert (row["screen_latency_ms"], row["screen_stop_reason"], row["val_loss"]) == (1.5, "time_cap", 2.0)


def test_a_quick_look_is_no_cache_hit_for_a_full_measurement(tmp_path: Path) -> None:
    from archbench import Architecture
    from archbench.run_settings import RunSettings
    from archbench.search.cache import Cache

    arch = Architecture(depth=1, width=32, heads=2, max_seq_len=32)
    base = {**arch.to_dict(), "arch_id": arch.arch_id, "task": "charlm", "budget": "steps=10", "status": "ok",
            "device_name": "cpu-x", "val_loss": 2.0, **RunSettings().columns()}  # fmt: skip
    lb = Leaderboard(tmp_path / "lb")
    cache = Cache(lb, "charlm", ["steps=10"], {"device_name": "cpu-x"}, RunSettings(), enabled=True)
    cache.add({**base, "measure_effort": "screen", "latency_ms": 1.1})
    assert cache.get(arch, "steps=10") is None
    assert cache.get(arch, "steps=10", full=False)["latency_ms"] == 1.1  # a funnel's rung 0 may reuse it
    cache.add({**base, "measure_effort": "full", "latency_ms": 0.9})
    cache.add({**base, "measure_effort": "screen", "latency_ms": 1.2})  # a later quick look: not for full ones
    assert cache.get(arch, "steps=10")["latency_ms"] == 0.9
    assert cache.get(arch, "steps=10", full=False)["latency_ms"] == 1.2
    cache.add({**base, "latency_ms": 0.8})  # a row from before measure_effort existed was measured in full
    assert cache.get(arch, "steps=10")["latency_ms"] == 0.8


@pytest.mark.slow
def test_a_trained_funnel_screens_at_rung_zero_and_measures_its_top_rows_in_full(tmp_path: Path) -> None:
    from archbench import SearchSpace

    one = SearchSpace.from_dict(
        {"name": "one", "fields": {"depth": [1], "width": [32], "heads": [2], "residual": ["pre_ln", "rezero"],
                                   "max_seq_len": 32, "quant": ["fp32"], "ffn_ratio": [2, 4]}}
    )  # fmt: skip
    funnel = FidelityConfig("halving", (1, 2), 3)
    config = sleep_config(tmp_path, space=one, evaluator="train", strategy="random", n_trials=3, concurrency=1,
                          budget="steps=1", fidelity=funnel, evaluator_options={})  # fmt: skip
    outcome = run_search(config)
    df = rows(tmp_path / "lb").sort("rung", "trial")
    assert df["rung"].to_list() == [0, 0, 0, 1] and (df["status"] == "ok").all()
    assert df.filter(pl.col("rung") == 0)["measure_effort"].to_list() == ["screen"] * 3
    top = df.filter(pl.col("rung") == 1).row(0, named=True)
    first = df.filter((pl.col("rung") == 0) & (pl.col("trial") == top["trial"])).row(0, named=True)
    assert top["measure_effort"] == "full" and top["latency_ms"] > 0 and top["budget"] == "steps=2"
    assert top["screen_latency_ms"] == first["latency_ms"] and top["screen_stop_reason"] == first["latency_stop_reason"]
    assert top["started_at"] > first["created_at"]  # measured again after rung 0, not copied from it
    assert [r["trial"] for r in outcome.front] == [top["trial"]]
    assert outcome.screen_error == pytest.approx((first["latency_ms"] / top["latency_ms"] - 1,))


@pytest.mark.slow
def test_a_continued_funnel_trains_each_promotion_from_its_last_rungs_state(tmp_path: Path) -> None:
    """search.continuation: rung 1 starts from rung 0's state where its cool-down began, and is the same
    model (bit for bit on CPU) as a wsd run of rung 1's budget from scratch; the states go at the end."""
    from archbench import SearchSpace
    from archbench.evaluators import evaluate
    from archbench.train_config import TrainConfig

    one = SearchSpace.from_dict(
        {"name": "one", "fields": {"depth": [1], "width": [32], "heads": [2], "residual": ["pre_ln", "rezero"],
                                   "max_seq_len": 32, "quant": ["fp32"], "ffn_ratio": [2, 4]}}
    )  # fmt: skip
    funnel = FidelityConfig("halving", (1, 2), 3, continuation=True)
    config = sleep_config(tmp_path, space=one, evaluator="train", strategy="random", n_trials=3, concurrency=1,
                          budget="steps=5", fidelity=funnel, evaluator_options={}, train=TrainConfig(schedule="wsd"),
                          cache=False)  # fmt: skip
    outcome = run_search(config)
    df = rows(tmp_path / "lb").sort("rung", "trial")
    assert df["rung"].to_list() == [0, 0, 0, 1] and (df["status"] == "ok").all()
    assert df["train_schedule"].unique().to_list() == ["wsd(warmup=1,decay=0.2)"]  # 10% of rung 0's 5 steps
    assert df["train_resumed_steps"].to_list() == [0, 0, 0, 4]  # rung 0 cools down over its last step
    top = df.filter(pl.col("rung") == 1).row(0, named=True)
    scratch = evaluate(_arch_of_row(top), "charlm", "steps=10", config=TrainConfig(schedule="wsd", warmup_steps=1),
                       measure=False)  # fmt: skip
    assert top["val_loss"] == scratch.metrics["val_loss"] and scratch.metrics["train_resumed_steps"] == 0
    assert not (outcome.study_dir / "train_states").exists()
    assert json.loads((outcome.study_dir / "study.json").read_text())["fidelity"]["continuation"] is True


def _arch_of_row(row: dict) -> object:
    from archbench.search_space.architecture import Architecture

    return Architecture.from_dict({k: row[k] for k in Architecture.field_names()})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"budget": "steps=5"}, r"^search.continuation=true needs train.schedule=wsd: a cosine schedule spans"),
        ({"budget": "seconds=5", "schedule": "wsd"}, r"^train.schedule=wsd needs budget=steps=N or tokens=N, not"),
        ({"budget": "tokens=5000", "schedule": "wsd"}, r"^search.continuation=true on budget=tokens=5000: give "),
    ],
)
def test_continuation_settings_that_cannot_work_are_one_line(kwargs: dict, message: str, tmp_path: Path) -> None:
    from archbench.train_config import TrainConfig

    funnel = FidelityConfig("halving", (1, 3), 3, continuation=True)
    train = TrainConfig(schedule=kwargs.pop("schedule", "cosine"))
    with pytest.raises(ConfigError, match=message):
        sleep_config(tmp_path, evaluator="train", evaluator_options={}, fidelity=funnel, train=train, **kwargs)


@pytest.mark.slow
def test_cli_schedule_and_continuation_settings_and_bad_values(tmp_path: Path) -> None:
    from archbench.cli.main import compose
    from archbench.cli.search import config_from_dict

    args = ["search.fidelity=halving", "search.continuation=true", "train.schedule=wsd", "budget=steps=50"]
    config = config_from_dict(compose(args))
    assert config.fidelity.continuation and config.train.schedule == "wsd" and config.train.warmup_steps is None
    assert config.trial_train_config().warmup_steps == 5  # 10% of rung 0's 50 steps, at every rung
    assert config.identity()["train_schedule"] == "wsd(warmup=0.1,decay=0.2)"
    assert "train_schedule" not in config_from_dict(compose([])).identity()  # older studies still resume
    bad = {
        "train.schedule=linear": "train.schedule='linear': must be one of cosine, wsd",
        "search.continuation=maybe": "search.continuation='maybe': must be true or false",
        "train.decay_frac=0": "train.decay_frac=0: must be in (0, 1)",
    }
    for arg, message in bad.items():
        result = subprocess.run([ARCHBENCH, "search", arg, "search.fidelity=halving", f"leaderboard={tmp_path / 'lb'}"],
                                capture_output=True, text=True, timeout=120)  # fmt: skip
        assert result.returncode == 2 and message in result.stderr and result.stderr.count("\n") == 1, result.stderr
    cmd = [ARCHBENCH, "search", "search.fidelity=halving", "search.continuation=true", f"leaderboard={tmp_path}/lb"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "search.continuation=true needs train.schedule=wsd" in result.stderr


def test_changing_the_schedule_of_a_study_is_refused(tmp_path: Path) -> None:
    from archbench.train_config import TrainConfig

    run_search(sleep_config(tmp_path, n_trials=2, study="s"))
    with pytest.raises(ConfigError, match=r'train_schedule was unset, now "wsd\(warmup=0.1,decay=0.2\)"'):
        run_search(sleep_config(tmp_path, n_trials=3, study="s", train=TrainConfig(schedule="wsd")))


def test_a_row_trained_under_another_recipe_or_an_unrecorded_one_is_no_cache_hit(tmp_path: Path) -> None:
    """The cache keys on the whole training recipe: another schedule is no hit, and a row from before the
    recipe was recorded never is (it may have been trained at another learning rate). Read back, such a
    trained row without a schedule is cosine, the only schedule there was (the leaderboard's read rule)."""
    from archbench.run_settings import RunSettings
    from archbench.search.cache import Cache
    from archbench.search_space.architecture import Architecture
    from archbench.train_config import TrainConfig

    arch = Architecture(depth=1, width=32, heads=2, max_seq_len=32)
    cosine, wsd = RunSettings(TrainConfig()), RunSettings(TrainConfig(schedule="wsd", warmup_steps=1))
    base = {**arch.to_dict(), "arch_id": arch.arch_id, "task": "charlm", "budget": "steps=10", "status": "ok",
            "device_name": "cpu-x", "val_loss": 2.0, "latency_ms": 1.0, "train_time_s": 1.0}  # fmt: skip
    lb = Leaderboard(tmp_path / "lb")
    under_cosine = Cache(lb, "charlm", ["steps=10"], {"device_name": "cpu-x"}, cosine, enabled=True)
    under_cosine.add({**base, **wsd.columns()})
    assert under_cosine.get(arch, "steps=10") is None
    under_cosine.add({**base, "archbench_version": cosine.archbench_version})  # no recipe recorded
    assert under_cosine.get(arch, "steps=10") is None
    under_cosine.add({**base, **cosine.columns()})
    assert under_cosine.get(arch, "steps=10") is not None
    under_wsd = Cache(lb, "charlm", ["steps=10"], {"device_name": "cpu-x"}, wsd, enabled=True)
    under_wsd.add({**base, **cosine.columns()})
    assert under_wsd.get(arch, "steps=10") is None
    lb.append([{**base, **wsd.columns(), "created_at": "2025-01-01T00:00:01"},
               {**base, **cosine.columns(), "val_loss": 3.0, "created_at": "2025-01-01T00:00:02"},
               {**base, "val_loss": 4.0, "created_at": "2025-01-01T00:00:03"}])  # fmt: skip
    reread = Cache(lb, "charlm", ["steps=10"], {"device_name": "cpu-x"}, cosine, enabled=True)
    assert reread.get(arch, "steps=10")["val_loss"] == 3.0  # read back from parquet: only the cosine row
    old = lb.query(status=None).collect().filter(pl.col("val_loss") == 4.0).row(0, named=True)
    assert (old["train_schedule"], old["train_recipe"]) == ("cosine", None)


def test_a_rung_map_fits_the_top_rungs_scale_and_never_reverses_a_ranking() -> None:
    pairs = [(3.0, 2.0), (3.2, 2.1), (3.4, 2.2), (3.6, 2.3), (3.8, 2.4)]  # top = 0.5 + 0.5 x rung
    fitted = fit_rung_map(0, "val_loss", pairs)
    assert fitted is not None and fitted.n == 5 and fitted.r2 == pytest.approx(1.0)
    assert (fitted.slope, fitted.intercept) == pytest.approx((0.5, 0.5)) and fitted(4.0) == pytest.approx(2.5)
    assert fit_rung_map(0, "val_loss", pairs[: MIN_PAIRS - 1]) is None  # too few trials finished both rungs
    reversed_ = fit_rung_map(0, "val_loss", [(x, 5.6 - y) for x, y in pairs])  # noise that reverses the ranking
    assert reversed_ is not None and reversed_.slope == 1.0  # only shifts: the mean difference
    assert reversed_.intercept == pytest.approx(float(np.mean([5.6 - y - x for x, y in pairs])))
    flat = fit_rung_map(1, "val_acc", [(0.5, 0.6 + 0.01 * i) for i in range(6)])  # a rung that ranks nobody
    assert flat is not None and flat.slope == 1.0 and flat(0.5) == pytest.approx(0.625)


def test_a_calibrated_funnel_puts_lower_rungs_quality_on_the_top_scale_and_keeps_cost(tmp_path: Path) -> None:
    funnel = Funnel(FidelityConfig("halving", (1, 3), 3, calibrate=True), OBJ, tmp_path)
    plain = Funnel(FidelityConfig("halving", (1, 3), 3, calibrate=False), OBJ, tmp_path)
    for t in range(8):
        for f in (funnel, plain):
            f.record(0, t, {"status": "ok"}, (3.0 + 0.1 * t, 1.0 + t))
    for t in range(MIN_PAIRS - 1):
        funnel.record(1, t, {"status": "ok"}, (1.0 + 0.05 * t, 1.0 + t))  # top = -0.5 + 0.5 x rung 0
    assert funnel.on_top_scale(0, (3.5, 9.0)) == (3.5, 9.0) and funnel.calibration() == ()  # too few pairs yet
    funnel.record(1, MIN_PAIRS - 1, {"status": "ok"}, (1.0 + 0.05 * (MIN_PAIRS - 1), float(MIN_PAIRS)))
    assert funnel.on_top_scale(0, (3.5, 9.0)) == pytest.approx((1.25, 9.0))  # the latency is measured: as it is
    assert funnel.on_top_scale(1, (1.7, 9.0)) == (1.7, 9.0)  # the top rung's own values
    assert plain.on_top_scale(0, (3.5, 9.0)) == (3.5, 9.0)  # off
    (only,) = funnel.calibration()
    assert (only.rung, only.objective, only.n) == (0, "val_loss", MIN_PAIRS)
    funnel.record(1, 6, {"status": "ok"}, (0.9, 7.0))  # a new top completion: the map is fitted again
    assert funnel.calibration()[0].n == MIN_PAIRS + 1 and funnel.on_top_scale(0, (3.5, 9.0))[0] != 1.25
    assert funnel.quota(0) == plain.quota(0)  # promotion ranks each rung's own values, as before
    assert FidelityConfig("halving", calibrate=True).identity()["calibrate"] is True
    assert FidelityConfig("halving").identity()["calibrate"] is True  # the default
    assert "calibrate" not in FidelityConfig("halving", calibrate=False).identity()  # as studies from before


def test_a_calibrated_funnel_tells_stopped_candidates_on_the_top_scale(tmp_path: Path) -> None:
    """The sleep evaluator's loss at a rung is the shape's plus 1 / steps: the maps are exact shifts
    (rung 0: 1/90 - 1/10, rung 1: 1/90 - 1/30), so once fitted a candidate stopped at rung 0 is told its
    rung-0 loss shifted onto rung 2's scale (what it would have scored there), and its latency as measured."""
    calibrated = FidelityConfig("halving", (1, 3, 9), 3, calibrate=True)
    config = sleep_config(tmp_path, strategy="optuna_tpe", n_trials=48, budget="steps=10", fidelity=calibrated,
                          evaluator_options={"seconds": 0.0})  # fmt: skip
    outcome = run_search(config)
    df = rows(tmp_path / "lb")
    _funnel_invariants(df, 48, 3)
    shift = {0: 1 / 90 - 1 / 10, 1: 1 / 90 - 1 / 30}
    assert {m.rung: m.intercept for m in outcome.calibration} == pytest.approx(shift)
    assert all(m.slope == pytest.approx(1.0) and m.r2 == pytest.approx(1.0) for m in outcome.calibration)
    told, _ = _learnt(config)
    scaled = 0
    for trial, (loss, latency) in told.items():
        own = df.filter(pl.col("trial") == trial).select("rung", "val_loss", "latency_ms").rows()
        assert latency in [lat for _, _, lat in own]
        raw = [v for _, v, _ in own]  # raw until the map is fitted; a rung-2 row's own values are its own
        on_top = [v + shift[r] for r, v, _ in own if r < 2]  # then on rung 2's scale: what the shape scores there
        assert loss in raw or any(loss == pytest.approx(v) for v in on_top)
        scaled += loss not in raw
    assert scaled >= 3  # (5 here: most candidates leave the funnel before the top rung has 5 rows)
    assert json.loads((outcome.study_dir / "study.json").read_text())["fidelity"]["calibrate"] is True


def test_the_search_report_prints_each_rungs_map(capsys: pytest.CaptureFixture[str]) -> None:
    from archbench.search import SearchOutcome, print_outcome

    fitted = fit_rung_map(0, "val_loss", [(3.0 + 0.2 * i, 2.0 + 0.1 * i + 0.01 * (i % 2)) for i in range(6)])
    assert fitted is not None
    outcome = SearchOutcome("s", Path("st"), Path("lb"), 6, 6, 0, 0, (), 1.0, None, 1.0, calibration=(fitted,))
    print_outcome(outcome, OBJ)
    out = " ".join(capsys.readouterr().out.split())
    assert f"calibration: val_loss at the top rung ~ {fitted.intercept:.3g} + {fitted.slope:.3g} x rung 0's" in out
    assert f"(fitted on 6 trials, R^2 {fitted.r2:.2f})" in out
