"""measure_model end to end on CPU: every metric present, every None with a reason; energy through the
fake NVML boundary; user errors as ConfigError."""

from __future__ import annotations

import pytest
import torch

from archbench.errors import ConfigError
from archbench.latency import ModelMeasurement, count_flops, measure_model, model_bytes
from archbench.latency.measure import METRIC_KEYS
from archbench.latency.nvml import NvmlGpu
from archbench.search_space import Architecture, build
from archbench.search_space.model import count_params
from archbench.search_space.quantize import quantize
from archbench.trial import METRICS, TrialResult
from tests.latency.fake_nvml import FakePynvml

ARCH = Architecture(depth=2, width=64, heads=4, vocab_size=256, max_seq_len=64)
QUICK = {"warmup_s": 0.05, "warmup_calls": 2}


def _rule() -> object:
    from archbench.latency import StopRule

    return StopRule(cv_target=0.2, min_samples=5, min_time_s=0.05, time_cap_s=1.0)


@pytest.fixture(scope="module")
def cpu_result() -> ModelMeasurement:
    return measure_model(build(ARCH), arch=ARCH, device="cpu", batch=2, seq_len=32, rule=_rule(), **QUICK)


def test_every_metric_is_a_known_column_and_every_null_has_a_reason(cpu_result: ModelMeasurement) -> None:
    assert set(cpu_result.metrics) == set(METRIC_KEYS) <= set(METRICS)
    nulls = {k for k, v in cpu_result.metrics.items() if v is None}
    assert nulls == {"energy_mj", "energy_above_idle_mj", "avg_power_w", "roofline_fraction", "compile_s"}
    assert cpu_result.metrics["prefill_ms"] == cpu_result.metrics["latency_ms"]
    assert all(cpu_result.null_reasons[k] for k in nulls)
    assert set(cpu_result.null_reasons) == nulls
    TrialResult(ARCH, task="t", status="ok", **{  # the evaluators' record accepts it as is
        "metrics": cpu_result.metrics, "null_reasons": cpu_result.null_reasons, "hardware": cpu_result.hardware
    })  # fmt: skip


def test_cpu_values_are_the_models(cpu_result: ModelMeasurement) -> None:
    m = cpu_result.metrics
    model = build(ARCH)
    assert m["params"] == count_params(model)
    assert m["model_bytes"] == model_bytes(model)
    assert m["flops"] == count_flops(ARCH, 2, 32).total
    assert 0 < m["latency_ms"] <= m["latency_p90_ms"]
    assert m["latency_samples"] == len(cpu_result.latency.samples_ms) >= 5
    assert m["peak_mem_mb"] > m["model_bytes"] / 2**20


def test_hardware_columns_say_where_and_how(cpu_result: ModelMeasurement) -> None:
    hw = cpu_result.hardware
    for key in ("device_name", "device_kind", "gpu_count", "gpu_memory_mb", "driver_version", "cuda_version",
                "torch_version", "archbench_version", "cpu_model", "hostname", "torch_threads"):  # fmt: skip
        assert key in hw, key
    assert hw["device_kind"] == "cpu" and hw["torch_threads"] == torch.get_num_threads()
    assert (hw["timing_method"], hw["measure_mode"], hw["exec_mode"]) == ("perf_counter", "prefill", "eager")
    assert hw["flex_compiled"] is True and hw["recompiles_in_window"] == 0  # the deployed (compiled) flex kernel


def test_quantized_model_is_measured_as_deployed() -> None:
    arch = ARCH.replace(quant="int8")
    q = quantize(build(arch), "int8", "cpu").model
    result = measure_model(q, arch=arch, seq_len=16, rule=_rule(), energy=False, memory=False, **QUICK)
    assert result.metrics["model_bytes"] == model_bytes(q) < model_bytes(build(ARCH))
    assert result.metrics["flops"] == count_flops(ARCH, 1, 16).total  # FLOPs are a property of the shape
    assert "turned off" in result.null_reasons["energy_mj"] and "turned off" in result.null_reasons["peak_mem_mb"]


