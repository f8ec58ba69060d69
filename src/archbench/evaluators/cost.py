"""``measure_cost(arch, task) -> TrialResult``: the cost of an architecture without training it.

Cost does not depend on the weights (see :mod:`archbench.evaluators.evaluate`), so the deployed form of
the untrained model (built for ``task``, in the architecture's ``quant``) is measured through the same path
a trained one is: every deployment mode and named workload asked for, FLOPs, parameters, model bytes,
decode cache. What needs training (the ``validation`` and ``training`` metrics of :mod:`archbench.metrics`)
is null with the reason, and the row names no training recipe (``train_recipe`` null), so the search's
cache never lets it stand in for a trained row, nor a trained row for it.

A constraint the measured metrics violate makes the row ``infeasible``, as a trained trial's would be.
"""

from __future__ import annotations

import torch

from archbench.constraints import ConstraintsArg, judge, parse_constraints
from archbench.deploy import Deploy
from archbench.evaluators.evaluate import Outcome, measure_untrained, resolve_device, trial_result
from archbench.evaluators.measurement import FULL, SCREEN
from archbench.evaluators.task import Task, get_task
from archbench.metrics import TRAINED_ONLY
from archbench.run_settings import RunSettings
from archbench.search_space.architecture import Architecture
from archbench.trial import TrialResult, utc_now

UNTRAINED = "not trained: a cost-only trial (evaluator=cost)"


def cost_settings(deploy: Deploy | None, constraints: ConstraintsArg = None, screen: bool = False) -> RunSettings:
    """How a cost-only trial is run: no recipe, ``deploy`` (None: the default) with the modes its
    constraints need, at the quick effort with ``screen``. The trial and the search's cache take it here."""
    needed = (c.metric for c in parse_constraints(constraints))
    return RunSettings(None, (deploy or Deploy()).for_metrics(needed), "screen" if screen else "full")


def measure_cost(
    arch: Architecture,
    task: str | Task = "charlm",
    *,
    budget: str = "none",
    seed: int = 0,
    device: torch.device | str | None = None,
    study: str = "",
    trial: int | None = None,
    constraints: ConstraintsArg = None,
    deploy: Deploy | None = None,
    screen: bool = False,
    measure: bool = True,
) -> TrialResult:
    """Measure the untrained ``arch`` as ``task`` builds it; see the module docstring. ``budget`` is only
    the label of the row (nothing is spent); ``measure=False`` counts parameters only."""
    started = utc_now()
    task_obj = get_task(task)
    dev = resolve_device(device)
    cons = parse_constraints(constraints)
    settings = cost_settings(deploy, cons, screen) if measure else RunSettings()
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(seed)  # the same untrained weights every time (cost does not read them)
        effort = SCREEN if screen else FULL
        measured = measure_untrained(arch, task_obj, dev, measure, settings.deploy or Deploy(), effort)
    out = Outcome(reason="cost only: the untrained model measured")
    if measure and measured.effort is None:  # it could not be built or deployed: the reason says why
        out.status, out.reason = "failed", next(iter(measured.null_reasons.values()), "not measured")
    elif (verdict := judge(measured.metrics, cons))[0] is False:
        out.status, out.reason = "infeasible", verdict[2]
    out.null(list(TRAINED_ONLY), UNTRAINED)
    return trial_result(arch, task_obj, budget, seed, study, trial, started, out, measured, dev, settings, cons)
