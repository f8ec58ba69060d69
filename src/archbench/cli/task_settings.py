"""Task settings on the command line, ``task.KEY=VALUE``, for ``archbench search`` and ``archbench evaluate``.

    archbench search task=text task.data=corpus/ task.tokenizer=tok.json task.val_tokens=32768
    archbench search task=charlm task.root=/path/to/other/source
    archbench evaluate arch.yaml --task text task.data=corpus/ task.tokenizer=tok.json

A value is typed as Hydra types an override (``4096`` an int, ``null`` None, ``[a.txt,b.txt]`` a list).
The keys are the task's own settings (its dataclass fields); an unknown one is refused in one line that
names the known ones (:func:`archbench.evaluators.task.get_task`). A task's config file may give
settings too, beside its ``name``, ``budget`` and ``objectives``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from archbench.errors import ConfigError

GROUP_KEYS = ("name", "budget", "objectives")  # the task config group's own keys: not task settings


def split_task_settings(items: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
    """(the ``task.KEY=VALUE`` settings among ``items``, typed; the other items, in order)."""
    settings: dict[str, Any] = {}
    rest: list[str] = []
    for item in items:
        key, sep, value = item.partition("=")
        name = key[len("task.") :] if key.startswith("task.") else ""
        if sep and name and name not in GROUP_KEYS and "." not in name:
            settings[name] = _typed(key, value)
        else:
            rest.append(item)
    return settings, rest


def _typed(key: str, value: str) -> Any:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        return OverridesParser.create().parse_override(f"{key}={value}").value()
    except Exception as exc:  # Hydra's grammar errors: one line, with the fix
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"{key}={value}: {first} (quote the value: {key}='...')") from None


def task_settings(task_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The settings in a composed ``task`` config (everything but its name, budget and objectives)."""
    return {k: v for k, v in task_cfg.items() if k not in GROUP_KEYS}


def build_task(task_cfg: Mapping[str, Any]) -> Any:
    """The Task the composed ``task`` config names, with its settings; None for a name no task has."""
    from archbench.evaluators import TASKS, get_task

    name = task_cfg["name"]
    if name not in TASKS:
        return None
    return get_task(name, **task_settings(task_cfg))


def space_for(cfg: Mapping[str, Any], task: Any = None) -> Any:
    """The composed space; ``vocab_size: task`` in it becomes the task's vocabulary (``task``, or the
    one the composed config names)."""
    from archbench.search_space import SearchSpace

    fields = cfg["space"].get("fields", {}) if isinstance(cfg["space"], Mapping) else {}
    vocab = fields.get("vocab_size") if isinstance(fields, Mapping) else None
    if "task" not in (vocab if isinstance(vocab, list | tuple) else [vocab]):
        return SearchSpace.from_dict(cfg["space"])
    task = task if task is not None else build_task(cfg["task"])
    return SearchSpace.from_dict(cfg["space"], task_vocab=task.vocab_size() if task is not None else None)


def check_vocab(space: Any, task: Any) -> None:
    """Refuse, in one line, a space with a vocabulary choice too small for the task's tokens."""
    need = task.vocab_size()
    small = [v for v in space.choices["vocab_size"] if need is not None and v < need]
    if small:
        raise ConfigError(
            f"space {space.name}: vocab_size {small[0]} is smaller than task {task.name}'s vocabulary ({need}); "
            "give vocab_size >= that, or vocab_size: task"
        )
