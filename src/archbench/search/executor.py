"""Ray as the executor: start or join a cluster, submit one trial per task, collect what finished.

Each trial is one Ray task holding one GPU where the cluster has GPUs (so no two measurements share a
device) and ``cpus_per_trial`` CPUs otherwise. A task whose evaluator does not measure (its declared
``measure`` is false: the middle rungs of a multi-fidelity funnel, ``evaluator_options.measure=false``, the
sleep and lookup evaluators) holds ``train_gpu_fraction`` of a GPU instead, so training may share a GPU
when the user says so; a task that measures always holds a whole one. Ray retries a task whose worker
process or node died (``max_retries``); an evaluation that fails by itself returns a failed TrialResult
and is never retried. The ``inline`` executor runs trials in the driver process, one at a time (for
lookup benchmarks and debugging).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from archbench.errors import ConfigError
from archbench.search.evaluator import TrialEvaluator
from archbench.search.strategy import Suggestion
from archbench.trial import TrialResult


@dataclass(frozen=True)
class RayConfig:
    """``address`` None starts a local instance; ``"auto"`` or ``"ray://host:port"`` joins a cluster."""

    address: str | None = None
    num_cpus: int | None = None  # local instance only; None: every core
    num_gpus: int | None = None  # local instance only; None: every GPU
    cpus_per_trial: int = 1
    max_retries: int = 2  # retries of a trial whose worker or node died
    executor: str = "ray"  # "ray" or "inline"
    accelerator_type: str | None = None  # e.g. "H100": trials run only on nodes with that GPU type
    train_gpu_fraction: float = 1.0  # GPUs a training-only task holds (measuring tasks always hold 1)

    def __post_init__(self) -> None:
        f = self.train_gpu_fraction
        if isinstance(f, bool) or not isinstance(f, int | float) or not 0 < f <= 1:
            raise ConfigError(f"ray.train_gpu_fraction={f!r}: must be a number in (0, 1] (1: a whole GPU)")


def _call(fn: Callable[[], Any]) -> Any:
    return fn()


def _run_trial(evaluator: TrialEvaluator, suggestion: Suggestion, study: str) -> TrialResult:
    return evaluator(suggestion.arch, study=study, trial=suggestion.number)


def _token_auth_like_ray_start() -> None:
    """Join a cluster the way ``ray start --head`` made it: Ray 2.60's head turns token authentication on
    when a token exists (``~/.ray/auth_token``) and ``RAY_AUTH_MODE`` is unset, but a driver joining it
    does not, and is then refused (InvalidAuthToken). Mirror the head's rule; an explicit RAY_AUTH_MODE wins."""
    if "RAY_AUTH_MODE" in os.environ:
        return
    path = os.environ.get("RAY_AUTH_TOKEN_PATH") or os.path.expanduser("~/.ray/auth_token")
    if os.environ.get("RAY_AUTH_TOKEN") or os.path.isfile(path):
        os.environ["RAY_AUTH_MODE"] = "token"


