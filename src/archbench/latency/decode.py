"""Deployment modes beyond the forward pass: per-token decode from a warm cache, and generation.

* ``decode``: the time of one decode step (``batch`` new tokens, one per sequence) after a cache of
  ``context`` tokens, with the same adaptive statistics as prefill. Steps never modify the cache they
  are given (:mod:`archbench.search_space.kv_cache`), so every timed call starts from the same warm
  cache: the same shapes, no recompiles, no growth. Also reported: the cache's size in memory and the
  peak memory of one step.
* ``generate``: time to first token (the prefill of a ``prompt``-token prompt) and time per output
  token (the mean of the ``new_tokens - 1`` decode steps that follow), greedy, repeated until the
  spread of the whole generation's time is small or the time cap is hit; medians are reported.

Both run ``eager`` or ``compile`` (``torch.compile`` of the model's ``decode``). Compiled: the first
call's wall time is ``compile_s``; warm-up repeats the exact measured shapes (a whole generation in
``generate``) until a pass compiles nothing; a compile inside the timed window spoils the result,
which is then left null with the reason (counted from torch's own compile counters).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from archbench.errors import ConfigError
from archbench.latency.fingerprint import hardware_fingerprint
from archbench.latency.measure import (
    ModelMeasurement,
    _cuda_graph,
    _device,
    _flex,
    _instruments,
    _Record,
    _resolve_arch,
    _tokens,
    first_call,
)  # fmt: skip
from archbench.latency.monitor import Monitor
from archbench.latency.nvml import Gpu
from archbench.latency.size import model_bytes, tensor_bytes
from archbench.latency.stats import StopRule, summarize
from archbench.latency.timing import compile_events, time_unspoiled
from archbench.metrics import names
from archbench.search_space.architecture import Architecture
from archbench.search_space.attention import flex_compiled

EXEC_MODES = ("eager", "compile")
DECODE_KEYS = names(mode="decode", measures="latency")
GENERATE_KEYS = names(mode="generate", measures="latency")
ALSO = ("compile_s", "params", "model_bytes")  # reported by every mode beside its own metrics


def _decoder(model: nn.Module) -> Callable[..., tuple[Tensor, Any]]:
    decode = getattr(model, "decode", None)
    if decode is None:
        raise ConfigError(f"{type(model).__name__} has no incremental decoding (decode/generate need a decoder LM)")
    return decode


def _exec(decode: Callable[..., Any], exec_mode: str) -> Callable[..., Any]:
    if exec_mode not in EXEC_MODES:
        raise ConfigError(f"exec_mode={exec_mode!r}: must be one of {', '.join(EXEC_MODES)}")
    return torch.compile(decode) if exec_mode == "compile" else decode


def _hardware(device: torch.device, gpu: Gpu, mode: str, exec_mode: str, method: str, **extra: Any) -> dict[str, Any]:
    hw = dict(hardware_fingerprint(device, gpu))
    hw.update({"measure_mode": mode, "exec_mode": exec_mode, "timing_method": method, **extra})
    return hw


def measure_decode(
    model: nn.Module,
    arch: Architecture | None = None,
    device: torch.device | str = "cpu",
    batch: int = 1,
    context: int | None = None,
    *,
    exec_mode: str = "eager",
    rule: StopRule | None = None,
    warmup_calls: int = 5,
    warmup_s: float = 0.5,
    memory: bool = True,
    cuda_graph: bool = False,
    gpu: Gpu | None = None,
    seed: int = 0,
) -> ModelMeasurement:
    """Time per output token of the deployed decoder ``model`` after a warm cache of ``context`` tokens
    (default: half of ``max_seq_len``), at ``batch`` sequences; see the module docstring.

    ``cuda_graph`` replays the step from a captured CUDA graph (the step's inputs, the new token and
    the warm cache, are static, so the capture is valid); ``exec_mode`` then reads ``...+cuda_graph``.
    """
    arch = _resolve_arch(model, arch)
    device = _device(device)
    context = arch.max_seq_len // 2 if context is None else context
    if batch < 1 or not 1 <= context < arch.max_seq_len:
        raise ConfigError(
            f"batch={batch}, context={context}: need batch >= 1 and 1 <= context < max_seq_len={arch.max_seq_len}"
        )
    model = model.to(device).eval()
    decode = _exec(_decoder(model), exec_mode)
    gpu, sync = _instruments(device, gpu, "cpu")
    rec = _Record((*names(mode="decode"), "peak_mem_mb", *ALSO))
    prompt = _tokens(arch, batch, context, seed, device)
    nxt = _tokens(arch, batch, 1, seed + 1, device)
    notes: list[str] = []
    latency = None
    with torch.inference_mode():
        try:
            _, cache = model.decode(prompt)  # the warm cache: built once, eagerly (prefill is not timed here)
            step: Callable[[], object] = lambda: decode(nxt, cache)  # noqa: E731
            first_call(step, sync, rec, compiled=exec_mode == "compile")
            if cuda_graph:
                step, graph_note = _cuda_graph(step, device)
                notes.append(graph_note)
                if "captured" in graph_note:
                    exec_mode += "+cuda_graph"
            rec.set("kv_cache_mb", cache.mb())
            latency = time_unspoiled(
                step, device, rule=rule, warmup_calls=warmup_calls, warmup_s=warmup_s,
                monitor=Monitor(gpu, sync=sync), window_name="decode",
            )  # fmt: skip
            if latency.spoiled:
                rec.null(DECODE_KEYS, f"torch.compile recompiled {latency.recompiles}x inside the timed window")
            else:
                s = latency.summary
                rec.set("decode_ms_per_token", s.median)
                rec.set("decode_p90_ms", s.p90)
                rec.set("decode_cv", s.cv)
                rec.set("decode_samples", s.n)
            resident = model_bytes(model) + cache.nbytes() + tensor_bytes([nxt])
            note = rec.peak_memory(step, device, resident, memory)
            notes += [f"peak_mem_mb: one decode step; {note}"] if memory else []
        except torch.OutOfMemoryError as exc:
            reason = f"out of memory at batch={batch}, context={context}: {str(exc).splitlines()[0]}"
            rec.failed((*DECODE_KEYS, "kv_cache_mb", "peak_mem_mb"), reason)
    rec.sizes(model)
    hw = _hardware(
        device, gpu, "decode", exec_mode, latency.method if latency else "none",
        decode_batch=batch, decode_context=context,
        recompiles_in_window=latency.recompiles if latency else None,
        latency_stop_reason=latency.stop_reason if latency else None,
    )  # fmt: skip
    return ModelMeasurement(rec.metrics, rec.reasons, hw, latency, None, None, None, tuple(notes))


def measure_generate(
    model: nn.Module,
    arch: Architecture | None = None,
    device: torch.device | str = "cpu",
    batch: int = 1,
    prompt: int | None = None,
    new_tokens: int = 32,
    *,
    exec_mode: str = "eager",
    rule: StopRule | None = None,
    warmup_runs: int = 2,
    flex_compile: bool | None = True,
    gpu: Gpu | None = None,
    seed: int = 0,
) -> ModelMeasurement:
    """Time to first token and time per output token of greedy generation: ``batch`` prompts of
    ``prompt`` tokens (default: half of ``max_seq_len``), ``new_tokens`` new tokens each.

    As in :func:`~archbench.latency.measure_model`, windowed patterns prefill through compiled
    FlexAttention (``flex_compile=True``, the kernel a deployment runs; eager flex on a CPU is a slow
    reference); None leaves the per-device default."""
    arch = _resolve_arch(model, arch)
    device = _device(device)
    prompt = arch.max_seq_len // 2 if prompt is None else prompt
    if batch < 1 or prompt < 1 or new_tokens < 2 or prompt + new_tokens > arch.max_seq_len:
        raise ConfigError(
            f"batch={batch}, prompt={prompt}, new={new_tokens}: need batch >= 1, prompt >= 1, new >= 2 and "
            f"prompt + new <= max_seq_len={arch.max_seq_len}"
        )
    model = model.to(device).eval()
    decode = _exec(_decoder(model), exec_mode)
    cuda = device.type == "cuda"
    gpu, sync = _instruments(device, gpu, "cpu")
    rule = rule or StopRule()
    rec = _Record((*GENERATE_KEYS, "kv_cache_mb", *ALSO))
    ids = _tokens(arch, batch, prompt, seed, device)
    cache_mb: list[float] = []

    def generate() -> tuple[float, float]:
        """One generation; (TTFT ms, mean TPOT ms), on the device's clock."""
        if cuda:
            events = [torch.cuda.Event(enable_timing=True) for _ in range(3)]
            events[0].record()
        else:
            t0 = time.perf_counter_ns()
        logits, cache = decode(ids)
        nxt = logits[:, -1:].argmax(-1)  # the first token is chosen: TTFT ends here
        if cuda:
            events[1].record()
        else:
            sync()
            t1 = time.perf_counter_ns()
        for _ in range(new_tokens - 1):
            logits, cache = decode(nxt, cache)
            nxt = logits[:, -1:].argmax(-1)
        if cuda:
            events[2].record()
            events[2].synchronize()
            ttft, rest = events[0].elapsed_time(events[1]), events[1].elapsed_time(events[2])
        else:
            t2 = time.perf_counter_ns()
            ttft, rest = (t1 - t0) / 1e6, (t2 - t1) / 1e6
        cache_mb.append(cache.mb())
        return float(ttft), float(rest) / (new_tokens - 1)

    ttfts: list[float] = []
    tpots: list[float] = []
    recompiles = 0
    reason = "not run"
    with _flex(flex_compile), torch.inference_mode():
        used_flex = flex_compiled(device)
        try:
            first_call(generate, sync, rec, compiled=exec_mode == "compile")
            runs, start = 0, time.perf_counter()
            while True:  # warm up on the exact shapes until a whole generation compiles nothing
                before = compile_events()
                generate()
                runs += 1
                clean = compile_events() == before
                if (runs >= warmup_runs and clean) or time.perf_counter() - start > 300:
                    break
            before = compile_events()
            start = time.perf_counter()
            totals: list[float] = []
            while True:
                ttft, tpot = generate()
                ttfts.append(ttft)
                tpots.append(tpot)
                totals.append(ttft + tpot * (new_tokens - 1))
                stop = rule.stop_reason(totals, time.perf_counter() - start)
                if stop is not None:
                    reason = stop
                    break
            recompiles = compile_events() - before
            if recompiles:
                rec.null(GENERATE_KEYS, f"torch.compile recompiled {recompiles}x inside the timed window")
            else:
                rec.set("ttft_ms", summarize(ttfts).median)
                rec.set("tpot_ms", summarize(tpots).median)
                rec.set("generate_cv", summarize(totals).cv)
                rec.set("generate_samples", len(totals))
            rec.set("kv_cache_mb", cache_mb[-1])
        except torch.OutOfMemoryError as exc:
            oom = f"out of memory at batch={batch}, prompt={prompt}, new={new_tokens}: {str(exc).splitlines()[0]}"
            rec.failed((*GENERATE_KEYS, "kv_cache_mb"), oom)
    rec.sizes(model)
    hw = _hardware(
        device, gpu, "generate", exec_mode, "cuda_event" if cuda else "perf_counter",
        generate_batch=batch, generate_prompt=prompt, generate_new_tokens=new_tokens,
        recompiles_in_window=recompiles, latency_stop_reason=reason, flex_compiled=used_flex,
    )  # fmt: skip
    notes = (f"kv_cache_mb: the cache after all {prompt + new_tokens - 1} tokens",)
    return ModelMeasurement(rec.metrics, rec.reasons, hw, None, None, None, None, notes)
