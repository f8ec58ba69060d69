"""``run_search(config)``: run, or resume, the study a :class:`~archbench.search.config.SearchConfig`
describes, on Ray (the executor, not the driver).

The parts: the settings and the study's identity (:mod:`~archbench.search.config`), the loop
(:mod:`~archbench.search.loop`) with its funnel (:mod:`~archbench.search.fidelity`; a single fidelity is a
funnel of one rung) and cache (:mod:`~archbench.search.cache`), the trial evaluators behind one contract
(:mod:`~archbench.search.evaluator`), and the end-of-search report (:mod:`~archbench.search.report`).

Resume: the strategy's state lives in ``<studies_root>/<study>/`` next to the leaderboard. After a crash
(even SIGKILL) the same command continues: trials told before the crash are kept; trials in flight
are told from their leaderboard row if it landed, and run again once otherwise.

A search that cannot go on ends in :class:`~archbench.errors.SearchStopped`, one line saying why, how many
trials are recorded and that rerunning resumes: a stop signal (SIGTERM, SIGINT;
:mod:`archbench.search.signals`), exit status 128 + the signal's number; or a cluster that went away or
has no node left for a trial (:class:`~archbench.search.executor.ClusterLost`), exit status 1. Ray is shut
down first in both cases.
"""

from __future__ import annotations

import time

from archbench.errors import ConfigError, SearchStopped
from archbench.leaderboard import Leaderboard
from archbench.search.config import SearchConfig
from archbench.search.executor import ClusterLost, make_executor
from archbench.search.loop import SearchLoop, study_rows
from archbench.search.report import SearchOutcome
from archbench.search.signals import Interrupted, StopSignals
from archbench.search.study import check, check_or_create, driver_lock, recorded
from archbench.search.trial_evaluators import make_evaluator


def run_search(config: SearchConfig) -> SearchOutcome:
    """Run (or resume) the study described by ``config``; see the module docstring."""
    started = time.monotonic()
    config = config.keeping_its_strategy(lambda c: recorded(c.study_dir, c.study_name))
    study = config.study_name
    lb = Leaderboard(config.leaderboard)
    config = _admitted(config, lb)  # refusals first: a run that cannot go on prepares and writes nothing
    make_evaluator(config).ready(progress=config.progress)  # e.g. the corpus tokenized, once, before any trial
    with driver_lock(config.study_dir, study):
        config = _admitted(config, lb)  # again under the lock: another driver may have written in between
        check_or_create(config.study_dir, study, config.identity(), allow_changes=config.allow_changes)
        stop = StopSignals()
        stop.install()  # a signal from here on is noted; ray.init replaces the handlers, the executor reinstalls them
        try:
            executor = make_executor(config.ray, stop)
            try:
                return SearchLoop(config, study, lb, executor).run(started)
            finally:
                executor.shutdown()
        except Interrupted as exc:
            raise _stopped(f"interrupted by {exc.name}", lb, config, 128 + exc.signum, "") from None
        except ClusterLost as exc:
            again = "on a running cluster, or locally without ray.address"
            raise _stopped(f"error: {exc}", lb, config, 1, f" ({again})") from None
        finally:
            stop.uninstall()


def _admitted(config: SearchConfig, lb: Leaderboard) -> SearchConfig:
    """``config`` resolved for its study (:meth:`SearchConfig.resolved`), once the study's identity is
    checked (:func:`~archbench.search.study.check`: a changed setting or data is refused, in one line)
    and its leaderboard rows have a state to resume. Writes nothing."""
    study = config.study_name
    saved = recorded(config.study_dir, study)
    if saved is None and study_rows(lb, study):
        raise ConfigError(
            f"the leaderboard already has rows of study {study!r} but its state ({config.study_dir}) "
            "is missing: pick another study=NAME rather than mix two runs under one name"
        )
    config = config.resolved(saved)
    check(config.study_dir, study, config.identity(), allow_changes=config.allow_changes)
    return config


def _stopped(why: str, lb: Leaderboard, config: SearchConfig, status: int, where: str) -> SearchStopped:
    """The one line that ends a stopped search: why, the trials recorded, how to resume."""
    study = config.study_name
    done = len({r["trial"] for r in study_rows(lb, study)})
    return SearchStopped(
        f"{why}; {done} of {config.n_trials} trials of study {study} are recorded; "
        f"rerun the same command to resume{where}",
        status,
    )
