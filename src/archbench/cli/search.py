"""``archbench search [key=value ...]``: run or resume a multi-objective search (Hydra overrides)."""

from __future__ import annotations

import argparse
from typing import Any

from archbench.errors import ConfigError


def config_from_dict(cfg: dict[str, Any]) -> Any:
    """A typed SearchConfig from the composed Hydra config (plain containers); bad values -> ConfigError."""
    from archbench.cli.task_settings import build_task, check_vocab, space_for, task_settings
    from archbench.deploy import Deploy
    from archbench.leaderboard.objectives import parse_objectives
    from archbench.search import SearchConfig
    from archbench.search.executor import RayConfig
    from archbench.search.fidelity import FidelityConfig
    from archbench.search.trial_evaluators import TRIAL_EVALUATORS

    task = cfg["task"]["name"]
    evaluator = str(cfg["evaluator"])
    if evaluator not in TRIAL_EVALUATORS:
        raise ConfigError(TRIAL_EVALUATORS.unknown_message(evaluator))
    budget = str(cfg["budget"])
    evaluator_options = dict(cfg.get("evaluator_options") or {})
    task_obj = None
    if evaluator == "train":
        from archbench.evaluators import TASKS, Budget

        if task not in TASKS:
            raise ConfigError(TASKS.unknown_message(task))
        budget = str(Budget.parse(budget))
        task_obj = build_task(cfg["task"])  # an unknown setting: one line naming the known ones
        given = task_settings(cfg["task"])
        if given:  # as the task resolved them (absolute paths: trials may run in another directory)
            evaluator_options["task_options"] = {k: _plain(getattr(task_obj, k)) for k in given}
    elif task_settings(cfg["task"]):
        raise ConfigError(f"task settings ({', '.join(task_settings(cfg['task']))}) need evaluator=train")
    space = space_for(cfg, task_obj)
    if task_obj is not None:
        check_vocab(space, task_obj)
    objectives = cfg["objectives"]
    if isinstance(objectives, str):
        objectives = objectives.split(",")
    ray_opts = dict(cfg["ray"])
    try:
        ray = RayConfig(**ray_opts)
    except TypeError as exc:
        raise ConfigError(f"ray: {exc}") from None
    for key in ("n_trials", "seed"):
        if isinstance(cfg[key], bool) or not isinstance(cfg[key], int):
            raise ConfigError(f"{key}={cfg[key]!r}: must be an integer")
    search = cfg["search"]
    seeds = search.get("seed_archs") or []
    if isinstance(seeds, str):
        seeds = [seeds]
    from archbench.search_space import load_arch

    seed_archs = tuple(load_arch(path) for path in seeds)
    concurrency = cfg["concurrency"]
    if concurrency is not None and (isinstance(concurrency, bool) or not isinstance(concurrency, int)):
        raise ConfigError(f"concurrency={concurrency!r}: must be an integer or null")
    timeout = cfg.get("timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float)):
        raise ConfigError(f"timeout={timeout!r}: must be a number of seconds or null")
    from archbench.search.study import REMOVED

    for key, why in REMOVED.items():
        if key in search:
            raise ConfigError(why)
    fidelity = FidelityConfig(**_fidelity_settings(search))
    from archbench.train_config import TrainConfig

    train_opts = dict(cfg.get("train") or {})
    allowed = ("schedule", "warmup_steps", "decay_frac")
    unknown = sorted(set(train_opts) - set(allowed))
    if unknown:
        raise ConfigError(f"train: unknown settings {unknown}; allowed: {list(allowed)}")
    train = TrainConfig(**{k: v for k, v in train_opts.items() if v is not None or k == "warmup_steps"})
    from archbench.constraints import parse_constraints

    return SearchConfig(
        constraints=parse_constraints(cfg.get("constraints") or None),
        space=space,
        task=task,
        budget=budget,
        strategy=str(search["strategy"]),
        strategy_options=dict(search.get("options") or {}),
        default_strategy=bool(search.get("default", False)),
        seed_archs=seed_archs,
        warm_start=bool(search.get("warm_start", False)),
        allow_changes=bool(cfg["study"]["allow_changes"]),
        fidelity=fidelity,
        timeout_s=timeout,
        objectives=tuple(parse_objectives(objectives, minimum=1)),
        n_trials=cfg["n_trials"],
        concurrency=concurrency,
        seed=cfg["seed"],
        study=cfg["study"]["name"],
        leaderboard=str(cfg["leaderboard"]),
        ray=ray,
        evaluator=evaluator,
        evaluator_options=evaluator_options,
        cache=bool(cfg["cache"]),
        progress=bool(cfg["progress"]),
        plot=bool(cfg["plot"]),
        deploy=Deploy.from_dict(cfg.get("deploy")),
        train=train,
        keep_weights=search.get("keep_weights", "none"),
    )


def _plain(value: Any) -> Any:
    """Tuples as lists: the settings are recorded in the study's JSON identity."""
    return list(value) if isinstance(value, tuple) else value


def _fidelity_settings(search: dict[str, Any]) -> dict[str, Any]:
    """FidelityConfig's settings as the ``search`` section gives them (``fidelity`` is its ``mode``); a
    setting left out keeps FidelityConfig's own default, stated there only."""
    from dataclasses import fields

    from archbench.search.fidelity import FidelityConfig

    renamed = {"fidelity": "mode"}
    wanted = {f.name for f in fields(FidelityConfig)}
    out = {renamed.get(k, k): v for k, v in search.items() if renamed.get(k, k) in wanted}
    if isinstance(out.get("rungs"), list):
        out["rungs"] = tuple(out["rungs"])
    return out


def cmd_search(args: argparse.Namespace) -> int:
    from archbench.cli.main import compose
    from archbench.search import print_outcome, run_search

    config = config_from_dict(compose(args.overrides))
    outcome = run_search(config)  # it checks the study's identity, then prepares the data once, then runs
    print_outcome(outcome, config.objectives)
    return 0


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "search",
        help="run or resume a multi-objective architecture search on Ray",
        description="Run (or resume) a search. Hydra overrides, e.g.: task=recall search=pymoo_nsga2 "
        "n_trials=64 space=lm_small ray.address=auto objectives=[val_loss:min,energy_mj:min]",
    )
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p.set_defaults(func=cmd_search)
