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
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from archbench.errors import ConfigError
from archbench.metrics import MODES, names

EXEC_MODES = ("eager", "compile")
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

    def __post_init__(self) -> None:
        modes = tuple(dict.fromkeys(("prefill", *self.modes)))  # prefill always, order kept, no repeats
        unknown = [m for m in modes if m not in MODES]
        if unknown:
            raise ConfigError(f"deploy.modes: unknown mode {unknown[0]!r}; allowed: {', '.join(MODES)}")
        object.__setattr__(self, "modes", modes)
        if self.exec_mode not in EXEC_MODES:
            raise ConfigError(f"deploy.exec_mode={self.exec_mode!r}: must be one of {', '.join(EXEC_MODES)}")
        for name in ("batch", "prompt", "context", "new_tokens"):
            value = getattr(self, name)
            if value is None and name in ("prompt", "context"):
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"deploy.{name}={value!r}: must be a positive integer")
        if self.new_tokens < 2:
            raise ConfigError(f"deploy.new_tokens={self.new_tokens}: at least 2 (the first token, then TPOT)")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Deploy:
        data = dict(data or {})
        unknown = set(data) - {"modes", "batch", "prompt", "context", "new_tokens", "exec_mode"}
        if unknown:
            raise ConfigError(
                f"deploy: unknown key {sorted(unknown)[0]!r}; allowed: modes, batch, prompt, context, new_tokens, "
                "exec_mode"
            )
        modes = data.pop("modes", ("prefill",))
        if isinstance(modes, str):
            modes = (modes,)
        return cls(modes=tuple(modes), **data)

    def to_dict(self) -> dict[str, Any]:
        return {"modes": list(self.modes), "batch": self.batch, "prompt": self.prompt, "context": self.context,
                "new_tokens": self.new_tokens, "exec_mode": self.exec_mode}  # fmt: skip

    def for_metrics(self, names: Iterable[str]) -> Deploy:
        """This deployment plus every mode that one of ``names`` (objectives, constraints) is measured in."""
        wanted = set(names)
        extra = tuple(m for m, metrics in MODE_METRICS.items() if wanted & set(metrics))
        return replace(self, modes=(*self.modes, *extra))

    def check_fits(self, max_seq_len: int) -> None:
        """Refuse lengths an architecture with ``max_seq_len`` cannot run (one line naming the limit)."""
        context = self.context if self.context is not None else max_seq_len // 2
        if self.prompt is not None and self.prompt > max_seq_len:
            raise ConfigError(f"deploy.prompt={self.prompt} exceeds max_seq_len={max_seq_len} of the space")
        if "decode" in self.modes and context >= max_seq_len:
            raise ConfigError(f"deploy.context={context}: must be below max_seq_len={max_seq_len} of the space")
        if "generate" in self.modes and context + self.new_tokens > max_seq_len:
            raise ConfigError(
                f"deploy.context={context} + deploy.new_tokens={self.new_tokens} exceeds max_seq_len={max_seq_len} "
                "of the space (generate's prompt is the context)"
            )

    def label(self) -> str:
        """One string for the row and the cache key, e.g. ``prefill+decode b1 p=max c=max/2 eager``."""
        parts = ["+".join(self.modes), f"b{self.batch}", f"p={self.prompt or 'max'}"]
        if "decode" in self.modes:
            parts.append(f"c={self.context or 'max/2'}")
        if "generate" in self.modes:
            parts.append(f"n={self.new_tokens}")
        return " ".join([*parts, self.exec_mode])
