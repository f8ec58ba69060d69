"""`SearchSpace`: the choices for every Architecture field, and the constraints between them.

A space is plain data (``conf/space/*.yaml``)::

    name: lm_tiny
    fields:
      depth: [1, 2, 4]        # a list: the choices
      vocab_size: 256         # a scalar: fixed
      unique_layers: [1, null]  # null: no sharing (one block per layer)

Fields left out keep the Architecture's default. The constraints are the Architecture's own
(heads divide width, unique_layers divide depth, windows below max_seq_len, even head size for rope,
relative positions only with a score-computing pattern, a recursion rank only with shared layers)
plus the device's (``for_device`` drops the quant modes it cannot run). Constraints only couple a few
fields, so the valid combinations of those are enumerated once; sampling is uniform over distinct
valid architectures and decoding an arbitrary choice vector *repairs* it to the nearest valid one
(fewest index steps), so no strategy can ever produce an invalid architecture.

Strategies see only encodings: integer vectors of choice indices (``bounds`` / ``decode`` / ``encode``),
which pymoo's problems use as they are. The space knows no optimiser: the Optuna encoding is built on
these vectors next to the Optuna strategies (:class:`archbench.search.optuna_strategies.OptunaEncoding`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from archbench.errors import ArchitectureError, ConfigError
from archbench.search_space.architecture import Architecture

# Fields that appear in a constraint together; everything else may be chosen independently.
COUPLED = (
    "depth", "unique_layers", "width", "heads", "kv_heads", "pos_encoding", "attention", "window", "max_seq_len",
    "global_every", "global_last", "recursion_rank",  # recursion_rank: only with shared layers
)  # fmt: skip
# Fields whose default (None) follows another field: unique_layers = depth, kv_heads = heads.
_FOLLOWS = {"unique_layers": "depth", "kv_heads": "heads"}

_BUILTIN: dict[str, SearchSpace] = {}


@lru_cache(maxsize=64)
def _coupled_table(
    coupled: tuple[tuple[Any, ...], ...], base: tuple[tuple[str, Any], ...]
) -> tuple[np.ndarray, np.ndarray]:
    """One pass over the coupled fields' product (``coupled``: their choices, in :data:`COUPLED` order) with
    the other fields at ``base``. Kept per process: it validates every combination (seconds for lm_small),
    and every space with the same coupled choices (a reload, ``for_device``) shares it. Read-only arrays."""
    ranges = [range(len(c)) for c in coupled]
    values = dict(base)
    seen: set[tuple[Any, ...]] = set()
    valid: list[tuple[int, ...]] = []
    distinct: list[tuple[int, ...]] = []
    for idx in itertools.product(*ranges):
        try:
            arch = Architecture.from_dict(
                {**values, **{k: c[i] for k, c, i in zip(COUPLED, coupled, idx, strict=True)}}
            )
        except ArchitectureError:
            continue
        valid.append(idx)
        key = tuple(getattr(arch, k) for k in COUPLED)
        if key not in seen:
            seen.add(key)
            distinct.append(idx)
    width = len(COUPLED)
    tables = (
        np.array(valid, dtype=np.int64).reshape(len(valid), width),
        np.array(distinct, dtype=np.int64).reshape(len(distinct), width),
    )
    for table in tables:
        table.flags.writeable = False  # shared by every space with these choices
    return tables


def _with_task_vocab(fields: Mapping[str, Any], space: str, vocab: int | None) -> Mapping[str, Any]:
    """``fields`` with ``task`` in ``vocab_size`` replaced by the task's vocabulary."""
    value = fields.get("vocab_size")
    listed = isinstance(value, list | tuple)
    if "task" not in (value if listed else [value]):
        return fields
    if vocab is None:
        raise ConfigError(f"space {space}: vocab_size: task needs a task whose vocabulary is known (task=NAME)")
    return {**fields, "vocab_size": [vocab if v == "task" else v for v in value] if listed else vocab}


@dataclass(frozen=True)
class SpaceSize:
    raw: int  # product of the number of choices per field
    valid: int  # distinct valid architectures


