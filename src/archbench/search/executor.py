"""Ray as the executor: start or join a cluster, submit one trial per task, collect what finished.

Each trial is one Ray task holding one GPU where the cluster has GPUs (so no two measurements share a
device) and ``cpus_per_trial`` CPUs otherwise. A task whose evaluator does not measure (its declared
``measure`` is false: the middle rungs of a multi-fidelity funnel, ``evaluator_options.measure=false``, the
sleep and lookup evaluators) holds ``train_gpu_fraction`` of a GPU instead, so training may share a GPU
when the user says so; a task that measures always holds a whole one. Ray retries a task whose worker
process or node died (``max_retries``); an evaluation that fails by itself returns a failed TrialResult
and is never retried. The ``inline`` executor runs trials in the driver process, one at a time (for
lookup benchmarks and debugging).

Waiting is where the driver notices that things went wrong. A stop signal (:mod:`archbench.search.signals`)
interrupts a wait; the wait then hands over what has finished, and the next wait or submit raises
:class:`~archbench.search.signals.Interrupted`. While it waits, the driver also asks the cluster's GCS
every :data:`PROBE_EVERY_S` for its live nodes (one RPC with a timeout, so the question itself never
blocks): a GCS that has not answered for ``lost_after_s`` ends the search with :class:`ClusterLost`, as
does a cluster whose live nodes, once able to run a trial, have stayed too small for one that long (the
only GPU node lost; a cluster still scaling up is left alone), instead of Ray's own answers (the driver
killed after 60 s without its GCS; a task pending forever).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archbench.errors import ConfigError
from archbench.search.evaluator import TrialEvaluator
from archbench.search.signals import Interrupted, StopSignals
from archbench.search.strategy import Suggestion
from archbench.trial import TrialResult

PROBE_EVERY_S = 1.0  # how often a waiting driver asks the GCS for the live nodes
PROBE_TIMEOUT_S = 1.0  # how long one such question may take
MIN_LOST_AFTER_S = 2.0


def ray_gives_up_after_s() -> float:
    """How long Ray's core lets a driver live without its GCS before ending the process (Ray's
    ``gcs_rpc_server_reconnect_timeout_s``, 60 s unless set in the environment)."""
    try:
        return float(os.environ.get("RAY_gcs_rpc_server_reconnect_timeout_s", "60"))  # noqa: SIM112 (Ray's name)
    except ValueError:
        return 60.0


class ClusterLost(RuntimeError):
    """The Ray cluster went away, or has no live node left that can run a trial (the message says which)."""


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
    lost_after_s: float = 30.0  # a GCS silent this long, or no live node fit for a trial this long, ends the search

    def __post_init__(self) -> None:
        f = self.train_gpu_fraction
        if isinstance(f, bool) or not isinstance(f, int | float) or not 0 < f <= 1:
            raise ConfigError(f"ray.train_gpu_fraction={f!r}: must be a number in (0, 1] (1: a whole GPU)")
        lost, limit = self.lost_after_s, ray_gives_up_after_s()
        if isinstance(lost, bool) or not isinstance(lost, int | float) or not MIN_LOST_AFTER_S <= lost < limit:
            raise ConfigError(
                f"ray.lost_after_s={lost!r}: must be a number of seconds from {MIN_LOST_AFTER_S:g} to below "
                f"{limit:g} (Ray itself ends a driver whose GCS has been gone that long)"
            )


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
    """Submit trials as Ray tasks and wait for any to finish, watching the cluster while waiting."""

    def __init__(self, config: RayConfig, stop: StopSignals | None = None) -> None:
        if config.address:
            _token_auth_like_ray_start()  # before Ray is imported: it reads the mode once
        import ray

        self.config = config
        self.stop = stop or StopSignals()
        self._ray = ray
        self._started = False
        self._saved_stderr: int | None = None
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
            except SystemExit as exc:  # ray.init's own SIGTERM handler, before ours is installed
                if exc.code == signal.SIGTERM:
                    raise Interrupted(signal.SIGTERM) from None
                raise
            self._started = True
        self.stop.install()  # after ray.init: it replaces Ray's handlers (see archbench.search.signals)
        self.gcs_address, self._gcs = _gcs_of(ray)
        self._probed = self._answered = time.monotonic()
        self._starved_since: float | None = None
        self._had_room = False  # a live node once fitted a trial (a cluster still scaling up is not starved)
        self._drained = False
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

    @property
    def where(self) -> str:
        """The cluster, as the user will recognise it."""
        if not self.config.address:
            return f"the local Ray instance (GCS {self.gcs_address})"
        named = "" if self.config.address in (self.gcs_address, "auto") else f", ray.address={self.config.address}"
        return f"the Ray cluster at {self.gcs_address}{named}"

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
        self.stop.check()
        return self._remote.options(**self.options(evaluator.measure)).remote(evaluator, suggestion, study)

    def run_once(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on a worker with the resources a trial gets (to read the trials' hardware)."""
        ref = self._ray.remote(_call).options(**self.options()).remote(fn)
        while not self.wait([ref], timeout=1.0):
            pass
        return self._ray.get(ref)

    def wait(self, refs: list[Any], timeout: float) -> list[Any]:
        """The refs that have finished, waiting up to ``timeout`` for one; raises :class:`ClusterLost` (see
        the module docstring) and, after a stop signal, hands over what finished once, then raises
        :class:`~archbench.search.signals.Interrupted`."""
        if self.stop.signum is not None:
            return self._drain(refs)
        try:
            with self.stop.waiting():
                ready, _ = self._ray.wait(refs, num_returns=1, timeout=timeout)
        except Interrupted:
            return self._drain(refs)
        except SystemError:
            # The handler's Interrupted raised inside Ray's native wait comes back wrapped ("returned a
            # result with an exception set"); without a signal it is a real error.
            if self.stop.signum is None:
                raise
            return self._drain(refs)
        if ready:  # take everything that is already done, not just the first
            more, _ = self._ray.wait(refs, num_returns=len(refs), timeout=0)
            ready = list(dict.fromkeys([*ready, *more]))
        self._watch(pending=len(ready) < len(refs))
        return ready

    def _drain(self, refs: list[Any]) -> list[Any]:
        """After a stop signal: what has finished, once (so that it is recorded); then stop."""
        if self._drained:
            self.stop.check()
        self._drained = True
        self._mute_native_logs()
        done, _ = self._ray.wait(refs, num_returns=len(refs), timeout=0) if refs else ([], [])
        return list(done)

    def _watch(self, pending: bool) -> None:
        """Ask the GCS for the live nodes (at most every PROBE_EVERY_S); raise :class:`ClusterLost` when it
        has not answered for ``lost_after_s``, or when no live node could run a pending trial for that long."""
        now = time.monotonic()
        if self._gcs is None or now - self._probed < PROBE_EVERY_S:
            return
        self._probed = now
        lost_after = self.config.lost_after_s
        try:
            nodes = self._gcs.get_all_node_info(timeout=PROBE_TIMEOUT_S, state_filter=_ALIVE)
        except self._ray.exceptions.RpcError:
            silent = time.monotonic() - self._answered
            if silent >= lost_after:
                raise ClusterLost(f"lost {self.where}: its GCS has not answered for {silent:.0f} s") from None
            return
        self._answered = time.monotonic()
        totals = [dict(n.resources_total) for n in nodes.values()]
        room = any(self._fits(t) for t in totals)
        self._had_room |= room
        if room or not pending or not self._had_room:
            self._starved_since = None
            return
        self._starved_since = self._starved_since or now
        if now - self._starved_since >= lost_after:
            raise ClusterLost(
                f"no live node of {self.where} can run a trial ({self._need()}) and none has for "
                f"{now - self._starved_since:.0f} s (live nodes: {_describe(totals)})"
            )

    def _requirement(self) -> dict[str, float]:
        """The least a trial needs of one node (a training-only task's share where GPUs are used)."""
        opts = self.options(measures=False)
        need = {"CPU": float(opts.get("num_cpus") or 0), "GPU": float(opts.get("num_gpus") or 0)}
        if self.config.accelerator_type:
            need[f"accelerator_type:{self.config.accelerator_type}"] = 0.001
        return {k: v for k, v in need.items() if v > 0}

    def _fits(self, total: dict[str, float]) -> bool:
        return all(total.get(k, 0.0) >= v for k, v in self._requirement().items())

    def _need(self) -> str:
        return "needs " + ", ".join(f"{k} {v:g}" for k, v in self._requirement().items())

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

    def _mute_native_logs(self) -> None:
        """From a stop signal until Ray is shut down, Ray's native code writes errors about the tasks it
        abandons (``task_manager.cc ... Failed to push error to driver``) straight to file descriptor 2:
        they go to ``ray_stop_stderr.log`` in the temporary directory instead, so that a stopped search
        ends with its one line."""
        if self._saved_stderr is not None:
            return
        import tempfile

        sys.stderr.flush()
        self._saved_stderr = os.dup(2)
        log = os.open(Path(tempfile.gettempdir()) / "ray_stop_stderr.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        os.dup2(log, 2)
        os.close(log)
        self.stop.stderr_fd = self._saved_stderr  # a second signal's line still reaches the terminal

    def shutdown(self) -> None:
        try:
            if self._started:
                self._ray.shutdown()
        finally:
            if self._saved_stderr is not None:
                os.dup2(self._saved_stderr, 2)
                os.close(self._saved_stderr)
                self._saved_stderr, self.stop.stderr_fd = None, 2


_ALIVE = 0  # GcsNodeInfo.ALIVE (ray.core.generated.gcs_pb2)


def _gcs_of(ray: Any) -> tuple[str, Any]:
    """The GCS address and the driver's GCS client, whose RPCs take a timeout (``ray.nodes()`` has none).
    Neither exists for a Ray Client driver (``ray://``): there the watch is off and Ray's own rules apply."""
    try:
        return ray.get_runtime_context().gcs_address, ray._private.worker.global_worker.gcs_client
    except Exception:
        return "?", None


def _describe(totals: list[dict[str, float]]) -> str:
    if not totals:
        return "none"
    shown = [", ".join(f"{k} {v:g}" for k, v in sorted(t.items()) if k in ("CPU", "GPU")) or "no CPU" for t in totals]
    return "; ".join(shown)


class InlineExecutor:
    """Run each trial in the driver process when submitted (no Ray)."""

    gpus = 0

    def __init__(self, config: RayConfig, stop: StopSignals | None = None) -> None:
        self.config = config
        self.stop = stop or StopSignals()
        self.stop.install()
        self._results: dict[int, TrialResult | BaseException] = {}
        self._next = 0

    def slots(self) -> int:
        return 1

    def submit(self, evaluator: TrialEvaluator, suggestion: Suggestion, study: str) -> int:
        key = self._next
        self._next += 1
        try:
            with self.stop.waiting():  # a stop signal ends the trial running here; it runs again on resume
                self._results[key] = _run_trial(evaluator, suggestion, study)
        except Exception as exc:
            self._results[key] = exc
        return key

    def run_once(self, fn: Callable[[], Any]) -> Any:
        with self.stop.waiting():
            return fn()

    def wait(self, refs: list[Any], timeout: float) -> list[Any]:
        return list(refs)

    def get_many(self, refs: list[int]) -> list[TrialResult | BaseException]:
        return [self._results.pop(ref) for ref in refs]

    def shutdown(self) -> None:
        pass


def make_executor(config: RayConfig, stop: StopSignals | None = None) -> RayExecutor | InlineExecutor:
    """The executor ``config`` names; it installs ``stop``'s signal handlers once Ray is up."""
    if config.executor == "inline":
        return InlineExecutor(config, stop)
    if config.executor != "ray":
        raise ConfigError(f"ray.executor={config.executor!r}: must be ray or inline")
    return RayExecutor(config, stop)
