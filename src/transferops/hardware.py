"""What this machine's CPU can do, read once: the one place that decides "native bf16" for every stage
(training precision in ``finetune/precision.py``, the embedding pass of ``select``)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

#: /proc/cpuinfo flags that mean the CPU computes bf16 natively (AVX512-BF16 dot products, AMX tiles).
BF16_CPU_FLAGS: tuple[str, ...] = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: str) -> set[str]:
    """The ``flags`` of a ``/proc/cpuinfo`` text (union over its processors; ``Features`` on ARM)."""
    out: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            out.update(value.split())
    return out


def cpu_has_native_bf16(cpuinfo: str) -> bool:
    """Whether a ``/proc/cpuinfo`` text lists a native bf16 flag.

    >>> cpu_has_native_bf16("flags : fpu avx512f avx512_bf16"), cpu_has_native_bf16("flags : avx2")
    (True, False)
    """
    return bool(cpu_flags(cpuinfo) & set(BF16_CPU_FLAGS))


@lru_cache(maxsize=1)
def read_cpuinfo() -> str:
    """``/proc/cpuinfo``; empty off Linux (then nothing counts as native bf16: auto stays fp32)."""
    try:
        return Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return ""


def usable_cores() -> int:
    """CPUs this process may run on: its affinity mask (a pinned container sees its own share), else the count."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


__all__ = ["BF16_CPU_FLAGS", "cpu_flags", "cpu_has_native_bf16", "read_cpuinfo", "usable_cores"]
