"""One MiniLM-L6 training step (issue 18, levers 1-2): precision, AdamW implementation, torch.compile.

Batch 16, random token ids, forward + cross-entropy + backward + AdamW step, default torch threads.
Interleaved rounds; min and median per variant:

* precision: fp32 vs ``torch.autocast("cpu", dtype=torch.bfloat16)`` (what ``--precision bf16`` does);
* AdamW: ``foreach`` (torch's default), ``fused=True`` (the loop's default since issue 18) and the
  single-tensor for-loop — the optimiser step alone, on real gradients-shaped tensors;
* ``torch.compile(model, dynamic=True)``: compile time of the first step, then steady steps over the
  sequence lengths length bucketing produces (``--lengths``); eager at the same lengths alongside;
* ``torch.compile(model)`` at one static shape (batch x ``--length``: BBC at 128 tokens, where every article
  is truncated and every batch has that shape), fp32 and bf16 autocast, eager alongside (``--no-static``
  leaves it out).

    nice -n 10 .venv/bin/python benchmarks/train_step_bench.py [--rounds 5] [--no-compile]

~3-4 min on 2 idle cores (compile dominates). Writes ``benchmarks/results/train_step_bench.json``/``.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

from _common import save


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--length", type=int, default=128)
    ap.add_argument("--lengths", default="64,96,128", help="sequence lengths of the compile probe")
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--no-static", action="store_true", help="leave out the static-shape compile probe")
    ap.add_argument("--name", default="train_step_bench")
    args = ap.parse_args()
    import torch
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    from transferops.checkpoints import resolve_checkpoint

    hf_logging.set_verbosity_error()
    path = str(resolve_checkpoint("minilm-l6").path)

    def model() -> Any:
        torch.manual_seed(0)
        m = AutoModelForSequenceClassification.from_pretrained(path, num_labels=5)
        m.train()
        return m

    def batch(length: int) -> dict[str, Any]:
        g = torch.Generator().manual_seed(length)
        return {"input_ids": torch.randint(1000, 20000, (args.batch, length), generator=g),
                "attention_mask": torch.ones(args.batch, length, dtype=torch.long),
                "labels": torch.randint(0, 5, (args.batch,), generator=g)}

    def step(m: Any, opt: Any, b: dict[str, Any], bf16: bool) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = m(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
        torch.nn.functional.cross_entropy(logits.float(), b["labels"]).backward()
        opt.step()
        opt.zero_grad()

    out: dict[str, Any] = {"load_avg": [], "threads": torch.get_num_threads()}
    # 1. precision (fused AdamW both)
    b = batch(args.length)
    sides = {p: model() for p in ("fp32", "bf16")}
    opts = {p: torch.optim.AdamW(m.parameters(), lr=5e-5, fused=True) for p, m in sides.items()}
    for p in sides:
        step(sides[p], opts[p], b, p == "bf16")
    times: dict[str, list[float]] = {p: [] for p in sides}
    for _ in range(args.rounds):
        out["load_avg"].append([round(x, 2) for x in os.getloadavg()])
        for p in sides:
            t = time.perf_counter()
            step(sides[p], opts[p], b, p == "bf16")
            times[p].append(time.perf_counter() - t)
    out["precision"] = {p: {"min_s": min(v), "median_s": statistics.median(v)} for p, v in times.items()}
    del sides, opts

    # 2. AdamW implementations, the optimiser step alone
    m = model()
    kinds = {"foreach": {"foreach": True}, "fused": {"fused": True}, "for-loop": {"foreach": False}}
    params = {k: [torch.nn.Parameter(p.detach().clone()) for p in m.parameters()] for k in kinds}
    for ps in params.values():
        for p in ps:
            p.grad = torch.randn_like(p) * 1e-3
    aopts = {k: torch.optim.AdamW(params[k], lr=5e-5, weight_decay=0.01, **kw) for k, kw in kinds.items()}
    for o in aopts.values():
        o.step()
    at: dict[str, list[float]] = {k: [] for k in kinds}
    for _ in range(args.rounds * 3):
        for k, o in aopts.items():
            t = time.perf_counter()
            o.step()
            at[k].append(time.perf_counter() - t)
    out["adamw_step"] = {k: {"min_ms": 1e3 * min(v), "median_ms": 1e3 * statistics.median(v)} for k, v in at.items()}
    del params, aopts

    # 3. torch.compile with dynamic shapes (the lengths bucketing gives)
    if not args.no_compile:
        lengths = [int(x) for x in args.lengths.split(",")]
        eager, comp = model(), model()
        oe = torch.optim.AdamW(eager.parameters(), lr=5e-5, fused=True)
        oc = torch.optim.AdamW(comp.parameters(), lr=5e-5, fused=True)
        cm = torch.compile(comp, dynamic=True)
        t = time.perf_counter()
        try:
            step(cm, oc, batch(lengths[0]), False)
            compile_s: float | None = time.perf_counter() - t
            err = None
        except Exception as exc:  # a backend that cannot compile here: record it
            compile_s, err = None, f"{type(exc).__name__}: {str(exc)[:200]}"
        ct: dict[str, list[float]] = {"eager": [], "compiled": []}
        first_at_len: dict[int, float] = {}
        if err is None:
            step(eager, oe, batch(lengths[0]), False)
            for r in range(args.rounds):
                for length in lengths:
                    bb = batch(length)
                    t = time.perf_counter()
                    step(eager, oe, bb, False)
                    ct["eager"].append(time.perf_counter() - t)
                    t = time.perf_counter()
                    step(cm, oc, bb, False)
                    dt = time.perf_counter() - t
                    if r == 0 and length != lengths[0]:
                        first_at_len[length] = dt  # a recompile for a new shape shows here
                    else:
                        ct["compiled"].append(dt)
        out["compile"] = {"error": err, "compile_first_step_s": compile_s, "first_step_at_new_length_s": first_at_len,
                          **{k: {"min_s": min(v), "median_s": statistics.median(v)} for k, v in ct.items() if v}}

    # 4. torch.compile at one static shape, fp32 and bf16: the case most favourable to compile
    if not args.no_compile and not args.no_static:
        out["compile_static"] = {}
        bs = batch(args.length)
        for prec in ("fp32", "bf16"):
            bf = prec == "bf16"
            eager, comp = model(), model()
            oe = torch.optim.AdamW(eager.parameters(), lr=5e-5, fused=True)
            oc = torch.optim.AdamW(comp.parameters(), lr=5e-5, fused=True)
            cm = torch.compile(comp)
            t = time.perf_counter()
            step(cm, oc, bs, bf)
            first = time.perf_counter() - t
            step(cm, oc, bs, bf)
            step(eager, oe, bs, bf)
            st: dict[str, list[float]] = {"eager": [], "compiled": []}
            for _ in range(args.rounds * 2):
                for k, (mm, oo) in (("eager", (eager, oe)), ("compiled", (cm, oc))):
                    t = time.perf_counter()
                    step(mm, oo, bs, bf)
                    st[k].append(time.perf_counter() - t)
            out["compile_static"][prec] = {"compile_first_step_s": first, **{
                k: {"min_s": min(v), "median_s": statistics.median(v)} for k, v in st.items()}}
            del eager, comp, cm, oe, oc
        out["load_avg"].append([round(x, 2) for x in os.getloadavg()])

    pr = out["precision"]
    lines = [f"MiniLM-L6 training step, batch {args.batch} x {args.length} tokens, {out['threads']} threads, load "
             f"average {out['load_avg'][0]} .. {out['load_avg'][-1]}", "",
             "| variant | min s | median s |", "|---|---|---|"]
    lines += [f"| {p} (fused AdamW) | {v['min_s']:.3f} | {v['median_s']:.3f} |" for p, v in pr.items()]
    lines.append(f"| bf16 speed-up | {pr['fp32']['min_s'] / pr['bf16']['min_s']:.2f}x | "
                 f"{pr['fp32']['median_s'] / pr['bf16']['median_s']:.2f}x |")
    lines += ["", "| AdamW step alone (22.7M params) | min ms | median ms |", "|---|---|---|"]
    lines += [f"| {k} | {v['min_ms']:.1f} | {v['median_ms']:.1f} |" for k, v in out["adamw_step"].items()]
    if "compile" in out:
        c = out["compile"]
        if c["error"]:
            lines += ["", f"torch.compile failed here: {c['error']}"]
        else:
            lines += ["", f"| torch.compile(dynamic=True), lengths {args.lengths} | min s | median s |",
                      "|---|---|---|",
                      f"| eager | {c['eager']['min_s']:.3f} | {c['eager']['median_s']:.3f} |",
                      f"| compiled (steady) | {c['compiled']['min_s']:.3f} | {c['compiled']['median_s']:.3f} |",
                      f"| compile (first step) | {c['compile_first_step_s']:.1f} | |"]
            lines += [f"| first compiled step at length {k} | {v:.2f} | |"
                      for k, v in c["first_step_at_new_length_s"].items()]
    if "compile_static" in out:
        lines += ["", f"| torch.compile, static shape {args.batch} x {args.length} | eager min / median s | "
                  "compiled min / median s | compiled / eager (median) | compile (first step) s |",
                  "|---|---|---|---|---|"]
        for prec, c in out["compile_static"].items():
            e, k = c["eager"], c["compiled"]
            lines.append(f"| {prec} | {e['min_s']:.3f} / {e['median_s']:.3f} | "
                         f"{k['min_s']:.3f} / {k['median_s']:.3f} | "
                         f"{k['median_s'] / e['median_s']:.2f} | {c['compile_first_step_s']:.1f} |")
    save(args.name, out, "\n".join(lines))


if __name__ == "__main__":
    main()
