"""The monitoring dashboard: one self-contained HTML page (inline SVG, no JavaScript, no CDN).

Same page for ``GET /dashboard`` on the server and ``transferops monitor --report x.html``.
Charts (each an ``<svg data-chart=NAME>``): ``psi`` (class, confidence and worst feature PSI with
the warn/retrain lines), ``confidence`` (high-confidence share), ``class-mix`` (share per
predicted class), ``accuracy`` (accuracy on predictions with feedback) and ``review`` (review
rate); plus the current status and the signal table. Rendering is separate from computation: it
only reads :meth:`MonitorResult.to_dict`.
"""

from __future__ import annotations

import datetime as _dt
import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

W, H, PAD_L, PAD_R, PAD_T, PAD_B = 560, 200, 44, 12, 12, 28
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")
STATUS_COLOURS = {"ok": "#2ca02c", "warn": "#ff9f1c", "retrain": "#d62728", "unknown": "#7f7f7f"}
CHARTS = ("psi", "confidence", "class-mix", "accuracy", "review")


def _fmt_ts(ts: float | None, *, seconds: bool = False) -> str:
    if ts is None:
        return "–"
    return _dt.datetime.fromtimestamp(float(ts), _dt.UTC).strftime("%Y-%m-%d %H:%M" + (":%S" if seconds else ""))


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _value(v: Any) -> str:
    return "n/a" if v is None else f"{float(v):.4f}"


