"""Render an :class:`EvaluationReport` as one self-contained HTML file (CSS inline, plots as base64 PNG)."""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transferops.evaluate import plots

if TYPE_CHECKING:
    from transferops.evaluate.report import EvaluationReport

#: Section ids, in page order (tests check every one is present).
SECTIONS = ("headline", "gates", "per-class", "confusion", "slices", "calibration", "threshold")

_CARD_METRICS = {
    "single": ("accuracy", "macro_f1", "weighted_f1", "balanced_accuracy", "roc_auc", "log_loss"),
    "binary": ("accuracy", "f1", "recall", "precision", "roc_auc", "log_loss"),
    "multilabel": ("micro_f1", "macro_f1", "subset_accuracy", "hamming_loss", "roc_auc", "log_loss"),
}
_NICE = {"macro_f1": "Macro F1", "micro_f1": "Micro F1", "weighted_f1": "Weighted F1", "accuracy": "Accuracy",
         "balanced_accuracy": "Balanced accuracy", "roc_auc": "ROC-AUC", "pr_auc": "PR-AUC",
         "log_loss": "Log loss", "brier": "Brier score", "ece": "ECE (15 bins)", "f1": "F1",
         "recall": "Recall", "precision": "Precision", "specificity": "Specificity",
         "subset_accuracy": "Subset accuracy", "hamming_loss": "Hamming loss",
         "micro_precision": "Micro precision", "micro_recall": "Micro recall"}

CSS = """
:root{--ink:#1f2933;--muted:#52606d;--faint:#9aa5b1;--line:#e4e7eb;--bg:#f5f7fa;--card:#fff;
--blue:#2563eb;--green:#15803d;--greenbg:#dcfce7;--red:#b91c1c;--redbg:#fee2e2;--amber:#92400e;--amberbg:#fef3c7}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.5 -apple-system,BlinkMacSystemFont,"Segoe UI",
Roboto,"Helvetica Neue",Arial,sans-serif}
header{background:#111827;color:#f9fafb;padding:22px 0 20px}
.wrap{max-width:1120px;margin:0 auto;padding:0 24px}
header h1{margin:0 0 4px;font-size:22px;font-weight:650;letter-spacing:-.01em}
header .meta{color:#cbd2d9;font-size:13px}
header .meta span{margin-right:14px;white-space:nowrap}
.top{display:flex;justify-content:space-between;align-items:center;gap:16px}
.top>div{flex:1;min-width:0}
.verdict{flex:none}
.verdict{padding:8px 14px;border-radius:999px;font-weight:650;font-size:13px}
.verdict.pass{background:var(--greenbg);color:var(--green)}
.verdict.fail{background:var(--redbg);color:var(--red)}
.verdict.none{background:#e5e7eb;color:#374151}
nav{background:#fff;border-bottom:1px solid var(--line);position:sticky;top:0;z-index:2}
nav a{display:inline-block;padding:10px 12px 9px;color:var(--muted);text-decoration:none;font-size:13px;
border-bottom:2px solid transparent}
nav a:hover{color:var(--ink);border-bottom-color:var(--blue)}
main{padding:20px 0 40px}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:18px 20px;
margin:0 0 18px;box-shadow:0 1px 2px rgba(16,24,40,.04)}
section h2{margin:0 0 4px;font-size:16px;font-weight:650}
section p.lead{margin:0 0 14px;color:var(--muted);font-size:13px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:12px;margin-bottom:16px}
.card{border:1px solid var(--line);border-radius:8px;padding:12px 14px;background:#fbfcfd}
.card .k{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em;white-space:nowrap;
overflow:hidden;text-overflow:ellipsis}
.card .v{font-size:26px;font-weight:650;margin:2px 0 0;font-variant-numeric:tabular-nums}
.card .ci{color:var(--faint);font-size:12px;font-variant-numeric:tabular-nums}
.card .d{font-size:12px;margin-top:4px;font-variant-numeric:tabular-nums}
.up{color:var(--green)}.down{color:var(--red)}.flat{color:var(--muted)}
table{border-collapse:collapse;width:100%;font-size:13px;font-variant-numeric:tabular-nums}
th{text-align:left;color:var(--muted);font-weight:600;font-size:12px;border-bottom:1px solid var(--line);
padding:7px 10px;background:#fafbfc}
td{border-bottom:1px solid #f0f2f4;padding:6px 10px;vertical-align:middle}
td.num,th.num{text-align:right}
td.bad{color:#b91c1c}
tr:last-child td{border-bottom:none}
.pill{display:inline-block;padding:1px 9px;border-radius:999px;font-size:11.5px;font-weight:650}
.pill.pass{background:var(--greenbg);color:var(--green)}.pill.fail{background:var(--redbg);color:var(--red)}
.pill.skip{background:#eef2f7;color:var(--muted)}.pill.low{background:var(--amberbg);color:var(--amber)}
.bar{position:relative;height:8px;background:#eef2f7;border-radius:4px;min-width:90px}
.bar i{position:absolute;left:0;top:0;bottom:0;background:var(--blue);border-radius:4px}
.bar.bad i{background:#ef4444}
.fig{text-align:center;margin:6px 0 12px}
.fig img{max-width:100%;height:auto}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:18px}
@media (max-width:900px){.grid2{grid-template-columns:1fr}}
.note{background:var(--amberbg);color:var(--amber);border-radius:8px;padding:10px 14px;margin:0 0 18px;
font-size:13px}
.note ul{margin:4px 0 0 18px;padding:0}
.kv{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:6px 18px;font-size:13px}
.kv div span{color:var(--muted)}
.scroll{overflow-x:auto}
footer{color:var(--faint);font-size:12px;text-align:center;padding:10px 0 30px}
code{background:#f1f5f9;border-radius:4px;padding:1px 5px;font-size:12px}
"""


