"""The trial-evaluator contract: what the search loop needs of whatever runs one trial.

The loop knows an evaluator only through :class:`TrialEvaluator`, never by its name and never by probing
for attributes. Every entry of :data:`~archbench.search.trial_evaluators.TRIAL_EVALUATORS` keeps it, and
``tests/conformance/test_trial_evaluators.py`` checks every entry, so a newly registered evaluator is
tested the moment it is registered.

An evaluator is a frozen, picklable value: it travels to a Ray worker with each trial, and each variant
(another rung's budget, a continued rung) is a new value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable

if TYPE_CHECKING:
    from archbench.run_settings import RunSettings
    from archbench.search.config import SearchConfig
    from archbench.search_space.architecture import Architecture
    from archbench.search_space.space import SearchSpace
    from archbench.trial import TrialResult


@dataclass(frozen=True)
class Probe:
    """What a worker reports before the first trial: the hardware fingerprint the evaluator's rows will
    carry (``device_name`` and ``device_kind`` at least) and, for an evaluator that builds models, why each
    quantization cannot run on its device (``{quant: reason, or None where it runs}``)."""

    hardware: Mapping[str, Any]
    quants: Mapping[str, str | None] | None = None


@runtime_checkable
class TrialEvaluator(Protocol):
    """``evaluator(arch, study, trial) -> TrialResult`` in a worker, and what the driver asks of it."""

    task: str  # the task its rows are recorded under
    budget: str  # its rows' budget
    measure: bool  # it measures cost on its device: its Ray task holds a whole GPU (training only: a fraction)
    cacheable: bool  # its rows may stand in for a later trial with the same cache key (real runs only)
    quality: bool  # its rows report quality (metrics.TRAINED_ONLY): False, check() refuses a study ranking on it

    @classmethod
    def check(cls, config: SearchConfig) -> None:
        """Refuse, in one line (:class:`~archbench.errors.ConfigError`), search settings it cannot run (an
        evaluator that trains no model refuses ``search.keep_weights`` other than none);
        called as the :class:`~archbench.search.config.SearchConfig` is built, before anything runs."""
        ...

    @classmethod
    def task_of(cls, config: SearchConfig) -> str:
        """The task its rows of this search are recorded under (it names the study)."""
        ...

    @classmethod
    def from_search(cls, config: SearchConfig) -> Self:
        """The evaluator ``config`` asks for, ``config.evaluator_options`` included (an unknown option is a
        ConfigError naming the allowed ones)."""
        ...

    def __call__(self, arch: Architecture, study: str, trial: int) -> TrialResult:
        """Run one trial; every outcome is a TrialResult (a failure too), never an exception."""
        ...

    def at_budget(self, budget: str, measure: bool, validate_quant: bool = True, screen: bool = False) -> Self:
        """This evaluator for one rung of a funnel: at ``budget``, measuring (quickly with ``screen``) or
        only training, scoring the quantized model or not (``validate_quant``)."""
        ...

    def continued(self, state_dir: str, save_state: bool, resume_budget: str | None) -> Self:
        """This rung's evaluator keeping and continuing training states in ``state_dir``
        (``search.continuation``); a ConfigError when it keeps no state."""
        ...

    def keeping_weights(self, weights_dir: str) -> Self:
        """This rung's evaluator writing each trial's trained float weights into ``weights_dir`` (the row
        records the file: ``search.keep_weights``); a ConfigError when it trains no model."""
        ...

    def data_digest(self) -> str | None:
        """The ``data_digest`` its rows will carry (the task's data identity; None where it trains on no
        data): part of the cache key, so rows of other data never stand in."""
        ...

    def ready(self, progress: bool) -> None:
        """Prepare, once, in the driver, what every trial shares (a text corpus tokenized into the data
        cache, with a progress bar when ``progress``), so that trials only read it; bad data is a
        ConfigError here. Called after the study's identity is checked, so a refused resume prepares nothing."""
        ...

    def probe(self) -> Probe:
        """Run once on a worker before the first trial (see :class:`Probe`)."""
        ...

    def space_for(self, config: SearchConfig, probe: Probe) -> SearchSpace:
        """The space the strategy asks from on the device ``probe`` describes (the quantizations it runs);
        a ConfigError when an objective or constraint cannot be measured there."""
        ...

    def run_settings(self) -> RunSettings:
        """How its rows are run (recipe, deployment, measurement effort): what the cache keys on, and what a
        row it makes records when its measurement succeeds."""
        ...
