"""Evaluating a multi-task model: the single-task evaluation, once per task.

Each task is evaluated by :func:`transferops.evaluate.api.evaluate` on the task's view of the model
(:meth:`transferops.artifacts.multitask.MultiTaskModel.task_view`: its labels, its stored decision rule, its
logits block of the one forward pass) and the rows that carry the task's label — so every section of the
single-task report (headline metrics with bootstrap intervals, per class, confusion, slices, calibration,
threshold curve, gates, robustness) is there per task. The HTML report puts one such report per task on
one page; the test-set discipline records the evaluation once for the model, not once per task.
"""

from __future__ import annotations

import html as _html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from transferops._util import utcnow
from transferops.evaluate.report import EvaluationReport

KIND = "multitask"


def is_multitask(path: str | Path) -> bool:
    """The folder holds a multi-task artifact."""
    from transferops.artifacts.manifest import read_manifest

    p = Path(path)
    return p.is_dir() and (p / "transferops.json").exists() and read_manifest(p).kind == KIND


@dataclass
class MultiTaskEvaluation:
    """One :class:`EvaluationReport` per task."""

    model: dict[str, Any]
    reports: dict[str, EvaluationReport]
    warnings: list[str] = field(default_factory=list)
    created: str = field(default_factory=utcnow)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.reports.values())

    @property
    def gates(self) -> list[Any]:
        return [g for r in self.reports.values() for g in r.gates]

    def to_dict(self) -> dict[str, Any]:
        return {"created": self.created, "model": self.model, "passed": self.passed, "warnings": self.warnings,
                "tasks": {name: r.to_dict() for name, r in self.reports.items()}}

    def to_json(self, path: str | Path) -> Path:
        from transferops._util import write_json

        write_json(path, self.to_dict())
        return Path(path)

    def to_html(self, path: str | Path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(render(self), encoding="utf-8")
        return p

    def metrics_df(self) -> pd.DataFrame:
        """One row per task and headline metric."""
        return pd.concat([r.metrics_df().assign(task=name) for name, r in self.reports.items()], ignore_index=True)

    def summary(self) -> str:
        lines = [f"multi-task evaluation of {self.model.get('name')} ({len(self.reports)} tasks)"]
        for name, r in self.reports.items():
            lines += ["", f"== task {name} ({r.task}, {len(r.labels)} labels) ==", r.summary()]
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def evaluate_multitask(model_or_path: Any, data: str | Path | pd.DataFrame | None = None, *,
                       tasks: Sequence[str] | None = None, text_column: str = "text",
                       gates: Any = None, report: str | Path | None = None, json_path: str | Path | None = None,
                       record: bool = True, **kw: Any) -> MultiTaskEvaluation:
    """Evaluate every task (or ``tasks``) of a multi-task model; ``data`` (default: the model's test split)
    holds the task columns the model was trained on (rows missing a task's label are skipped for it).
    ``gates`` apply to every task; the other keywords go to :func:`~transferops.evaluate.api.evaluate`.

    >>> ev = evaluate_multitask("runs/news-mt", report="report.html")       # doctest: +SKIP
    >>> ev.reports["topic"].metrics["macro_f1"]                              # doctest: +SKIP
    """
    import warnings

    from transferops.artifacts.multitask import MultiTaskModel
    from transferops.constants import LABEL_COL
    from transferops.data import read_table
    from transferops.errors import DataError
    from transferops.evaluate.api import evaluate
    from transferops.evaluate.discipline import TestSetReuseWarning, record_test_evaluation

    model = model_or_path if isinstance(model_or_path, MultiTaskModel) else MultiTaskModel(model_or_path)
    names = list(tasks) if tasks else model.task_names
    for n in names:
        model.task_view(n)  # an unknown task is an error naming the tasks
    frame = None
    if data is not None:
        frame = data.reset_index(drop=True) if isinstance(data, pd.DataFrame) else read_table(data)
    out: dict[str, EvaluationReport] = {}
    warns: list[str] = []
    for name in names:
        view = model.task_view(name)
        if frame is None:
            sub: Any = None
        else:
            col = str(view.manifest.get("column") or name)
            if col not in frame.columns:
                raise DataError(f"data: no column '{col}' for task {name!r} (columns: "
                                f"{', '.join(map(str, frame.columns[:20]))})")
            keep = frame[col].notna() & (frame[col].astype(str).str.strip() != "")
            sub = frame[keep]
            if col != LABEL_COL:  # the task's column is the label of its evaluation
                sub = sub.drop(columns=[LABEL_COL], errors="ignore").rename(columns={col: LABEL_COL})
            sub = sub.reset_index(drop=True)
        out[name] = evaluate(view, sub, text_column=text_column, gates=gates, record=False,
                             label_sep=view.manifest.get("label_sep") if view.task == "multilabel" else None, **kw)
    sha = model.manifest.test_sha256
    if data is None and record and sha:
        for w in record_test_evaluation(model, sha):
            warnings.warn(w, TestSetReuseWarning, stacklevel=2)
            warns.append(w)
    ev = MultiTaskEvaluation({"name": model.name, "path": str(model.path), "kind": KIND, "tasks": model.tasks},
                             out, warns)
    if json_path:
        ev.to_json(json_path)
    if report:
        ev.to_html(report)
    return ev


def render(ev: MultiTaskEvaluation) -> str:
    """One HTML page: a section per task holding that task's full single-task report."""
    import transferops
    from transferops.evaluate.html import CSS
    from transferops.evaluate.html import render as render_one

    parts, nav = [], []
    for name, rep in ev.reports.items():
        page = render_one(rep)
        main = page.split('<main class="wrap">', 1)[1].rsplit("</main>", 1)[0]
        main = main.replace('id="', f'id="{name}-').replace('href="#', f'href="#{name}-')
        verdict = "passed" if rep.passed else f"{len(rep.failed_gates)} gate(s) failed"
        parts.append(f'<section id="task-{_html.escape(name)}" class="task"><h1>Task: {_html.escape(name)}</h1>'
                     f'<p class="lead">{_html.escape(rep.task)}, {len(rep.labels)} labels, '
                     f'{rep.data.get("n")} rows with this task\'s label; gates: {verdict}.</p>{main}</section>')
        nav.append(f'<a href="#task-{_html.escape(name)}">{_html.escape(name)}</a>')
    title = _html.escape(str(ev.model.get("name")))
    warn = "".join(f"<li>{_html.escape(w)}</li>" for w in ev.warnings)
    body = (f'<header><div class="wrap"><h1>Multi-task evaluation — {title}</h1><div class="meta">'
            f"<span>{len(ev.reports)} tasks, one forward pass</span><span>generated {_html.escape(ev.created)}"
            f'</span></div></div></header><nav><div class="wrap">{"".join(nav)}</div></nav><main class="wrap">'
            + (f'<div class="note"><b>Warnings</b><ul>{warn}</ul></div>' if warn else "")
            + "".join(parts) + f"</main><footer>transferops {transferops.__version__} · one self-contained file"
            "</footer>")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width, initial-scale=1"><title>Evaluation — {title}</title><style>{CSS}'
            f"</style></head><body>{body}</body></html>")


def task_metrics(ev: MultiTaskEvaluation) -> Mapping[str, dict[str, float]]:
    return {name: dict(r.metrics) for name, r in ev.reports.items()}


__all__ = ["MultiTaskEvaluation", "evaluate_multitask", "is_multitask", "render", "task_metrics"]
