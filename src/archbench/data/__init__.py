"""Corpora and token data: readers, tokenizers, parallel preparation into shards, memory-mapped streams.

    from archbench.data import DataSpec, prepare, open_data
    root = prepare(DataSpec("corpus/", "tokenizer.json"), out="shards/")  # nanoGPT/llm.c shards + meta.json
    ds = open_data(DataSpec("shards/"))                               # or DataSpec("corpus/", "tok.json")
    ds.train_stream.windows(starts, 65); ds.val_bytes(0, 4096); ds.digest

Torch-free, and knows nothing of models, training or results (``archbench.evaluators.text`` does).
"""

from __future__ import annotations

from archbench.data.dataset import Dataset, identify, open_data, open_prepared
from archbench.data.plan import DataSpec, Plan, make_plan, read_meta
from archbench.data.preparation import prepare
from archbench.data.shards import inspect, open_tokens, write_shard
from archbench.data.stream import TokenStream
from archbench.data.tokenizer import load_tokenizer

__all__ = [
    "DataSpec",
    "Dataset",
    "Plan",
    "TokenStream",
    "identify",
    "inspect",
    "load_tokenizer",
    "make_plan",
    "open_data",
    "open_prepared",
    "open_tokens",
    "prepare",
    "read_meta",
    "write_shard",
]