@dataclass(frozen=True, eq=False)
class SearchSpace:
    """Choices per Architecture field (a 1-tuple when fixed). Build with :meth:`from_dict`."""

    name: str
    choices: Mapping[str, tuple[Any, ...]]
    dropped: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)  # removed by for_device

    # ---- construction --------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any], name: str | None = None, task_vocab: int | None = None) -> SearchSpace:
        """From ``{"name": ..., "fields": {field: choices | value}}`` (or the fields mapping alone).

        ``vocab_size: task`` (or ``task`` among its choices) is the task's vocabulary, ``task_vocab``."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"search space must be a mapping, got {type(data).__name__}")
        fields = data.get("fields", data if "name" not in data else {})
        name = str(data.get("name") or name or "custom")
        extra = set(data) - {"name", "fields", "description"} if "fields" in data else set()
        if extra:
            raise ConfigError(f"space {name}: unknown keys {sorted(extra)}; allowed: name, description, fields")
        if not isinstance(fields, Mapping):
            raise ConfigError(f"space {name}: 'fields' must be a mapping of field: choices")
        fields = _with_task_vocab(fields, name, task_vocab)
        known = Architecture.field_names()
        defaults = Architecture().to_dict()
        choices: dict[str, tuple[Any, ...]] = {}
        for key in known:
            value = fields.get(key, None if key in _FOLLOWS else defaults[key])
            if isinstance(value, list | tuple):
                if not value:
                    raise ConfigError(f"space {name}: field {key} has an empty list of choices")
                if len(set(map(repr, value))) != len(value):
                    raise ConfigError(f"space {name}: field {key} lists a choice twice: {list(value)}")
                choices[key] = tuple(value)
            else:
                choices[key] = (value,)
        for key in fields:
            if key not in known:
                import difflib

                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ConfigError(f"space {name}: unknown field {key!r}{hint}; fields: {', '.join(known)}")
        space = cls(name=name, choices=choices)
        space._check()
        return space

    @classmethod
    def from_yaml(cls, path: str | Path) -> SearchSpace:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"search space file not found: {path}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"search space file {path} is not valid YAML: {exc}".splitlines()[0]) from None
        return cls.from_dict(data, name=path.stem)

    @staticmethod
    def builtin_names() -> list[str]:
        folder = resources.files("archbench") / "conf" / "space"
        return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))

    @classmethod
    def builtin(cls, name: str) -> SearchSpace:
        """One of the spaces shipped in ``archbench/conf/space`` (loaded once per process: immutable)."""
        if name not in _BUILTIN:
            names = cls.builtin_names()
            if name not in names:
                raise ConfigError(f"unknown space {name!r}; known: {', '.join(names)}")
            text = (resources.files("archbench") / "conf" / "space" / f"{name}.yaml").read_text()
            _BUILTIN[name] = cls.from_dict(yaml.safe_load(text), name=name)
        return _BUILTIN[name]

    def _check(self) -> None:
        """Fail early, with the field named, if a choice can never be valid."""
        if not len(self._valid_coupled):
            raise ConfigError(f"space {self.name}: no combination of {', '.join(COUPLED)} is valid")
        base = self._coupled_values(self._valid_coupled[0])
        for key, opts in self.choices.items():
            if key in COUPLED:
                continue
            for opt in opts:
                try:
                    Architecture.from_dict({**self._first_independent(), **base, key: opt})
                except ArchitectureError as exc:
                    raise ConfigError(f"space {self.name}: {exc}") from None

    # ---- the coupled table ---------------------------------------------------------------------
    def _first_independent(self) -> dict[str, Any]:
        return {k: v[0] for k, v in self.choices.items() if k not in COUPLED}

    def _coupled_values(self, idx: Sequence[int]) -> dict[str, Any]:
        return {k: self.choices[k][int(i)] for k, i in zip(COUPLED, idx, strict=True)}

    @cached_property
    def _coupled_table(self) -> tuple[np.ndarray, np.ndarray]:
        """(every valid index vector, the first vector of each distinct canonical architecture) over the
        coupled fields: the first are repair targets, the second sampling's support."""
        coupled = tuple(self.choices[k] for k in COUPLED)
        base = tuple(self._first_independent().items())
        try:
            hash((coupled, base))
        except TypeError:  # a choice that is no scalar: let validation name it, uncached
            return _coupled_table.__wrapped__(coupled, base)
        return _coupled_table(coupled, base)

    @property
    def _valid_coupled(self) -> np.ndarray:
        """Index vectors over COUPLED, one per distinct valid canonical combination."""
        return self._coupled_table[1]

    @property
    def _all_valid_coupled(self) -> np.ndarray:
        """Every valid index vector (duplicates of a canonical arch included): repair targets."""
        return self._coupled_table[0]

    # ---- facts ---------------------------------------------------------------------------------
    @property
    def free_fields(self) -> tuple[str, ...]:
        """Fields with more than one choice: the search's variables, in Architecture field order."""
        return tuple(k for k, v in self.choices.items() if len(v) > 1)

    def size(self) -> SpaceSize:
        raw = math.prod(len(v) for v in self.choices.values())
        independent = math.prod(len(v) for k, v in self.choices.items() if k not in COUPLED)
        return SpaceSize(raw=raw, valid=len(self._valid_coupled) * independent)

    def contains(self, arch: Architecture) -> bool:
        try:
            self.encode(arch)
        except ConfigError:
            return False
        return True

    def for_device(self, unsupported: Mapping[str, str | None]) -> SearchSpace:
        """This space without the quant modes the device cannot run (``{quant: reason or None}``)."""
        bad = {q for q, reason in unsupported.items() if reason}
        keep = tuple(q for q in self.choices["quant"] if q not in bad)
        if not keep:
            reasons = "; ".join(f"{q}: {unsupported[q]}" for q in self.choices["quant"])
            raise ConfigError(f"space {self.name}: no quant choice runs on this device ({reasons})")
        gone = tuple(q for q in self.choices["quant"] if q in bad)
        if not gone:
            return self
        return SearchSpace(self.name, {**self.choices, "quant": keep}, {**self.dropped, "quant": gone})

    # ---- sampling ------------------------------------------------------------------------------
    def sample(self, n: int, seed: int = 0, unique: bool = True) -> list[Architecture]:
        """``n`` valid architectures, uniform over distinct architectures, reproducible by ``seed``."""
        size = self.size().valid
        if unique and n > size:
            raise ConfigError(f"asked for {n} distinct architectures but space {self.name} has only {size}")
        rng = np.random.default_rng(seed)
        out: list[Architecture] = []
        seen: set[str] = set()
        while len(out) < n:
            row = self._valid_coupled[rng.integers(len(self._valid_coupled))]
            values = self._coupled_values(row)
            for k, opts in self.choices.items():
                if k not in COUPLED:
                    values[k] = opts[int(rng.integers(len(opts)))]
            arch = Architecture.from_dict(values)
            if unique and arch.arch_id in seen:
                continue
            seen.add(arch.arch_id)
            out.append(arch)
        return out

    # ---- integer-vector encoding (pymoo) -------------------------------------------------------
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Inclusive integer bounds of the free fields' choice indices."""
        xu = np.array([len(self.choices[k]) - 1 for k in self.free_fields], dtype=np.int64)
        return np.zeros_like(xu), xu

    def decode(self, x: Sequence[int] | np.ndarray) -> Architecture:
        """The architecture for choice indices ``x`` over :attr:`free_fields`, repaired if invalid."""
        free = self.free_fields
        x = np.asarray(x).round().astype(np.int64).reshape(-1)
        if len(x) != len(free):
            raise ValueError(f"expected {len(free)} indices (one per free field), got {len(x)}")
        _, xu = self.bounds()
        x = np.clip(x, 0, xu)
        idx = {k: 0 for k in self.choices}
        idx.update(zip(free, x.tolist(), strict=True))
        coupled = np.array([idx[k] for k in COUPLED], dtype=np.int64)
        table = self._all_valid_coupled
        hit = np.all(table == coupled, axis=1)
        if not hit.any():  # repair: the nearest valid combination in index steps (first on ties)
            coupled = table[int(np.abs(table - coupled).sum(axis=1).argmin())]
            idx.update(zip(COUPLED, coupled.tolist(), strict=True))
        return Architecture.from_dict({k: self.choices[k][i] for k, i in idx.items()})

    def encode(self, arch: Architecture) -> np.ndarray:
        """Choice indices of ``arch`` over :attr:`free_fields`; ConfigError if it is not in the space."""
        values = arch.to_dict()
        out = []
        for k, opts in self.choices.items():
            match = [i for i, o in enumerate(opts) if self._same(k, o, values[k], arch)]
            if not match:
                raise ConfigError(
                    f"architecture {arch.arch_id} is not in space {self.name}: {k}={values[k]!r} not among {list(opts)}"
                )
            if len(opts) > 1:
                out.append(match[0])
        return np.array(out, dtype=np.int64)

    @staticmethod
    def _same(key: str, option: Any, value: Any, arch: Architecture) -> bool:
        if key in _FOLLOWS and option is None:
            return value == getattr(arch, _FOLLOWS[key])
        if key == "window" and value == 0:
            return True  # the pattern uses no window: every choice canonicalises to 0
        if key in ("global_every", "global_last") and option != value:
            # A layout choice that changes nothing (dense attention; a last layer every-k makes global
            # already) canonicalises away: it matches when it gives this same architecture.
            try:
                return arch.replace(**{key: option}) == arch
            except ArchitectureError:
                return False
        if isinstance(option, bool) or isinstance(value, bool):
            return option is value
        return option == value

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "fields": {k: (list(v) if len(v) > 1 else v[0]) for k, v in self.choices.items()},
        }