def _e(v: Any) -> str:
    return html.escape(str(v))


def _isnan(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _f(v: Any, nd: int = 3) -> str:
    return "—" if _isnan(v) else f"{float(v):.{nd}f}"


def _img(fig: Any, alt: str) -> str:
    b64, width = plots.to_base64(fig)
    return f'<div class="fig"><img alt="{_e(alt)}" width="{width}" src="data:image/png;base64,{b64}"></div>'


_BASELINE_NICE = {"tfidf_logreg": "TF-IDF baseline", "pixel_logreg": "pixel baseline"}


def _cards(rep: EvaluationReport) -> str:
    from transferops.evaluate.metrics import LOWER_IS_BETTER

    kind = "multilabel" if rep.task == "multilabel" else ("binary" if len(rep.labels) == 2 else "single")
    # the modality's cheap baseline (TF-IDF for text, pixels for images): the first one with test metrics
    named = [b for b in ("tfidf_logreg", *rep.baseline) if (rep.baseline.get(b) or {}).get("metrics")]
    base_name = named[0] if named else "tfidf_logreg"
    base = (rep.baseline.get(base_name) or {}).get("metrics") or {}
    base_nice = _BASELINE_NICE.get(base_name, base_name)
    out = []
    for k in _CARD_METRICS[kind]:
        if k not in rep.metrics:
            continue
        v = rep.metrics[k]
        ci = rep.ci.get(k)
        ci_s = f"95% CI {ci[0]:.3f} – {ci[1]:.3f}" if ci else "&nbsp;"
        d = ""
        if not _isnan(base.get(k)) and not _isnan(v):
            delta = float(v) - float(base[k])
            better = delta < 0 if k in LOWER_IS_BETTER else delta > 0
            cls = "flat" if abs(delta) < 5e-4 else ("up" if better else "down")
            d = f'<div class="d {cls}">{delta:+.3f} vs {_e(base_nice)} ({float(base[k]):.3f})</div>'
        else:
            d = '<div class="d flat">no baseline value</div>'
        out.append(f'<div class="card"><div class="k">{_e(_NICE.get(k, k))}</div><div class="v">{_f(v)}</div>'
                   f'<div class="ci">{ci_s}</div>{d}</div>')
    return f'<div class="cards">{"".join(out)}</div>'


def _metrics_table(rep: EvaluationReport) -> str:
    names = [b for b in rep.baseline if (rep.baseline[b] or {}).get("metrics")]
    head = "".join(f'<th class="num">{_e(b)}</th>' for b in names)
    rows = []
    for k, v in rep.metrics.items():
        ci = rep.ci.get(k)
        cells = "".join(f'<td class="num">{_f(rep.baseline[b]["metrics"].get(k))}</td>' for b in names)
        rows.append(f"<tr><td>{_e(_NICE.get(k, k))}</td><td class='num'><b>{_f(v, 4)}</b></td>"
                    f"<td class='num'>{f'{ci[0]:.3f} – {ci[1]:.3f}' if ci else '—'}</td>{cells}</tr>")
    return (f'<div class="scroll"><table><thead><tr><th>metric</th><th class="num">model</th>'
            f'<th class="num">95% CI (bootstrap)</th>{head}</tr></thead><tbody>{"".join(rows)}</tbody>'
            '</table></div>')


def _gates(rep: EvaluationReport) -> str:
    if not rep.gates:
        return ('<p class="lead">No gates were given. Pass <code>--gates gates.yaml</code> to turn this '
                'report into a release check (e.g. <code>macro_f1: "&gt;= 0.85"</code>).</p>')
    order = sorted(rep.gates, key=lambda g: (g.passed, g.skipped))
    rows = []
    for g in order:
        status = "skip" if g.skipped else ("pass" if g.passed else "fail")
        label = {"skip": "not gated", "pass": "PASS", "fail": "FAIL"}[status]
        rows.append(f"<tr><td><span class='pill {status}'>{label}</span></td><td>{_e(g.name)}</td>"
                    f"<td class='num'>{_f(g.observed, 4)}</td><td>{_e(g.required)}</td>"
                    f"<td>{_e(g.detail)}</td></tr>")
    n_bad = len(rep.failed_gates)
    lead = (f"{len(rep.gates) - n_bad} of {len(rep.gates)} checks passed." if n_bad
            else f"All {len(rep.gates)} checks passed.")
    return (f'<p class="lead">{lead} Slices below their <code>min_support</code> are reported, not gated.</p>'
            '<div class="scroll"><table><thead><tr><th>status</th><th>gate</th><th class="num">observed</th>'
            f'<th>required</th><th>detail</th></tr></thead><tbody>{"".join(rows)}</tbody></table></div>')


def _bar(v: Any, bad: bool = False) -> str:
    w = 0.0 if _isnan(v) else max(0.0, min(1.0, float(v))) * 100
    return f'<div class="bar{" bad" if bad else ""}"><i style="width:{w:.1f}%"></i></div>'


def _per_class(rep: EvaluationReport) -> str:
    rows = []
    for r in rep.per_class:
        rows.append(f"<tr><td>{_e(r['label'])}</td><td class='num'>{_f(r['precision'])}</td>"
                    f"<td class='num'>{_f(r['recall'])}</td><td class='num'><b>{_f(r['f1'])}</b></td>"
                    f"<td style='width:22%'>{_bar(r['f1'], r['f1'] < 0.5)}</td>"
                    f"<td class='num'>{r['support']}</td><td class='num'>{r['predicted']}</td>"
                    f"<td class='num'>{_f(r.get('roc_auc'))}</td></tr>")
    return ('<div class="scroll"><table><thead><tr><th>class</th><th class="num">precision</th>'
            '<th class="num">recall</th><th class="num">F1</th><th></th><th class="num">support</th>'
            '<th class="num">predicted</th><th class="num">ROC-AUC</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def _slices(rep: EvaluationReport) -> str:
    metric = rep.settings.get("slice_metric", "recall")
    gate_lines: dict[str, float] = {}
    for g in (rep.settings.get("gates") or {}).get("slices") or []:
        if g.get("metric") == metric and not g.get("cls"):
            gate_lines[g["column"]] = max(gate_lines.get(g["column"], 0.0), float(g["min"]))
    if not rep.slices:
        return '<p class="lead">No slices were evaluated.</p>'
    fig = _img(plots.slices_figure(rep.slices, metric, gate_lines), "slice metrics")
    rows = []
    for s in rep.slices:
        low = "<span class='pill low'>low support</span>" if s.get("low_support") else ""
        rows.append(f"<tr><td>{_e(s['column'])}</td><td>{_e(s['value'])} {low}</td>"
                    f"<td class='num'>{s['support']}</td><td class='num'>{_f(s.get('accuracy'))}</td>"
                    f"<td class='num'>{_f(s.get('macro_f1'))}</td><td class='num'>{_f(s.get('recall'))}</td>"
                    f"<td class='num'>{_f(s.get('precision'))}</td></tr>")
    lead = (f"Sorted worst first by <b>{_e(metric)}</b> within each column; slices with fewer than "
            f"{rep.settings.get('min_support', 20)} rows (or a gate's <code>min_support</code>) are marked "
            "low support. <code>text_length</code> is the automatic character-length quartile slice.")
    table = ('<div class="scroll"><table><thead><tr><th>column</th><th>slice</th><th class="num">support</th>'
             '<th class="num">accuracy</th><th class="num">macro F1</th><th class="num">recall</th>'
             f'<th class="num">precision</th></tr></thead><tbody>{"".join(rows)}</tbody></table></div>')
    return f'<p class="lead">{lead}</p>{fig}{table}'


def _robustness(rep: EvaluationReport) -> str:
    """Clean vs perturbed: one row per class, one column pair (F1, change) per perturbation."""
    rb = rep.robustness
    h = rb["headline"]
    pert = rb["perturbations"]
    head = "".join(f"<th class='num'>{_e(r['name'])}</th>" for r in pert)

    def cell(v: Any, clean: Any) -> str:
        d = (v - clean) if v is not None and clean is not None else None
        bad = d is not None and d < -0.05
        return (f"<td class='num{' bad' if bad else ''}'>{_f(v)}"
                f"{'' if d is None else f' <small>({d:+.3f})</small>'}</td>")

    rows = [f"<tr><td><b>all ({_e(h)})</b></td><td class='num'><b>{_f(rb['clean'][h])}</b></td>"
            + "".join(cell(r[h], rb["clean"][h]) for r in pert) + "</tr>"]
    for lbl in rep.labels:
        c = rb["clean"]["per_class"].get(lbl, {}).get("f1")
        rows.append(f"<tr><td>{_e(lbl)}</td><td class='num'>{_f(c)}</td>"
                    + "".join(cell(r["per_class"].get(lbl, {}).get("f1"), c) for r in pert) + "</tr>")
    rows.append("<tr><td>texts changed / decisions flipped</td><td></td>" + "".join(
        f"<td class='num'>{r['changed']:.0%} / {r['flipped']:.0%}</td>" for r in pert) + "</tr>")
    ex = "".join(f"<li><code>{_e(r['name'])}</code>: {_e((r.get('example') or {}).get('perturbed'))}</li>"
                 for r in pert[:8])
    lead = (f"The same rows scored clean and under each perturbation (seed {_e(rb['seed'])}, "
            f"{rb['rate']:.0%} of words touched). Cells are F1 per class (the first row: {_e(h)}), "
            "with the change from clean in brackets; drops over 0.05 are marked."
            + (f" Worst: <b>{_e(rb['worst'])}</b>." if rb.get("worst") else ""))
    table = ("<div class='scroll'><table id='robustness-table'><thead><tr><th>class</th>"
             f"<th class='num'>clean</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")
    return f"<p class='lead'>{lead}</p>{table}<p class='lead'>Examples of the first row:</p><ul>{ex}</ul>"


def _calibration(rep: EvaluationReport) -> str:
    c = rep.calibration
    if not c or not c.get("reliability_before"):
        return '<p class="lead">No calibration data.</p>'
    src = c.get("source")
    t = c.get("temperature")
    if src == "stored":
        lead = (f"The model applies temperature <b>T = {t:.3f}</b> (fitted on validation). ECE on this data: "
                f"<b>{_f(c['ece_before'])}</b> without it, <b>{_f(c.get('ece_after'))}</b> with it.")
    elif src == "preview":
        lead = (f"The model is <b>not calibrated</b>. Temperature scaling fitted on the validation split "
                f"(T = {t:.3f}) would move ECE on this data from <b>{_f(c['ece_before'])}</b> to "
                f"<b>{_f(c.get('ece_after'))}</b> — not applied; run <code>transferops calibrate</code> "
                "to store it.")
    else:
        lead = f"ECE (15 equal-width bins): <b>{_f(c['ece_before'])}</b>. No temperature is stored."
    fig = plots.reliability_figure(c["reliability_before"], c.get("reliability_after"), c["ece_before"],
                                   c.get("ece_after"), t if c.get("reliability_after") else None)
    return f'<p class="lead">{lead}</p>{_img(fig, "reliability diagram")}'


def _threshold(rep: EvaluationReport) -> str:
    s = rep.threshold
    if not s or not s.get("curve"):
        return '<p class="lead">No threshold curve.</p>'
    kind = s.get("kind")
    if kind == "binary":
        cur = s.get("current") or {}
        lead = (f"Decision threshold on P({_e(s.get('positive'))}): <b>{cur.get('threshold', 0.5):.3f}</b>"
                + (f" (chosen for <code>{_e(s['target'])}</code> on validation)" if s.get("target") else
                   " (default; choose one with <code>transferops calibrate --target recall&gt;=0.95</code>)")
                + f". Here: precision {_f(cur.get('precision'))}, recall {_f(cur.get('recall'))}, "
                  f"specificity {_f(cur.get('specificity'))}.")
    elif kind == "multilabel":
        th = s.get("thresholds") or {}
        lead = ("Micro precision/recall if one threshold were used for every label. Stored per-label "
                "thresholds: " + ", ".join(f"{_e(k)} {v:.2f}" for k, v in list(th.items())[:12]) + ".")
    else:
        lead = ("Multi-class models decide by argmax. The curve shows what a confidence threshold would "
                "give: accuracy of the rows decided automatically vs. the share decided (the rest go to "
                "review).")
    return f'<p class="lead">{lead}</p>{_img(plots.threshold_figure(s), "threshold curve")}'


def _search(rep: EvaluationReport) -> str:
    """Model-search leaderboard (validation only), the tuned decision rule and the learning curve."""
    m = rep.model
    out = ""
    sr = m.get("search")
    if sr:
        rows = []
        for c in sr.get("leaderboard", []):
            saved = " <b>← saved</b>" if c["name"] == sr.get("winner") else ""
            if c.get("status") != "ok":
                rows.append(f"<tr><td>{_e(c['name'])}</td><td colspan=5>{_e(c['status'])}: {_e(c.get('reason'))}"
                            "</td></tr>")
                continue
            ci = c.get("ci") or [None, None]
            rows.append(f"<tr><td>{_e(c['name'])}{saved}</td><td>{_f(c.get('value'))}</td>"
                        f"<td>[{_f(ci[0])}, {_f(ci[1])}]</td><td>{_f(c.get('train_seconds'), 1)}</td>"
                        f"<td>{_f(c.get('size_mb'), 1)}</td><td>{_f(c.get('latency_ms'), 2)}</td></tr>")
        out += (f"<p class=\"lead\">Candidates scored on the validation split only (never on test), "
                f"{_e(sr.get('seconds'))} s of a {_e(sr.get('budget_seconds'))} s budget. {_e(sr.get('reason'))}</p>"
                "<table><thead><tr><th>candidate</th><th>validation</th><th>95% CI</th><th>train s</th>"
                "<th>size MB</th><th>ms/text</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")
    d = m.get("decision")
    if d:
        offs = ", ".join(f"{_e(k)} {v:+.2f}" for k, v in d.get("offsets", {}).items())
        out += (f"<p>Decision rule: per-class logit offsets tuned on validation for {_e(d.get('metric'))} "
                f"({_f(d.get('validation_before'))} → {_f(d.get('validation_after'))}): {offs}.</p>")
    lc = m.get("learning_curve")
    if lc:
        out += ("<table><thead><tr><th>labels used</th><th>train rows</th><th>" + _e(lc.get("recipe")) +
                "</th><th>tuned baseline</th></tr></thead><tbody>" + "".join(
                    f"<tr><td>{p['fraction']:.1%}</td><td>{p['n_train']}</td><td>{_f(p.get('model'))}</td>"
                    f"<td>{_f(p.get('baseline'))}</td></tr>" for p in lc.get("points", [])) + "</tbody></table>")
    return out


def render(rep: EvaluationReport) -> str:
    """The report as one HTML string."""
    import transferops

    m, d = rep.model, rep.data
    n_bad = len(rep.failed_gates)
    verdict = ('<span class="verdict none">no gates</span>' if not rep.gates else
               f'<span class="verdict fail">{n_bad} of {len(rep.gates)} gates failed</span>' if n_bad else
               f'<span class="verdict pass">all {len(rep.gates)} gates passed</span>')
    split = "the model's held-out test split" if d.get("split") == "test" else _e(d.get("source"))
    meta = " ".join(f"<span>{x}</span>" for x in (
        f"data: {split}", f"{d.get('n')} rows", f"task: {_e(rep.task)}", f"{len(rep.labels)} labels",
        f"base: {_e(Path(str(m.get('base') or '—')).name)}", f"strategy: {_e(m.get('strategy') or '—')}",
        f"generated {_e(rep.created)}"))
    warn = ""
    if rep.warnings:
        warn = ('<div class="note"><b>Warnings</b><ul>' + "".join(f"<li>{_e(w)}</li>" for w in rep.warnings)
                + "</ul></div>")
    conf = _img(plots.confusion_figure(rep.confusion, rep.labels, multilabel=rep.task == "multilabel"),
                "confusion matrix")
    pos_note = " ROC-AUC is one-vs-rest, macro-averaged over classes."
    if rep.threshold.get("kind") == "binary":
        pos_note = (f" Precision, recall and F1 are for the positive class "
                    f"<b>{_e(rep.threshold.get('positive'))}</b>.")
    counts = ", ".join(f"{k}: {v}" for k, v in (d.get("label_counts") or {}).items())
    search_html = _search(rep)
    sections = (*SECTIONS, "model-search") if search_html else SECTIONS
    if rep.robustness:
        sections = (*sections, "robustness")
    nav = "".join(f'<a href="#{s}">{s.replace("-", " ").capitalize()}</a>' for s in sections)
    body = f"""
<header><div class="wrap"><div class="top"><div><h1>Evaluation report — {_e(m.get('name'))}</h1>
<div class="meta">{meta}</div></div>{verdict}</div></div></header>
<nav><div class="wrap">{nav}</div></nav>
<main class="wrap">
{warn}
<section id="headline"><h2>Headline metrics</h2>
<p class="lead">Point estimates with 95% bootstrap intervals ({rep.settings.get('n_bootstrap', 0)} resamples),
next to the TF-IDF + logistic-regression baseline measured on the same test split at training time.{pos_note}</p>
{_cards(rep)}{_metrics_table(rep)}</section>
<section id="gates"><h2>Gates</h2>{_gates(rep)}</section>
<section id="per-class"><h2>Per-class metrics</h2>
<p class="lead">Which categories underperform. Support is the number of true rows; predicted is how often the
model chose the class.</p>{_per_class(rep)}</section>
<section id="confusion"><h2>Confusion matrix</h2>
<p class="lead">Rows are true classes; colour is the row share, numbers are counts.</p>{conf}</section>
<section id="slices"><h2>Slices</h2>{_slices(rep)}</section>
{f'<section id="robustness"><h2>Robustness</h2>{_robustness(rep)}</section>' if rep.robustness else ''}
<section id="calibration"><h2>Calibration</h2>{_calibration(rep)}</section>
<section id="threshold"><h2>Threshold curve</h2>{_threshold(rep)}</section>
{f'<section id="model-search"><h2>Model search</h2>{search_html}</section>' if search_html else ''}
<section id="details"><h2>Details</h2><div class="kv">
<div><span>model path</span><br>{_e(m.get('path') or '—')}</div>
<div><span>test split sha256</span><br><code>{_e((d.get('sha256') or '—')[:16])}</code></div>
<div><span>temperature</span><br>{_f(m.get('temperature'))}</div>
<div><span>bootstrap seed</span><br>{_e(rep.settings.get('seed'))}</div>
<div><span>rows dropped (unknown labels)</span><br>{sum((d.get('dropped_unknown') or {}).values())}</div>
<div><span>label counts</span><br>{_e(counts)}</div>
</div></section>
</main>
<footer>transferops {transferops.__version__} · one self-contained file</footer>"""
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>Evaluation — {_e(m.get('name'))}</title><style>{CSS}</style></head>"
            f"<body>{body}</body></html>")


def write_report(rep: EvaluationReport, path: str | Path) -> Path:
    """Write the report to ``path`` (parent folders created)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(render(rep), encoding="utf-8")
    return p
