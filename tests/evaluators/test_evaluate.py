"""evaluate(): real short training on CPU, quantized quality, and every failure recorded as a TrialResult."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch

from archbench import Architecture
from archbench.errors import ConfigError
from archbench.evaluators import TASKS, Batch, Budget, TrainConfig, evaluate, get_task, train, validate
from archbench.evaluators.digits import Digits
from archbench.evaluators.measurement import COST_METRICS
from archbench.evaluators.task import TaskData
from archbench.trial import STATUSES

TINY = Architecture(depth=1, width=32, heads=2, max_seq_len=32)


def _fast(**kw: object) -> TrainConfig:
    return TrainConfig(batch_size=8, **kw)  # type: ignore[arg-type]


@pytest.mark.slow
def test_charlm_training_gets_well_below_a_uniform_byte_predictor() -> None:
    arch = Architecture(depth=2, width=64, heads=4, max_seq_len=64)
    r = evaluate(arch, "charlm", "steps=300", measure=False, config=TrainConfig(batch_size=16))
    assert r.status == "ok", r.reason
    uniform = math.log(256)  # 5.545 nats
    assert r.metrics["val_loss"] < uniform - 2.0  # well below: < 3.55 nats per byte
    assert r.metrics["val_bpb"] == pytest.approx(r.metrics["val_loss"] / math.log(2))
    assert r.metrics["val_loss_quant"] == r.metrics["val_loss"]  # fp32: the deployed model is the float model
    assert r.metrics["train_tokens_per_s"] > 0 and r.metrics["train_time_s"] > 0


@pytest.mark.slow
def test_same_seed_twice_gives_the_same_result_and_another_seed_does_not() -> None:
    arch = TINY.replace(drop_path=0.1, depth=2)  # drop_path draws random numbers in training
    runs = [evaluate(arch, "charlm", "steps=15", seed=s, measure=False, config=_fast()) for s in (3, 3, 4)]
    assert all(r.status == "ok" for r in runs), [r.reason for r in runs]
    a, b, c = (r.metrics["val_loss"] for r in runs)
    assert abs(a - b) <= 1e-6
    assert abs(a - c) > 1e-6


def test_drop_path_is_off_in_validation() -> None:
    arch = TINY.replace(drop_path=0.5, depth=4)
    task = get_task("charlm", val_bytes=2048)
    data = task.prepare(arch)
    model = task.build(arch)
    first = validate(model, task, data, torch.device("cpu"), 16)
    assert validate(model, task, data, torch.device("cpu"), 16) == first  # no random layer drops
    assert model.training  # validate() restores the mode it found
    model.train()
    batch = next(data.val_batches(16))
    with torch.no_grad():
        assert not torch.equal(model(batch.x), model(batch.x))  # while training, layers are dropped at random


def test_evaluate_leaves_the_callers_random_state_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    evaluate(TINY, "digits", "steps=2", measure=False, config=_fast())
    assert torch.equal(torch.rand(3), expected)


def test_huge_learning_rate_is_recorded_as_diverged_not_raised() -> None:
    r = evaluate(TINY, "charlm", "steps=60", measure=False, config=_fast(lr=1e3, check_every=1))
    assert r.status == "diverged"
    assert "loss" in r.reason and "step" in r.reason
    assert r.metrics["val_loss"] is None and r.null_reasons["val_loss"].startswith("diverged")
    assert r.metrics["train_time_s"] is not None  # the cost of getting there is still known
    assert r.to_row()["status"] == "diverged"


@pytest.mark.slow
def test_quantized_quality_is_measured_on_the_converted_model() -> None:
    for quant in ("int8", "bf16"):
        r = evaluate(TINY.replace(quant=quant), "charlm", "steps=20", measure=False, config=_fast())
        assert r.status == "ok", r.reason
        float_loss, quant_loss = r.metrics["val_loss"], r.metrics["val_loss_quant"]
        assert quant_loss != float_loss  # recomputed on the converted weights, not copied
        assert abs(quant_loss - float_loss) < 0.1
        assert r.metrics["val_bpb_quant"] == pytest.approx(quant_loss / math.log(2))


def test_a_quant_the_device_cannot_run_is_unsupported_before_any_training() -> None:
    r = evaluate(TINY.replace(quant="fp8"), "charlm", "steps=100000", device="cpu")
    assert r.status == "unsupported" and "fp8" in r.reason
    assert r.metrics["train_time_s"] is None and "not trained" in r.null_reasons["train_time_s"]
    assert r.metrics["latency_ms"] is None


@pytest.mark.slow
def test_digits_and_recall_report_accuracy() -> None:
    d = evaluate(TINY.replace(max_seq_len=64), "digits", "steps=100", measure=False)
    assert d.status == "ok", d.reason
    assert 0.0 <= d.metrics["val_acc"] <= 1.0 and d.metrics["val_acc_quant"] == d.metrics["val_acc"]
    assert d.metrics["val_acc"] > 0.2  # above chance (0.1) after 100 steps
    r = evaluate(TINY, "recall", "steps=3", measure=False, config=_fast())
    assert r.status == "ok" and 0.0 <= r.metrics["val_acc"] <= 1.0
    assert "val_bpb" not in r.metrics


@pytest.mark.slow
def test_token_and_seconds_budgets() -> None:
    data = Digits().prepare(TINY.replace(max_seq_len=64))
    model = Digits().build(TINY.replace(max_seq_len=64))
    out = train(
        model, data, Budget.parse("tokens=1000"), TrainConfig(), batch_size=4,
        generator=torch.Generator().manual_seed(0), device=torch.device("cpu"),
    )  # fmt: skip
    assert out.steps == 4 and out.tokens == 4 * 4 * 64  # ceil(1000 / 256) steps
    r = evaluate(TINY, "charlm", "seconds=0.5", measure=False, config=_fast())
    assert r.status == "ok" and r.budget == "seconds=0.5"
    assert 0.5 <= r.metrics["train_time_s"] < 5.0


def test_measure_false_leaves_cost_metrics_null_with_the_reason() -> None:
    r = evaluate(TINY, "charlm", "steps=2", measure=False, config=_fast())
    for name in COST_METRICS:
        assert r.metrics[name] is None and r.null_reasons[name] == "not measured: measure=False"
    assert r.hardware["device_kind"] == "cpu"


@pytest.mark.slow
def test_measurement_comes_from_archbench_latency() -> None:
    r = evaluate(TINY.replace(quant="int8"), "charlm", "steps=2", config=_fast())
    assert r.status == "ok", r.reason
    assert r.metrics["latency_ms"] > 0 and r.metrics["params"] > 0 and r.metrics["model_bytes"] > 0
    assert r.metrics["energy_mj"] is None and r.null_reasons["energy_mj"]  # no NVML on a CPU
    assert r.hardware["torch_threads"] >= 1 and "cpu_model" in r.hardware
    json.dumps(r.to_row())


# ---- failures as data -------------------------------------------------------------------------


class _Raising(TaskData):
    seq_len = 8

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def train_batch(self, generator: torch.Generator, batch_size: int) -> Batch:
        raise self.exc

    def val_batches(self, batch_size: int):  # pragma: no cover - never reached
        return iter(())


@TASKS.register("test_raises")
@dataclass(frozen=True)
class RaisingTask(Digits):
    """Digits, except that drawing a training batch raises the configured exception."""

    name: ClassVar[str] = "test_raises"
    kind: str = "runtime"

    def prepare(self, arch: Architecture) -> TaskData:
        exc: BaseException = {
            "runtime": RuntimeError("boom\nsecond line"),
            "cuda_oom": torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 80.00 GiB"),
            "host_oom": MemoryError("cannot allocate"),
        }[self.kind]
        return _Raising(exc)


@pytest.mark.parametrize(
    ("kind", "status", "fragment"),
    [
        ("runtime", "failed", "RuntimeError: boom second line"),
        ("cuda_oom", "oom", "CUDA out of memory"),
        ("host_oom", "oom", "host out of memory"),
    ],
)
def test_exceptions_during_a_trial_become_statuses(kind: str, status: str, fragment: str) -> None:
    r = evaluate(TINY.replace(max_seq_len=64), RaisingTask(kind=kind), "steps=5", measure=False)
    assert r.status == status and fragment in r.reason and "\n" not in r.reason
    assert r.metrics["val_loss"] is None and r.null_reasons["val_loss"].startswith(status)
    assert r.status in STATUSES


@pytest.mark.parametrize(
    ("task", "arch", "fragment"),
    [
        ("recall", TINY.replace(vocab_size=100), "ConfigError: task recall needs vocab_size"),
        ("digits", TINY, "ConfigError: task digits needs max_seq_len >= 64"),
    ],
)
def test_architectures_a_task_cannot_use_are_failed_trials(task: str, arch: Architecture, fragment: str) -> None:
    r = evaluate(arch, task, "steps=5")
    assert r.status == "failed" and fragment in r.reason
    assert r.metrics["latency_ms"] is None and "status failed" in r.null_reasons["latency_ms"]


def test_caller_errors_raise_at_once() -> None:
    with pytest.raises(ConfigError, match="steps=N"):
        evaluate(TINY, "charlm", "epochs=3")
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        if torch.cuda.is_available():
            raise ConfigError("no CUDA GPU (skipped: this machine has one)")
        evaluate(TINY, "charlm", "steps=1", device="cuda")
    with pytest.raises(ConfigError, match="lr"):
        TrainConfig(lr=-1.0)


@pytest.mark.slow
def test_validate_quant_false_leaves_the_quantized_quality_null_with_the_reason() -> None:
    from archbench.trial import NOT_VALIDATED

    arch = Architecture(depth=1, width=32, heads=2, max_seq_len=32, quant="int8_weight_only")
    result = evaluate(arch, "charlm", "steps=2", measure=False, device="cpu", validate_quant=False)
    assert result.status == "ok" and result.metrics["val_loss"] is not None
    for name in ("val_loss_quant", "val_bpb_quant"):
        assert result.metrics[name] is None and result.null_reasons[name] == NOT_VALIDATED
    whole = evaluate(arch, "charlm", "steps=2", measure=False, device="cpu")
    assert whole.metrics["val_loss"] == result.metrics["val_loss"] and whole.metrics["val_loss_quant"] is not None


def _efforts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The effort of every real measurement evaluate() takes from here on."""
    from archbench.evaluators import measurement

    seen: list[str] = []
    real = measurement.measure

    def spy(*args: object, **kw: object) -> object:
        seen.append(kw["effort"].name)  # type: ignore[union-attr]
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(measurement, "measure", spy)
    return seen