@pytest.mark.slow
def test_energy_through_the_nvml_boundary() -> None:
    # A fake 300 W GPU: energy per inference = 300 W x window / inferences; idle is the same 300 W.
    gpu = NvmlGpu(0, FakePynvml(power_w=300.0))
    result = measure_model(
        build(ARCH), arch=ARCH, seq_len=16, rule=_rule(), gpu=gpu, energy_window_s=1.2, idle_s=0.3, memory=False,
        **QUICK,
    )  # fmt: skip
    window = result.energy
    assert window is not None and window.energy_source == "counter" and window.duration_s >= 1.2
    assert result.metrics["avg_power_w"] == pytest.approx(300.0, rel=0.1)
    n = window.energy_j * 1000 / result.metrics["energy_mj"]
    assert n == pytest.approx(round(n)) and n >= 1  # divided by a whole number of inferences
    assert abs(result.metrics["energy_above_idle_mj"]) < 0.15 * result.metrics["energy_mj"]
    assert result.hardware["energy_source"] == "counter" and result.hardware["throttled"] is False


def test_encoder_classifier_is_measured_too() -> None:
    model = build(ARCH, num_classes=3)
    result = measure_model(model, seq_len=16, rule=_rule(), energy=False, memory=False, **QUICK)
    assert result.metrics["flops"] == count_flops(ARCH, 1, 16, num_classes=3).total


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seq_len": 65}, "seq_len=65"),
        ({"batch": 0}, "batch=0"),
        ({"device": "mps"}, "cpu or cuda"),
    ],
)
def test_user_errors_are_config_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        measure_model(build(ARCH), arch=ARCH, **kwargs)  # type: ignore[arg-type]


def test_cuda_without_a_gpu_is_a_config_error() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        measure_model(build(ARCH), arch=ARCH, device="cuda")


def test_a_model_without_an_architecture_needs_one() -> None:
    with pytest.raises(ConfigError, match="needs the Architecture"):
        measure_model(torch.nn.Linear(2, 2))


@pytest.mark.slow
def test_training_step_memory_when_asked() -> None:
    model = build(ARCH)
    result = measure_model(
        model, arch=ARCH, seq_len=32, batch=2, rule=_rule(), energy=False, train_memory=True, **QUICK
    )
    train, infer = result.metrics["peak_train_mem_mb"], result.metrics["peak_mem_mb"]
    assert train is not None and infer is not None and train > infer  # activations kept for backward + grads
    assert all(p.grad is None for p in model.parameters()) and not model.training
    q = quantize(build(ARCH.replace(quant="int8")), "int8", "cpu").model
    quantized = measure_model(q, arch=ARCH, seq_len=16, rule=_rule(), energy=False, memory=False, train_memory=True)
    value, reason = quantized.metrics["peak_train_mem_mb"], quantized.null_reasons.get("peak_train_mem_mb")
    if value is None:  # a quantized layer without a backward: null, and the reason names the error
        assert reason is not None and reason.startswith("training step (forward + backward); ") and "Error: " in reason
    else:  # the deployed (quantized) model's own training step, measured
        assert value > 0 and reason is None


def test_training_step_memory_is_null_with_the_reason_when_the_step_fails() -> None:
    class NoBackward(torch.nn.Module):
        """The model's forward without autograd: its training step's backward raises."""

        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, idx: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return self.inner(idx)

    result = measure_model(NoBackward(build(ARCH)), arch=ARCH, seq_len=16, rule=_rule(), energy=False, memory=False,
                           train_memory=True)  # fmt: skip
    assert result.metrics["peak_train_mem_mb"] is None
    reason = result.null_reasons["peak_train_mem_mb"]
    assert reason.startswith("training step (forward + backward); ")
    assert "RuntimeError: element 0 of tensors does not require grad" in reason
    assert result.metrics["latency_ms"] is not None  # the rest of the measurement is unaffected


@pytest.mark.slow
def test_windowed_attention_is_timed_through_compiled_flex() -> None:
    """The deployed kernel: FlexAttention compiled in the untimed warm-up, never inside the window."""
    from archbench.latency.stats import StopRule
    from archbench.search_space import attention

    arch = Architecture(depth=1, width=32, heads=2, attention="sliding_window", window=8, max_seq_len=32)
    model = build(arch).eval()
    rule = StopRule(time_cap_s=1.0, min_time_s=0.1)
    m = measure_model(model, arch, "cpu", energy=False, memory=False, rule=rule)
    assert m.hardware["flex_compiled"] is True and m.hardware["recompiles_in_window"] == 0
    assert m.metrics["latency_ms"] is not None and m.metrics["latency_ms"] > 0
    assert attention._FLEX_COMPILE is None  # the process setting is restored afterwards
    eager = measure_model(model, arch, "cpu", energy=False, memory=False, rule=rule, flex_compile=False)
    assert eager.hardware["flex_compiled"] is False and eager.metrics["latency_ms"] is not None
