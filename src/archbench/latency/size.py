"""Model size in bytes as deployed: the real storage of every parameter and buffer it saves.

torchao's quantized weights are tensor subclasses whose ``element_size()`` and ``numel()`` describe the
logical float tensor; their real storage is in the inner tensors (``__tensor_flatten__``: int8 data,
scales, zero points), which is what is counted. Tied and shared weights are counted once (by storage).
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.utils._python_dispatch import is_traceable_wrapper_subclass


def _plain_tensors(t: Tensor) -> list[Tensor]:
    """The plain tensors that hold ``t``'s data (itself, or a subclass's inner tensors, recursively)."""
    if is_traceable_wrapper_subclass(t):
        names, _ = t.__tensor_flatten__()
        return [leaf for name in names for leaf in _plain_tensors(getattr(t, name))]
    return [t]


def tensor_bytes(tensors: list[Tensor]) -> int:
    """Bytes of storage behind ``tensors``; views of one storage are counted once."""
    seen: dict[tuple[str, int], int] = {}
    for t in tensors:
        for leaf in _plain_tensors(t.detach() if not is_traceable_wrapper_subclass(t) else t):
            if leaf.device.type == "meta":
                key, nbytes = ("meta", id(leaf)), leaf.numel() * leaf.element_size()
            else:
                storage = leaf.untyped_storage()
                key, nbytes = (str(leaf.device), storage.data_ptr()), storage.nbytes()
            seen[key] = max(seen.get(key, 0), nbytes)
    return sum(seen.values())


def model_bytes(model: nn.Module) -> int:
    """Bytes of the model's state (parameters and persistent buffers) in its deployed form."""
    return tensor_bytes(list(model.state_dict(keep_vars=True).values()))
