"""`Budget`: how long a short training run may go on, in steps, tokens or seconds.

``Budget.parse("steps=300")`` and ``str(budget) == "steps=300"`` round-trip; anything else raises a
:class:`~archbench.errors.ConfigError` with one line saying what is allowed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from archbench.errors import ConfigError

UNITS = ("steps", "tokens", "seconds")
_ALLOWED = "a budget is one of steps=N, tokens=N (positive integers) or seconds=X (a positive number)"


@dataclass(frozen=True)
class Budget:
    """A training budget: ``amount`` of ``unit`` (steps, tokens or seconds)."""

    unit: str
    amount: float | int

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ConfigError(f"budget unit {self.unit!r}: {_ALLOWED}")
        amount = self.amount
        if isinstance(amount, bool) or not isinstance(amount, int | float) or not math.isfinite(amount) or amount <= 0:
            raise ConfigError(f"budget {self.unit}={amount!r}: {_ALLOWED}")
        if self.unit != "seconds":
            if float(amount) != int(amount):
                raise ConfigError(f"budget {self.unit}={amount!r}: {_ALLOWED}")
            object.__setattr__(self, "amount", int(amount))
        elif float(amount).is_integer():
            object.__setattr__(self, "amount", int(amount))  # seconds=30 prints back as seconds=30
        else:
            object.__setattr__(self, "amount", float(amount))

    @classmethod
    def parse(cls, text: str | Budget) -> Budget:
        """``"steps=300"``, ``"tokens=200000"`` or ``"seconds=30"`` (a Budget is returned as is)."""
        if isinstance(text, Budget):
            return text
        if not isinstance(text, str):
            raise ConfigError(f"budget {text!r}: {_ALLOWED}")
        unit, sep, value = text.strip().partition("=")
        unit, value = unit.strip(), value.strip()
        if not sep or unit not in UNITS:
            raise ConfigError(f"budget {text!r}: {_ALLOWED}")
        try:
            amount: float | int = int(value) if unit != "seconds" else float(value)
        except ValueError:
            raise ConfigError(f"budget {text!r}: {_ALLOWED}") from None
        return cls(unit, amount)

    def __str__(self) -> str:
        return f"{self.unit}={self.amount}"

    def scaled(self, factor: float) -> Budget:
        """The same kind of budget, ``factor`` times as long (e.g. the 4x budget of proxy fidelity)."""
        amount = self.amount * factor
        return Budget(self.unit, amount if self.unit == "seconds" else max(1, round(amount)))

    def total_steps(self, tokens_per_step: int) -> int | None:
        """Optimizer steps this budget allows, or None for a wall-clock budget (known only at the end)."""
        if self.unit == "steps":
            return int(self.amount)
        if self.unit == "tokens":
            return max(1, math.ceil(self.amount / tokens_per_step))
        return None


# x 16 x 64 = ~400k bytes of charlm, seconds per lm_tiny arch on a CPU; 200 ranked archs too unlike 4x (README)
DEFAULT_BUDGET = Budget("steps", 400)
