"""Precision of ``select``'s frozen embedding pass (issue 18, lever 6: a cold ``select`` in seconds).

``auto`` (the default) embeds in **bf16** when the CPU computes bf16 natively (``avx512_bf16`` or
``amx_bf16`` in ``/proc/cpuinfo``), else in fp32; ``fp32`` is the exact pre-issue-18 pass; ``bf16``
forces it (emulated, and slow, on a CPU without native bf16).

bf16 here is ``torch.autocast("cpu", dtype=torch.bfloat16)`` — matmuls in bf16, LayerNorm, softmax and
the pooled embedding in fp32 — with the Linear weights cast to bf16 once after loading
(:class:`transferops.modeling.FrozenEncoder` with ``precision="bf16"``), which gives bit-for-bit
the values autocast's own per-call cast gives, minus the per-batch cast. On 100 BBC examples the kNN and
probe scores of minilm-l6 and mpnet-base are identical to fp32 and LogME moves by < 0.001
(``benchmarks/select_bench.py`` compares the two on every run).

The training loop's precision (issue 18 lever 1) reads the same flags, through the same
:mod:`transferops.hardware`.
"""

from __future__ import annotations

from typing import Literal

from transferops.hardware import BF16_CPU_FLAGS, cpu_has_native_bf16, read_cpuinfo

Precision = Literal["auto", "fp32", "bf16"]
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")
def resolve_precision(requested: str, *, cpuinfo: str | None = None) -> str:
    """``auto`` → ``bf16`` on a CPU with native bf16, else ``fp32``; ``fp32``/``bf16`` as given.

    >>> resolve_precision("auto", cpuinfo="flags : avx512_bf16"), resolve_precision("auto", cpuinfo="")
    ('bf16', 'fp32')
    """
    if requested not in PRECISIONS:
        raise ValueError(f"precision: {requested!r} is not one of {', '.join(PRECISIONS)}")
    if requested != "auto":
        return requested
    return "bf16" if cpu_has_native_bf16(read_cpuinfo() if cpuinfo is None else cpuinfo) else "fp32"


__all__ = ["BF16_CPU_FLAGS", "PRECISIONS", "Precision", "cpu_has_native_bf16", "resolve_precision"]
