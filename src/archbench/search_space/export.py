"""The export format: a YAML file that ``hydra.utils.instantiate`` turns into the model.

::

    # archbench architecture 1a2b3c4d5e6f
    _target_: archbench.build
    _convert_: all
    arch:
      depth: 4
      ...

:func:`load_arch` reads it back into an :class:`Architecture` and refuses any other ``_target_`` (at
the top or nested anywhere): a config from someone else must not run arbitrary code.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from archbench.errors import ArchitectureError, ConfigError
from archbench.search_space.architecture import Architecture

TARGET = "archbench.build"
_ALLOWED_TOP = {"_target_", "_convert_", "arch", "num_classes", "provenance"}


def to_config(
    arch: Architecture, num_classes: int | None = None, provenance: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The mapping that ``hydra.utils.instantiate`` builds into ``archbench.build(arch)``.

    ``provenance`` (measured metrics, hardware, study...) is carried along for people to read;
    ``build`` and ``load_arch`` ignore it.
    """
    cfg: dict[str, Any] = {"_target_": TARGET, "_convert_": "all", "arch": arch.to_dict()}
    if num_classes is not None:
        cfg["num_classes"] = num_classes
    if provenance:
        cfg["provenance"] = dict(provenance)
    return cfg


def dump_config(
    arch: Architecture,
    num_classes: int | None = None,
    comment: str = "",
    provenance: Mapping[str, Any] | None = None,
) -> str:
    """The YAML text of :func:`to_config`, headed by the arch_id (and ``comment``) as comments."""
    head = f"# archbench architecture {arch.arch_id}: {arch.describe()}\n"
    if comment:
        head += "".join(f"# {line}\n" for line in comment.splitlines())
    return head + yaml.safe_dump(to_config(arch, num_classes, provenance), sort_keys=False)


def save_config(
    arch: Architecture,
    path: str | Path,
    num_classes: int | None = None,
    comment: str = "",
    provenance: Mapping[str, Any] | None = None,
) -> Path:
    """Write the export YAML to ``path`` (atomically: written aside, then renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(dump_config(arch, num_classes, comment, provenance))
    tmp.replace(path)
    return path


def _nested_targets(node: Any, where: str) -> list[str]:
    found = []
    if isinstance(node, Mapping):
        for k, v in node.items():
            if k == "_target_":
                found.append(f"{where}._target_={v!r}")
            found += _nested_targets(v, f"{where}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            found += _nested_targets(v, f"{where}[{i}]")
    return found


def arch_from_config(data: Any, source: str = "config") -> Architecture:
    """An Architecture from a parsed export config (or a bare ``arch`` mapping / field mapping)."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a mapping with 'arch:', got {type(data).__name__}")
    if "_target_" in data and data["_target_"] != TARGET:
        raise ConfigError(f"{source}: refusing _target_={data['_target_']!r}; only {TARGET!r} may be instantiated")
    if "arch" in data or "_target_" in data:
        unknown = set(data) - _ALLOWED_TOP
        if unknown:
            raise ConfigError(f"{source}: unknown keys {sorted(unknown)}; allowed: {sorted(_ALLOWED_TOP)}")
        nested = _nested_targets(data.get("arch"), "arch") + _nested_targets(data.get("provenance"), "provenance")
        if nested:
            raise ConfigError(f"{source}: refusing nested {nested[0]}; only a top-level {TARGET!r} is allowed")
        body = data.get("arch")
        if body is None:
            raise ConfigError(f"{source}: missing 'arch:' mapping")
    else:
        body = data
    try:
        return Architecture.from_dict(body)
    except ArchitectureError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def load_arch(path: str | Path) -> Architecture:
    """Read an exported config (or a YAML mapping of Architecture fields) into an Architecture.

    ``preset:NAME`` names a published shape instead (:mod:`archbench.search_space.presets`: plain data, imported
    only then).
    """
    if isinstance(path, str) and path.startswith("preset:"):
        from archbench.search_space.presets import preset

        return preset(path).arch
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"architecture file not found: {path}") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read architecture file {path}: {type(exc).__name__}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{path}: not valid YAML ({first})") from None
    return arch_from_config(data, source=str(path))
