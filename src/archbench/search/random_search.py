"""Random search: uniform over distinct valid architectures (the baseline every strategy must beat)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from archbench.search.checkpoint import Checkpoint
from archbench.search.strategy import STRATEGIES, Feedback, Strategy, Suggestion


@dataclass
class _State:
    next_number: int = 0
    told: int = 0
    pending: dict[int, list[int]] = field(default_factory=dict)  # trial number -> choice indices
    seen: set[str] = field(default_factory=set)
    queue: list[list[int]] = field(default_factory=list)  # seed architectures still to hand out


@STRATEGIES.register("random")
class RandomSearch(Strategy):
    """Each suggestion is drawn with a seed derived from (seed, trial number): reproducible and resumable."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ckpt = Checkpoint(self.state_dir / "random.pkl")
        self._state: _State = self._ckpt.load() or _State()

    def ask(self) -> Suggestion | None:
        st = self._state
        number = st.next_number
        if st.queue:
            arch = self.space.decode(st.queue.pop(0))
        else:
            rng = np.random.default_rng([self.seed, number])
            arch = self.space.sample(1, seed=int(rng.integers(2**31)))[0]
            for _ in range(32):  # prefer unseen shapes while there are any
                if arch.arch_id not in st.seen:
                    break
                arch = self.space.sample(1, seed=int(rng.integers(2**31)))[0]
        st.next_number += 1
        st.pending[number] = [int(i) for i in self.space.encode(arch)]
        st.seen.add(arch.arch_id)
        self._ckpt.save(st)
        return Suggestion(number, arch)

    def tell(self, feedback: Feedback) -> None:
        st = self._state
        if st.pending.pop(feedback.suggestion.number, None) is not None:
            st.told += 1
            self._ckpt.save(st)

    def pending(self) -> list[Suggestion]:
        return [Suggestion(n, self.space.decode(x)) for n, x in sorted(self._state.pending.items())]

    def told(self) -> int:
        return self._state.told

    def enqueue(self, arch: Any) -> None:
        self._state.queue.append([int(i) for i in self.space.encode(arch)])
        self._ckpt.save(self._state)

    def warm(self, arch: Any, values: tuple[float, ...], violation: float = 0.0) -> None:
        self._state.seen.add(arch.arch_id)  # random search learns nothing, but need not re-measure it
        self._ckpt.save(self._state)
