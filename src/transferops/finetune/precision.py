"""Training precision (issue 18, lever 1): ``auto | fp32 | bf16 | fp16``, resolved once for the shared loop.

* ``bf16`` — ``torch.autocast`` with bfloat16 around the objective's forward (weights, gradients and the
  optimiser state stay fp32; the saved model is fp32). Native on CPUs with ``avx512_bf16`` / ``amx_bf16``
  and on CUDA GPUs that support it.
* ``fp16`` — autocast with float16 plus a gradient scaler; CUDA only (CPU fp16 matmuls are emulated and
  fp16 needs loss scaling): on a machine without CUDA it is a :class:`ConfigError` naming the fix.
* ``auto`` — bf16 where it is native, else fp32; never fp16. The bf16-vs-fp32 accuracy parity on BBC
  (target within 0.5 pt test macro-F1) is measured by ``benchmarks/time_to_quality.py``; until its full run
  confirms it, bf16 for ``auto`` is provisional (if parity fails, the ``auto`` CPU branch must return fp32).

:func:`resolve_precision` is a pure function of the request, the device type, the CPU's flags and the
GPU's bf16 support, so the choice is testable without the hardware; :func:`detect_precision` feeds it
the real machine. The loop records ``{"requested", "used", "reason"}`` in ``manifest["training"]``.
"""

from __future__ import annotations

from typing import Literal

from transferops.errors import ConfigError
from transferops.hardware import BF16_CPU_FLAGS, cpu_flags, cpu_has_native_bf16, read_cpuinfo

Precision = Literal["auto", "fp32", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16")
FP16_ON_CPU = ("precision: fp16 needs a CUDA GPU (no CUDA device here); use --precision bf16 (or auto) on "
               "CPU, or fp32")


def check_precision(value: str) -> None:
    if value not in PRECISIONS:
        raise ConfigError(f"precision: must be one of {', '.join(PRECISIONS)}, got {value!r}")


def resolve_precision(requested: str, *, device_type: str, cpuinfo: str = "", cuda_bf16: bool = False
                      ) -> tuple[str, str]:
    """``(used, reason)`` for ``requested`` on a ``device_type`` (``cpu``/``cuda``) machine.

    >>> resolve_precision("auto", device_type="cpu", cpuinfo="flags : fpu avx512f avx512_bf16")[0]
    'bf16'
    >>> resolve_precision("auto", device_type="cpu", cpuinfo="flags : fpu avx2")[0]
    'fp32'
    """
    check_precision(requested)
    cuda = device_type == "cuda"
    if requested == "fp16":
        if not cuda:
            raise ConfigError(FP16_ON_CPU)
        return "fp16", "fp16 requested (autocast float16 + gradient scaler on CUDA)"
    if requested == "fp32":
        return "fp32", "fp32 requested"
    if requested == "bf16":
        native = cuda_bf16 if cuda else cpu_has_native_bf16(cpuinfo)
        return "bf16", "bf16 requested" + ("" if native else f" (not native on this {device_type}: it may be "
                                                               "slower than fp32)")
    # auto
    if cuda:
        if cuda_bf16:
            return "bf16", "auto: the CUDA GPU supports bf16 (autocast; fp32 weights, no loss scaling needed)"
        return "fp32", "auto: the CUDA GPU has no bf16 (fp16 needs --precision fp16 explicitly)"
    if device_type == "cpu":
        flags = sorted(cpu_flags(cpuinfo) & set(BF16_CPU_FLAGS))
        if flags:
            return "bf16", (f"auto: the CPU computes bf16 natively ({', '.join(flags)}): bf16 autocast, fp32 "
                            "weights (parity with fp32: benchmarks/time_to_quality.py)")
        return "fp32", "auto: the CPU has no native bf16 (no avx512_bf16/amx_bf16 flag): bf16 would be emulated"
    return "fp32", f"auto: no mixed precision on device type {device_type!r}"


def detect_precision(requested: str, device_type: str) -> tuple[str, str]:
    """:func:`resolve_precision` on this machine (reads ``/proc/cpuinfo``; asks torch about the GPU)."""
    cpuinfo, cuda_bf16 = "", False
    if device_type == "cuda":
        import torch

        cuda_bf16 = bool(torch.cuda.is_bf16_supported())
    elif requested in ("auto", "bf16"):
        cpuinfo = read_cpuinfo()  # empty off Linux: auto then stays fp32 (conservative)
    return resolve_precision(requested, device_type=device_type, cpuinfo=cpuinfo, cuda_bf16=cuda_bf16)


def check_fp16_available(requested: str) -> None:
    """Early refusal (config time) of fp16 where no CUDA device exists; torch is imported only for fp16."""
    check_precision(requested)
    if requested == "fp16":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(FP16_ON_CPU)


__all__ = ["BF16_CPU_FLAGS", "PRECISIONS", "Precision", "check_fp16_available", "check_precision", "cpu_flags",
           "cpu_has_native_bf16", "detect_precision", "read_cpuinfo", "resolve_precision"]