class RayExecutor:
    """Submit trials as Ray tasks and wait for any to finish."""

    def __init__(self, config: RayConfig) -> None:
        if config.address:
            _token_auth_like_ray_start()  # before Ray is imported: it reads the mode once
        import ray

        self.config = config
        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            kwargs: dict[str, Any] = {
                "include_dashboard": False,
                "logging_level": logging.ERROR,
                "log_to_driver": False,
                "configure_logging": True,
            }
            if config.address:
                kwargs["address"] = config.address
            else:
                # "local": always a fresh instance. A bare ray.init() would join whatever cluster a past
                # `ray start` left recorded in /tmp/ray/ray_current_cluster, and hang if it has died.
                kwargs["address"] = "local"
                kwargs["num_cpus"] = config.num_cpus
                kwargs["num_gpus"] = config.num_gpus
            try:
                ray.init(**kwargs)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                where = config.address or "a local instance"
                raise ConfigError(f"cannot start or join Ray at {where}: {' '.join(str(exc).split())[:300]}") from None
            self._started = True
        resources = ray.cluster_resources()
        self.gpus = int(resources.get("GPU", 0))
        self.cpus = int(resources.get("CPU", 0))
        if config.accelerator_type:
            known = sorted(k.split(":", 1)[1] for k in resources if k.startswith("accelerator_type:"))
            if config.accelerator_type not in known:
                self.shutdown()
                raise ConfigError(
                    f"ray.accelerator_type={config.accelerator_type}: no node of this cluster has it "
                    f"(accelerator types here: {', '.join(known) or 'none'})"
                )
            # Only the nodes of that type count as slots.
            nodes = [
                n
                for n in ray.nodes()
                if n.get("Alive") and f"accelerator_type:{config.accelerator_type}" in n["Resources"]
            ]
            self.gpus = int(sum(n["Resources"].get("GPU", 0) for n in nodes))
        self._remote = ray.remote(_run_trial)

    def slots(self) -> int:
        """How many trials can run at once on this cluster."""
        if self.gpus:
            return self.gpus
        return max(1, self.cpus // max(1, self.config.cpus_per_trial))

    def options(self, measures: bool = True) -> dict[str, Any]:
        """Ray task options: a whole GPU for a task that measures, ``train_gpu_fraction`` for one that only trains."""
        opts: dict[str, Any] = {"max_retries": self.config.max_retries, "retry_exceptions": False}
        if self.config.accelerator_type:
            opts["accelerator_type"] = self.config.accelerator_type
        if self.gpus:
            opts.update(num_gpus=1 if measures else self.config.train_gpu_fraction, num_cpus=self.config.cpus_per_trial)
        else:
            opts.update(num_cpus=self.config.cpus_per_trial)
        return opts

    def submit(self, evaluator: TrialEvaluator, suggestion: Suggestion, study: str) -> Any:
        return self._remote.options(**self.options(evaluator.measure)).remote(evaluator, suggestion, study)

    def run_once(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on a worker with the resources a trial gets (to read the trials' hardware)."""
        return self._ray.get(self._ray.remote(_call).options(**self.options()).remote(fn))

    def wait(self, refs: list[Any], timeout: float) -> list[Any]:
        ready, _ = self._ray.wait(refs, num_returns=1, timeout=timeout)
        if ready:  # take everything that is already done, not just the first
            more, _ = self._ray.wait(refs, num_returns=len(refs), timeout=0)
            ready = list(dict.fromkeys([*ready, *more]))
        return ready

    def get_many(self, refs: list[Any]) -> list[TrialResult | BaseException]:
        """Each finished task's TrialResult, or the Ray error that ended it (worker/node lost after retries)."""
        try:
            return list(self._ray.get(refs))  # one round trip for the common case
        except self._ray.exceptions.RayError:
            return [self.get(ref) for ref in refs]

    def get(self, ref: Any) -> TrialResult | BaseException:
        try:
            return self._ray.get(ref)
        except self._ray.exceptions.RayError as exc:
            return exc

    def shutdown(self) -> None:
        if self._started:
            self._ray.shutdown()


class InlineExecutor:
    """Run each trial in the driver process when submitted (no Ray)."""

    gpus = 0

    def __init__(self, config: RayConfig) -> None:
        self.config = config
        self._results: dict[int, TrialResult | BaseException] = {}
        self._next = 0

    def slots(self) -> int:
        return 1

    def submit(self, evaluator: TrialEvaluator, suggestion: Suggestion, study: str) -> int:
        key = self._next
        self._next += 1
        try:
            self._results[key] = _run_trial(evaluator, suggestion, study)
        except Exception as exc:
            self._results[key] = exc
        return key

    def run_once(self, fn: Callable[[], Any]) -> Any:
        return fn()

    def wait(self, refs: list[Any], timeout: float) -> list[Any]:
        return list(refs)

    def get_many(self, refs: list[int]) -> list[TrialResult | BaseException]:
        return [self._results.pop(ref) for ref in refs]

    def shutdown(self) -> None:
        pass


def make_executor(config: RayConfig) -> RayExecutor | InlineExecutor:
    if config.executor == "inline":
        return InlineExecutor(config)
    if config.executor != "ray":
        raise ConfigError(f"ray.executor={config.executor!r}: must be ray or inline")
    return RayExecutor(config)