@pytest.mark.slow
def test_a_quick_look_measures_with_the_screening_rule_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _efforts(monkeypatch)
    quick = evaluate(TINY, "charlm", "steps=2", config=_fast(), screen=True)
    full = evaluate(TINY, "charlm", "steps=2", config=_fast())
    assert seen == ["screen", "full"]
    assert (quick.settings.measure_effort, full.settings.measure_effort) == ("screen", "full")
    assert quick.status == full.status == "ok" and quick.metrics["latency_ms"] > 0
    # the screening rule: at least 10 calls, and its 1 s cap (a full measurement may time for 10 s)
    assert quick.metrics["latency_samples"] >= 10
    assert quick.hardware["latency_stop_reason"] in ("converged", "median_precise", "time_cap", "max_samples")


@pytest.mark.slow
def test_a_quick_look_never_rejects_on_a_timed_constraint_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _efforts(monkeypatch)
    timed = evaluate(TINY, "charlm", "steps=2", config=_fast(), screen=True, constraints="latency_ms<=1e-9")
    assert timed.status == "infeasible" and "latency_ms" in timed.reason
    assert seen == ["screen", "full"] and timed.settings.measure_effort == "full"  # judged on the full one
    seen.clear()
    sized = evaluate(TINY, "charlm", "steps=2", config=_fast(), screen=True, constraints="latency_ms<=1e-9, params<=10")
    assert sized.status == "infeasible" and seen == ["screen"]  # a size limit is exact on a quick look too
    seen.clear()
    loose = evaluate(TINY, "charlm", "steps=2", config=_fast(), screen=True, constraints="latency_ms<=1e9")
    assert loose.status == "ok" and seen == ["screen"]  # feasible: the quick look is the trial's measurement
