"""``evaluate(arch, task, budget) -> TrialResult``: train briefly, score, quantize, score again, measure.

Every outcome is a :class:`~archbench.trial.TrialResult`, never an exception, once the call's own
settings are valid (an unknown task or a malformed budget is the caller's error and raises
:class:`~archbench.errors.ConfigError` / ``UnknownNameError`` at once):

* ``unsupported``: the device cannot run the architecture's ``quant`` (decided before training), or
  quantization failed after training (the float metrics are kept);
* ``diverged``: a non-finite or exploding loss ended training early, or the validation loss is not finite;
* ``oom``: CUDA (or host) out of memory; memory is freed before returning;
* ``failed``: any other exception, recorded as ``Type: message``;
* ``infeasible``: with ``constraints``, a constraint on a cost metric (params, FLOPs, bytes, latency,
  energy, memory) is violated by the deployed form of the untrained model, which is measured first
  (seconds); the architecture is never trained and the reason names the violated constraint;
* ``ok``: quality, quantized quality, training cost, and the cost metrics of ``archbench.latency``.

Cost does not depend on the weights, so that first measurement is the trial's measurement: a feasible
architecture is not measured twice. ``feasible`` / ``violation`` judge every constraint, quality included.

``screen=True`` measures with :data:`~archbench.evaluators.measurement.SCREEN` (a quick look, for a
funnel's first rung). A candidate is never called ``infeasible`` on a quick look at a timed metric alone:
when only a timed constraint (latency, energy: not params, FLOPs, bytes or memory) fails on the screen,
the untrained model is measured again in full and judged on that.

``save_state`` / ``resume_from`` (``train.schedule=wsd`` only): the run writes its state where its
cool-down begins to ``save_state``, and starts from the state in ``resume_from`` when there is one it can
continue (:func:`~archbench.evaluators.trainer.can_resume`), else from scratch, which trains the same model
(``train_resumed_steps`` says which: the steps that came from the state). Every row records how it was run
(:class:`~archbench.run_settings.RunSettings`: the whole training recipe, the deployment measured and the
measurement's effort), apart from the hardware fingerprint.

``save_weights`` (a directory or a ``.safetensors`` file): the trained float model's weights are kept
there (:func:`archbench.interop.weights.save_trained`), after its validation and before quantization, and
the row records the path (``weights``).

A metric that could not be obtained is None with its reason in ``null_reasons``.
"""

from __future__ import annotations

import gc
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from archbench.constraints import Constraint, ConstraintsArg, judge, parse_constraints, pretrain
from archbench.deploy import Deploy
from archbench.errors import ConfigError
from archbench.evaluators import measurement
from archbench.evaluators.budget import DEFAULT_BUDGET, Budget
from archbench.evaluators.measurement import (
    FULL,
    SCREEN,
    UNTIMED_METRICS,
    Effort,
    Measured,
    fingerprint,
    not_measured,
    one_line,
)
from archbench.evaluators.quality import validate
from archbench.evaluators.task import Task, get_task
from archbench.evaluators.trainer import TrainConfig, can_resume, train
from archbench.metrics import of_column
from archbench.run_settings import RunSettings
from archbench.search_space.architecture import Architecture
from archbench.search_space.quantize import quantize, unsupported_reason
from archbench.trial import NOT_VALIDATED, TrialResult, utc_now


@dataclass
class Outcome:
    """Mutable scratch record of one run (turned into the frozen TrialResult at the end)."""

    status: str = "ok"
    reason: str = ""
    metrics: dict[str, float | int | None] = field(default_factory=dict)
    null_reasons: dict[str, str] = field(default_factory=dict)
    deployed: nn.Module | None = None
    weights: str | None = None  # where the trained float weights were kept

    def null(self, names: tuple[str, ...] | list[str], reason: str) -> None:
        """Each of ``names`` not obtained is None with ``reason`` (unless it already has a reason)."""
        for name in names:
            if self.metrics.get(name) is None:
                self.metrics[name] = None
                self.null_reasons.setdefault(name, reason)