def line_chart(name: str, x: Sequence[float], series: Mapping[str, Sequence[Any]], *, y_max: float | None = None,
               hlines: dict[str, float] | None = None, percent: bool = False) -> str:
    """An SVG line chart; ``None`` values leave gaps. Always renders axes, even with no data."""
    xs = [float(v) for v in x]
    vals = [v for s in series.values() for v in (_num(u) for u in s) if v is not None]
    top = y_max if y_max is not None else max([*vals, *(hlines or {}).values(), 1e-9]) * 1.15
    top = top or 1.0
    x0, x1 = (min(xs), max(xs)) if xs else (0.0, 1.0)
    span = (x1 - x0) or 1.0

    def px(v: float) -> float:
        return PAD_L + (v - x0) / span * (W - PAD_L - PAD_R) if len(xs) > 1 else (W + PAD_L) / 2

    def py(v: float) -> float:
        return H - PAD_B - min(max(v / top, 0.0), 1.0) * (H - PAD_T - PAD_B)

    parts = [f'<svg data-chart="{name}" class="chart-svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" '
             f'role="img" aria-label="{name}">',
             f'<rect x="{PAD_L}" y="{PAD_T}" width="{W - PAD_L - PAD_R}" height="{H - PAD_T - PAD_B}" '
             'fill="#fafafa" stroke="#ccc"/>']
    for frac in (0.0, 0.5, 1.0):
        yv = top * frac
        label = f"{yv:.0%}" if percent else f"{yv:.2f}"
        parts.append(f'<text x="{PAD_L - 4}" y="{py(yv) + 4:.1f}" font-size="10" text-anchor="end">{label}</text>')
    if xs:
        sec = (x1 - x0) < 3600  # a short window: minutes alone would print the same label twice
        parts.append(f'<text x="{PAD_L}" y="{H - 8}" font-size="10">{_fmt_ts(x0, seconds=sec)} UTC</text>')
        parts.append(f'<text x="{W - PAD_R}" y="{H - 8}" font-size="10" text-anchor="end">'
                     f'{_fmt_ts(x1, seconds=sec)} UTC</text>')
    for label, yv in (hlines or {}).items():
        parts.append(f'<line class="threshold" x1="{PAD_L}" x2="{W - PAD_R}" y1="{py(yv):.1f}" y2="{py(yv):.1f}" '
                     f'stroke="#d62728" stroke-dasharray="4 3" stroke-width="1"/>'
                     f'<text x="{W - PAD_R - 2}" y="{py(yv) - 3:.1f}" font-size="9" text-anchor="end" '
                     f'fill="#d62728">{html.escape(label)}</text>')
    legend = []
    for i, (sname, ys) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        pts = [(px(xv), py(v)) for xv, v in zip(xs, (_num(u) for u in ys), strict=False) if v is not None]
        if pts:
            path = " ".join(f"{a:.1f},{b:.1f}" for a, b in pts)
            parts.append(f'<polyline class="series" data-series="{html.escape(sname)}" points="{path}" '
                         f'fill="none" stroke="{colour}" stroke-width="1.8"/>')
            parts.extend(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="2" fill="{colour}"/>' for a, b in pts)
        legend.append(f'<span class="key"><i style="background:{colour}"></i>{html.escape(sname)}</span>')
    if not vals:
        parts.append(f'<text class="empty" x="{W / 2}" y="{H / 2}" font-size="12" text-anchor="middle" '
                     'fill="#777">no data in this window</text>')
    parts.append("</svg>")
    return "".join(parts) + f'<div class="legend">{"".join(legend)}</div>'


def render_dashboard(result: dict[str, Any], *, title: str = "transferops monitor",
                     refresh_s: int | None = None) -> str:
    """HTML page from :meth:`MonitorResult.to_dict`."""
    tl = result.get("timeline") or []
    x = [(r["start"] + r["end"]) / 2 for r in tl]
    cfg = result.get("config", {})
    warn, retrain = float(cfg.get("warn", 0.1)), float(cfg.get("retrain", 0.25))
    col = lambda k: [r.get(k) for r in tl]  # noqa: E731
    psi_series = {"class": col("class_psi"), "confidence": col("confidence_psi"),
                  "worst feature": col("feature_psi_max")}
    # Keep the warn/retrain lines readable: a PSI of 5 and one of 1 mean the same thing (retrain).
    peak = max([v for s in psi_series.values() for v in (_num(u) for u in s) if v is not None] or [0.0])
    psi_top = max(2 * retrain, min(peak * 1.15, 1.0))
    share_keys = sorted({k for r in tl for k in r if k.startswith("share:")})
    charts = {
        "psi": ("Drift (PSI, noise-corrected; axis capped at 1)", line_chart(
            "psi", x, psi_series, y_max=psi_top,
            hlines={f"warn {warn}": warn, f"retrain {retrain}": retrain})),
        "confidence": ("High-confidence (≥ 0.9) share", line_chart(
            "confidence", x, {"high-confidence share": col("high_confidence_share")}, y_max=1.0, percent=True,
            hlines=({"reference": float(result["reference_high_confidence_share"])}
                    if result.get("reference_high_confidence_share") is not None else None))),
        "class-mix": ("Predicted class mix", line_chart(
            "class-mix", x, {k.split(":", 1)[1]: col(k) for k in share_keys}, y_max=1.0, percent=True)),
        "accuracy": ("Accuracy on predictions with feedback", line_chart(
            "accuracy", x, {"accuracy": col("accuracy")}, y_max=1.0, percent=True,
            hlines=({"reference": float(result["reference_accuracy"])}
                    if result.get("reference_accuracy") is not None else None))),
        "review": ("Review rate (routed to a human)", line_chart(
            "review", x, {"review rate": col("review_rate")}, y_max=1.0, percent=True)),
    }
    status = str(result.get("status", "unknown"))
    rows = "".join(
        f'<tr class="{html.escape(s["status"])}"><td>{html.escape(s["name"])}</td>'
        f'<td>{_value(s["value"])}</td><td>{html.escape(s["status"])}</td></tr>'
        for s in result.get("signals", []))

    def pct(v: Any) -> str:
        return "–" if v is None else f"{float(v):.1%}"

    cards = [
        ("predictions", str(result.get("n", 0))),
        ("window (UTC)", f'{_fmt_ts(result.get("start"), seconds=True)} → {_fmt_ts(result.get("end"), seconds=True)}'),
        ("high-confidence share", pct(result.get("high_confidence_share"))),
        ("review rate", pct(result.get("review_rate"))),
        ("accuracy (feedback)", pct(result.get("accuracy")) + f' ({result.get("n_feedback", 0)} labels)'),
    ]
    refresh = f'<meta http-equiv="refresh" content="{int(refresh_s)}">' if refresh_s else ""
    figures = "".join(f'<figure class="chart" id="chart-{k}"><figcaption>{html.escape(t)}</figcaption>{svg}</figure>'
                      for k, (t, svg) in charts.items())
    triggered = ", ".join(result.get("triggered", [])) or "none"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">{refresh}<title>{html.escape(title)}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:20px;color:#222;background:#fff}}
h1{{font-size:20px;margin:0 0 4px}} .sub{{color:#666;font-size:13px;margin-bottom:14px}}
#status{{display:inline-block;padding:6px 14px;border-radius:4px;color:#fff;font-weight:700;
background:{STATUS_COLOURS.get(status, "#777")}}}
.cards{{display:flex;gap:10px;flex-wrap:wrap;margin:12px 0}}
.card{{border:1px solid #ddd;border-radius:4px;padding:8px 12px;font-size:13px}} .card b{{display:block;font-size:16px}}
.grid{{display:grid;grid-template-columns:repeat(auto-fill,minmax(580px,1fr));gap:12px}}
figure{{margin:0;border:1px solid #e3e3e3;border-radius:4px;padding:8px}} figcaption{{font-weight:600;font-size:14px}}
.legend{{font-size:11px}} .key{{margin-right:10px}}
.key i{{display:inline-block;width:10px;height:10px;margin-right:3px}}
table{{border-collapse:collapse;font-size:13px;margin-top:12px}} td,th{{border:1px solid #ddd;padding:3px 8px}}
tr.warn td{{background:#fff4e0}} tr.retrain td{{background:#fde2e2}}
</style></head><body>
<h1>{html.escape(title)}</h1>
<div class="sub">model {html.escape(str(result.get("model", "")))} · generated {_fmt_ts(result.get("generated"))}</div>
<div>current status: <span id="status" data-status="{html.escape(status)}">{html.escape(status.upper())}</span>
 <span class="sub">triggered: {html.escape(triggered)}</span></div>
<div class="cards">{"".join(f'<div class="card">{html.escape(k)}<b>{html.escape(v)}</b></div>' for k, v in cards)}</div>
<div class="grid">{figures}</div>
<table id="signals"><tr><th>signal</th><th>value</th><th>status</th></tr>{rows}</table>
</body></html>
"""


__all__ = ["CHARTS", "line_chart", "render_dashboard"]
