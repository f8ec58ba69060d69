"""How candidates are deployed when they are measured: which modes, at what shape, eager or compiled.

A latency means nothing without its shape, so the deployment is part of a study's identity and of every
row (the ``deploy`` column, e.g. ``prefill+decode b1 p=max c=max/2 eager``): rows measured at another
shape or execution mode are never reused from the cache. Torch-free.

Modes (see :mod:`archbench.latency.decode`):

* ``prefill``: one forward over ``batch x prompt`` tokens (``latency_ms`` = ``prefill_ms``); always run;
* ``decode``: one token from a warm KV cache of ``context`` tokens (``decode_ms_per_token``, ``kv_cache_mb``);
* ``generate``: ``prompt`` tokens, then ``new_tokens`` (``ttft_ms``, ``tpot_ms``).

``Deploy.for_metrics`` adds the modes that the study's objectives and constraints need, so asking for
``decode_ms_per_token:min`` is enough to have it measured.

Named workloads (``deploy.workloads={chat8k: {context: 8000}, batch32: {batch: 32, prompt: 2048}}``) are
more deployments, each a :class:`Deploy` with a ``name``, measured after the unnamed one; their metrics are
the columns ``metric@name`` (``decode_ms_per_token@chat8k``, :func:`archbench.metrics.at_workload`). A
setting a workload leaves out is the top-level ``deploy.*``'s, except ``modes``: a workload measures prefill
and the modes its own metrics need. A study measures only the workloads its objectives and constraints name
(:meth:`Deploy.used_by`), and an unknown name there is refused with the known ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from archbench.errors import ConfigError
from archbench.metrics import MODES, WORKLOAD_NAME, names, split_workload

EXEC_MODES = ("eager", "compile")
SETTINGS = ("modes", "batch", "prompt", "context", "new_tokens", "exec_mode")  # what one deployment sets
# The metrics only a mode beyond prefill measures (prefill is always run).
MODE_METRICS: dict[str, tuple[str, ...]] = {mode: names(mode=mode) for mode in MODES if mode != "prefill"}


@dataclass(frozen=True)
class Deploy:
    """The deployment every candidate is measured in. ``prompt`` is the prefill length and ``context``
    the tokens cached before a decode step, which is also the prompt of ``generate``. ``None`` lengths
    follow each architecture: ``prompt`` = its ``max_seq_len``, ``context`` = half of it."""

    modes: tuple[str, ...] = ("prefill",)
    batch: int = 1
    prompt: int | None = None
    context: int | None = None
    new_tokens: int = 32
    exec_mode: str = "eager"
    workloads: tuple[Deploy, ...] = ()  # named deployments, each with its ``name`` (none of their own)
    name: str | None = None  # a named workload's name; None: the study's unnamed deployment

    def __post_init__(self) -> None:
        where = self.where
        if not isinstance(self.modes, tuple | list):
            raise ConfigError(f"{where}.modes={self.modes!r}: must be a list of modes ({', '.join(MODES)})")
        modes = tuple(dict.fromkeys(("prefill", *self.modes)))  # prefill always, order kept, no repeats
        unknown = [m for m in modes if m not in MODES]
        if unknown:
            raise ConfigError(f"{where}.modes: unknown mode {unknown[0]!r}; allowed: {', '.join(MODES)}")
        object.__setattr__(self, "modes", modes)
        if self.exec_mode not in EXEC_MODES:
            raise ConfigError(f"{where}.exec_mode={self.exec_mode!r}: must be one of {', '.join(EXEC_MODES)}")
        for name in ("batch", "prompt", "context", "new_tokens"):
            value = getattr(self, name)
            if value is None and name in ("prompt", "context"):
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{where}.{name}={value!r}: must be a positive integer")
        if self.new_tokens < 2:
            raise ConfigError(f"{where}.new_tokens={self.new_tokens}: at least 2 (the first token, then TPOT)")
        if self.name is not None and (self.workloads or not WORKLOAD_NAME.fullmatch(str(self.name))):
            raise ConfigError(
                f"deploy.workloads: bad name {self.name!r}: letters, digits and underscores (a column suffix: "
                "ttft_ms@NAME), and a workload has no workloads of its own"
            )
        object.__setattr__(self, "workloads", tuple(self.workloads))
        given = [w.name for w in self.workloads]
        if None in given or len(set(given)) != len(given):
            raise ConfigError("deploy.workloads: every workload needs its own name")

    @property
    def where(self) -> str:
        """Where its settings are written: ``deploy``, or ``deploy.workloads.NAME`` for a named workload."""
        return "deploy" if self.name is None else f"deploy.workloads.{self.name}"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, name: str | None = None, base: Deploy | None = None) -> Deploy:
        """The deployment of ``data`` (``deploy.*``); with ``name``, the named workload ``data`` sets, its
        other settings ``base``'s (but ``modes``: prefill unless it gives them)."""
        where = "deploy" if name is None else f"deploy.workloads.{name}"
        if not isinstance(data, Mapping | None):
            raise ConfigError(f"{where}: must be a mapping of settings ({', '.join(SETTINGS)}), not {data!r}")
        data = dict(data or {})
        allowed = SETTINGS if name is not None else (*SETTINGS, "workloads")
        unknown = set(data) - set(allowed)
        if unknown:
            raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}; allowed: {', '.join(allowed)}")
        workloads = data.pop("workloads", None) or {}
        modes = data.pop("modes", ("prefill",))
        if isinstance(modes, str):
            modes = (modes,)
        inherited = {} if base is None else {k: getattr(base, k) for k in SETTINGS if k != "modes"}
        deploy = cls(modes=tuple(modes) if isinstance(modes, list | tuple) else modes, name=name,
                     **{**inherited, **data})  # fmt: skip
        if not isinstance(workloads, Mapping):
            raise ConfigError("deploy.workloads: must map names to settings, e.g. {chat: {context: 2048}}")
        named = tuple(cls.from_dict(settings, str(key), deploy) for key, settings in workloads.items())
        return replace(deploy, workloads=named) if named else deploy

    def settings(self) -> dict[str, Any]:
        """Its own settings (not its workloads), as ``deploy.*`` writes them."""
        return {"modes": list(self.modes), "batch": self.batch, "prompt": self.prompt, "context": self.context,
                "new_tokens": self.new_tokens, "exec_mode": self.exec_mode}  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """``deploy.*`` (every workload's settings in full); ``workloads`` only where there are some, so that
        a study from before they existed keeps its identity."""
        out = self.settings()
        if self.workloads:
            out["workloads"] = {w.name: w.settings() for w in self.workloads}
        return out

    def workload(self, name: str) -> Deploy:
        """The workload called ``name``; an unknown one is one line with the known ones."""
        for w in self.workloads:
            if w.name == name:
                return w
        known = ", ".join(str(w.name) for w in self.workloads) or "none (set deploy.workloads)"
        raise ConfigError(f"no workload {name!r} in deploy.workloads; known: {known}")

    def used_by(self, names: Iterable[str]) -> Deploy:
        """This deployment with only the workloads one of ``names`` (``metric@workload``) measures; an
        unknown workload is refused (:meth:`workload`)."""
        wanted = [w for _, w in map(split_workload, names) if w is not None]
        for name in wanted:
            self.workload(name)
        return replace(self, workloads=tuple(w for w in self.workloads if w.name in wanted))

    def for_metrics(self, names: Iterable[str]) -> Deploy:
        """This deployment plus every mode that one of ``names`` (objectives, constraints) is measured in:
        ``metric`` in the unnamed deployment, ``metric@name`` in the workload ``name`` (refused if unknown)."""
        own: set[str] = set()
        per: dict[str, list[str]] = {}
        for metric, workload in map(split_workload, names):
            if workload is None:
                own.add(metric)
            else:
                self.workload(workload)
                per.setdefault(workload, []).append(metric)
        extra = tuple(m for m, metrics in MODE_METRICS.items() if own & set(metrics))
        workloads = tuple(w.for_metrics(per.get(str(w.name), ())) for w in self.workloads)
        return replace(self, modes=(*self.modes, *extra), workloads=workloads)

    def check_fits(self, max_seq_len: int) -> None:
        """Refuse lengths an architecture with ``max_seq_len`` cannot run (one line naming the limit)."""
        where = self.where
        context = self.context if self.context is not None else max_seq_len // 2
        if self.prompt is not None and self.prompt > max_seq_len:
            raise ConfigError(f"{where}.prompt={self.prompt} exceeds max_seq_len={max_seq_len} of the space")
        if "decode" in self.modes and context >= max_seq_len:
            raise ConfigError(f"{where}.context={context}: must be below max_seq_len={max_seq_len} of the space")
        if "generate" in self.modes and context + self.new_tokens > max_seq_len:
            raise ConfigError(
                f"{where}.context={context} + {where}.new_tokens={self.new_tokens} exceeds max_seq_len={max_seq_len} "
                "of the space (generate's prompt is the context)"
            )
        for w in self.workloads:
            w.check_fits(max_seq_len)

    def check_windows(self, windowed: Iterable[str], windows: Iterable[int]) -> None:
        """Refuse a named workload whose length is not above any window the space offers its ``windowed``
        patterns: there every windowed layer keeps (and attends to) the whole context, so the workload cannot
        tell windowed attention from dense, which is what naming it in an objective asks. The length is the
        context when the workload decodes or generates, else its prompt; a length left to the architecture
        (``max_seq_len``, which every window is below, or half of it) is not judged."""
        windowed, windows = sorted(set(windowed)), sorted(set(windows))
        if not windowed or not windows:
            return
        for w in self.workloads:
            key = "context" if {"decode", "generate"} & set(w.modes) else "prompt"
            length = getattr(w, key)
            if length is not None and length <= windows[0]:
                raise ConfigError(
                    f"{w.where}.{key}={length}: not above any window of the space ({', '.join(map(str, windows))} "
                    f"for {', '.join(windowed)}): every windowed layer would keep the whole {key}, so {w.name} "
                    f"cannot tell them from dense; give a {key} above {windows[0]}"
                )

    def label(self) -> str:
        """One string for the row and the cache key, e.g. ``prefill+decode b1 p=max c=max/2 eager``; each
        measured workload follows as ``; NAME=its label``."""
        parts = ["+".join(self.modes), f"b{self.batch}", f"p={self.prompt or 'max'}"]
        if "decode" in self.modes:
            parts.append(f"c={self.context or 'max/2'}")
        if "generate" in self.modes:
            parts.append(f"n={self.new_tokens}")
        own = " ".join([*parts, self.exec_mode])
        return "; ".join([own, *(f"{w.name}={w.label()}" for w in self.workloads)])

    def resolved_context(self, max_seq_len: int) -> int:
        """The tokens cached before a decode step (and generate's prompt) for an architecture of ``max_seq_len``."""
        return self.context if self.context is not None else max_seq_len // 2