def resolve_device(device: torch.device | str | None) -> torch.device:
    """``device``, or the first CUDA GPU when there is one, else the CPU; a missing GPU is a ConfigError."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"device {device!r}: expected cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device}: torch sees no CUDA GPU on this machine (use cpu)")
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"device {device}: archbench evaluates on cpu or cuda")
    return dev


def _quant_names(task: Task) -> tuple[str, ...]:
    return tuple(f"{m}_quant" for m in task.metric_names)


def _finite(metrics: Mapping[str, float]) -> bool:
    return all(math.isfinite(v) for v in metrics.values())


def _run(
    arch: Architecture,
    task: Task,
    budget: Budget,
    config: TrainConfig,
    seed: int,
    device: torch.device,
    validate_quant: bool = True,
    save_state: Path | None = None,
    resume_from: Path | None = None,
    save_weights: Path | None = None,
) -> Outcome:
    """Train, validate, quantize and validate again (unless ``validate_quant`` is False: the quantized
    model is still built, for measurement, but not scored); exceptions propagate to :func:`evaluate`."""
    out = Outcome()
    batch_size = config.batch_size or task.batch_size
    cuda = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):  # the caller's global RNG state is left as it was
        torch.manual_seed(seed)
        data = task.prepare(arch)
        model = task.build(arch).to(device)
        generator = torch.Generator().manual_seed(seed)
        state = _load_state(resume_from, config, budget.total_steps(batch_size * data.seq_len), device)
        saver = (lambda st: _save_state(st, save_state)) if save_state is not None else None
        trained = train(
            model, data, budget, config, batch_size=batch_size, generator=generator, device=device,
            resume=state, on_snapshot=saver,
        )  # fmt: skip
    out.metrics["train_time_s"] = trained.seconds
    out.metrics["train_tokens_per_s"] = trained.tokens_per_s
    out.metrics["train_resumed_steps"] = trained.resumed_steps
    if trained.tokens_per_s is None:
        out.null(["train_tokens_per_s"], "no training time elapsed")
    quality_names = list(task.metric_names) + list(_quant_names(task))
    if trained.diverged:
        out.status, out.reason = "diverged", trained.diverged
        out.null(quality_names, f"diverged: {trained.diverged}")
        return out
    float_metrics = validate(model, task, data, device, batch_size)
    if not _finite(float_metrics):
        out.status, out.reason = "diverged", f"validation loss is {float_metrics['val_loss']} after training"
        out.null(quality_names, f"diverged: {out.reason}")
        return out
    out.metrics.update(float_metrics)
    if save_weights is not None:  # the trained float model, before any quantization
        from archbench.interop.weights import save_trained

        kept = save_trained(
            model, arch, save_weights, task=task.name, budget=str(budget), seed=seed, num_classes=task.num_classes
        )
        out.weights = str(kept)
    if arch.quant == "fp32":  # the deployed model is the float model: same numbers, not recomputed
        out.metrics.update({f"{k}_quant": v for k, v in float_metrics.items()})
        out.deployed = model
        return out
    quantized = quantize(model, arch.quant, device)
    del model
    if not quantized.ok:
        out.status, out.reason = "unsupported", quantized.reason
        out.null(_quant_names(task), f"unsupported: {quantized.reason}")
        return out
    if not validate_quant:
        out.null(_quant_names(task), NOT_VALIDATED)
        out.deployed = quantized.model
        return out
    try:
        quant_metrics = validate(quantized.model, task, data, device, batch_size)
    except torch.OutOfMemoryError:
        raise
    except Exception as exc:  # the float metrics stay: only the deployed model failed
        out.status, out.reason = "failed", f"{arch.quant} model: {one_line(exc)}"
        out.null(_quant_names(task), out.reason)
        return out
    if not _finite(quant_metrics):
        out.status = "diverged"
        out.reason = f"{arch.quant} model: validation loss is {quant_metrics['val_loss']} (the float model's is finite)"
        out.null(_quant_names(task), out.reason)
        return out
    out.metrics.update({f"{k}_quant": v for k, v in quant_metrics.items()})
    out.deployed = quantized.model
    return out


def _load_state(path: Path | None, config: TrainConfig, total: int | None, device: torch.device) -> Any:
    """The training state in ``path`` when this run can continue it; None (train from scratch) otherwise."""
    if path is None or not path.exists():
        return None
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception:  # a torn or foreign file: from scratch trains the same model
        return None
    return state if isinstance(state, dict) and can_resume(state, config, total) is None else None


def _save_state(state: Mapping[str, Any], path: Path) -> None:
    """Write ``state`` atomically (a crash leaves the old file or the new one, never half of one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(dict(state), tmp)
    os.replace(tmp, path)


def _free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def evaluate(
    arch: Architecture | Mapping[str, Any],
    task: str | Task = "charlm",
    budget: str | Budget = DEFAULT_BUDGET,
    *,
    seed: int = 0,
    device: torch.device | str | None = None,
    study: str = "",
    trial: int | None = None,
    measure: bool = True,
    config: TrainConfig | None = None,
    constraints: ConstraintsArg = None,
    deploy: Deploy | None = None,
    validate_quant: bool = True,
    screen: bool = False,
    save_state: str | Path | None = None,
    resume_from: str | Path | None = None,
    save_weights: str | Path | None = None,
) -> TrialResult:
    """Train ``arch`` on ``task`` for ``budget``, then score and measure it; see the module docstring.

    ``measure=False`` skips ``archbench.latency`` (its metrics are None with the reason
    ``"not measured: measure=False"``). ``config`` holds the optimiser settings (default
    :class:`TrainConfig`). ``constraints`` (``"latency_ms<=20, params<=1e6"``): see the module docstring.
    ``deploy`` says which modes (prefill, decode, generate) are measured at what shape; by default
    prefill, plus the modes the constraints need; each of its named workloads is measured too, its metrics
    as ``metric@name`` (a constraint naming a workload it lacks is a ConfigError). ``validate_quant=False``
    leaves the quantized model's quality (``*_quant``) null with the reason (a funnel's screening rungs,
    which rank on other metrics).
    ``screen=True`` measures quickly; ``save_state`` / ``resume_from`` / ``save_weights``: see the module
    docstring.
    """
    started = utc_now()
    if not isinstance(arch, Architecture):
        arch = Architecture.from_dict(arch)
    task_obj = get_task(task)
    budget_obj = Budget.parse(budget)
    config = config or TrainConfig()
    if config.schedule == "wsd" and budget_obj.unit == "seconds":
        raise ConfigError(f"train.schedule=wsd needs a budget of steps or tokens, not {budget_obj}")
    dev = resolve_device(device)
    cons = parse_constraints(constraints)
    settings = RunSettings.planned(config, deploy, (c.metric for c in cons), measure, screen)
    deploy = settings.deploy or Deploy()  # what is measured (with measure=False: nothing)
    all_quality = (*task_obj.metric_names, *_quant_names(task_obj), *measurement.TRAINING_METRICS)
    save_path = Path(save_state) if save_state is not None else None
    resume_path = Path(resume_from) if resume_from is not None else None

    reason = unsupported_reason(arch.quant, dev)
    if reason is not None:
        out = Outcome("unsupported", f"quant {arch.quant}: {reason}")
        out.null(all_quality, f"not trained: {out.reason}")
        measured = not_measured(f"not measured: {out.reason}", fingerprint(dev))
        return trial_result(arch, task_obj, budget_obj, seed, study, trial, started, out, measured, dev, settings)

    effort = SCREEN if screen else FULL
    premeasured: Measured | None = None
    if pretrain(cons):
        premeasured = measure_untrained(arch, task_obj, dev, measure, deploy, effort)
        feasible, _, why = judge(premeasured.metrics, pretrain(cons))
        if feasible is False and screen and judge(premeasured.metrics, _untimed(pretrain(cons)))[0] is not False:
            premeasured = measure_untrained(arch, task_obj, dev, measure, deploy, FULL)  # a quick look cannot reject
            feasible, _, why = judge(premeasured.metrics, pretrain(cons))
        if feasible is False:
            out = Outcome("infeasible", why)
            out.null(all_quality, f"not trained: infeasible: {why}")
            return trial_result(
                arch, task_obj, budget_obj, seed, study, trial, started, out, premeasured, dev, settings, cons
            )

    try:
        weights_to = Path(save_weights) if save_weights is not None else None
        out = _run(arch, task_obj, budget_obj, config, seed, dev, validate_quant, save_path, resume_path, weights_to)
    except torch.OutOfMemoryError as exc:
        out = Outcome("oom", f"CUDA out of memory: {one_line(exc)}")
    except MemoryError as exc:
        out = Outcome("oom", f"host out of memory: {one_line(exc)}")
    except Exception as exc:
        out = Outcome("failed", one_line(exc))
    if out.status == "oom":
        _free_memory()  # the failed run's tensors died with its frames; hand the cache back
    out.null(all_quality, f"{out.status}: {out.reason}")

    if premeasured is not None and out.deployed is not None:
        measured = premeasured  # the same deployed shape and dtype: measuring again would repeat it
    else:
        why_not = f"status {out.status}"
        measured = measurement.measure(out.deployed, arch, dev, measure, why_not=why_not, deploy=deploy, effort=effort)
    out.deployed = None
    return trial_result(arch, task_obj, budget_obj, seed, study, trial, started, out, measured, dev, settings, cons)


def _untimed(constraints: tuple[Constraint, ...]) -> tuple[Constraint, ...]:
    """The constraints on metrics that do not depend on how long the measurement looks."""
    return tuple(c for c in constraints if getattr(of_column(c.metric), "name", None) in UNTIMED_METRICS)


def measure_untrained(
    arch: Architecture, task: Task, device: torch.device, enabled: bool, deploy: Deploy, effort: Effort = FULL
) -> Measured:
    """Cost metrics of the deployed form of the untrained model (cost does not depend on the weights): a
    constraint's early verdict here, and the whole trial of :mod:`archbench.evaluators.cost`."""
    try:
        model = task.build(arch).to(device).eval()
        deployed = quantize(model, arch.quant, device, copy_model=False)
    except Exception as exc:  # judged unknown, not infeasible: training will meet the same error
        return not_measured(f"not measured before training: {one_line(exc)}", fingerprint(device))
    if not deployed.ok:
        return not_measured(f"not measured before training: {deployed.reason}", fingerprint(device))
    measured = measurement.measure(deployed.model, arch, device, enabled, deploy=deploy, effort=effort)
    if not enabled:  # counting needs no timing: params are known from the shape alone
        from archbench.search_space.model import count_params

        metrics = {**measured.metrics, "params": count_params(deployed.model)}
        reasons = {k: v for k, v in measured.null_reasons.items() if k != "params"}
        measured = Measured(metrics, reasons, measured.hardware, measured.effort)
    return measured


def trial_result(
    arch: Architecture,
    task: Task,
    budget: Budget | str,
    seed: int,
    study: str,
    trial: int | None,
    started: str,
    out: Outcome,
    measured: Measured,
    device: torch.device,
    settings: RunSettings,
    constraints: tuple[Constraint, ...] = (),
) -> TrialResult:
    metrics = {**out.metrics, **measured.metrics}
    null_reasons = {**out.null_reasons, **measured.null_reasons}
    null_reasons = {k: v for k, v in null_reasons.items() if metrics.get(k) is None}
    hardware = dict(measured.hardware) or {"device_kind": device.type}
    feasible, violation, _ = judge(metrics, constraints)
    try:
        data = task.data_columns()
    except Exception:  # data that cannot be read failed the trial already; its row says so, not this
        data = {"data_digest": None}
    return TrialResult(
        arch=arch,
        task=task.name,
        status=out.status,
        reason=out.reason,
        study=study,
        trial=trial,
        budget=str(budget),
        seed=seed,
        metrics=metrics,
        null_reasons=null_reasons,
        hardware=hardware,
        settings=settings.measured(measured.effort),
        data=data,
        started_at=started,
        feasible=feasible,
        violation=violation,
        weights=out.weights,
    )
