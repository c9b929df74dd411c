"""A window of the prediction log, prepared for drift: every quantity as its reference-profile bin.

Two producers, one type: :meth:`PreparedWindow.from_frame` bins rows fetched into a DataFrame;
:func:`transferops.monitor.fastread.binned_window` bins them in the database and fetches one packed
integer per row (or counts per bin combination). Every drift signal reads only this type, so both
paths compute the same numbers with the same code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from transferops.monitor.profile import HIGH_CONFIDENCE, ReferenceProfile, label_keys

REVIEW_ROUTES = frozenset({"review"})


class FeatureBins(NamedTuple):
    """One input feature of the window: raw values (``None`` when binned in the database), which
    rows have a value, and each row's bin in the reference histogram."""

    values: np.ndarray | None
    ok: np.ndarray
    bins: np.ndarray

    def slice(self, sl: slice) -> FeatureBins:
        return FeatureBins(None if self.values is None else self.values[sl], self.ok[sl], self.bins[sl])


@dataclass
class PreparedWindow:
    """Row-aligned arrays, in time order (row ``i`` of every array is the same prediction).

    ``codes`` index the rows of ``matrix`` (distinct label value → counts per reference class, last
    column: a label the reference never saw; ``-1``: no label), so a multi-label row counts once per
    label. ``step > 1``: the rows are a systematic sample of every ``step``-th prediction of the
    ``n_total`` in the window.
    """

    n: int
    codes: np.ndarray
    matrix: np.ndarray
    conf_bin: np.ndarray
    conf_ok: np.ndarray
    high: np.ndarray
    features: dict[str, FeatureBins] = field(default_factory=dict)
    #: (is review, route known) per row; ``None`` when the window has no route column
    review: tuple[np.ndarray, np.ndarray] | None = None
    #: per-row times (``None`` when binned in the database: then ``t_lo``/``t_hi`` and ``bucket``)
    ts: np.ndarray | None = None
    t_lo: float | None = None
    t_hi: float | None = None
    bucket: np.ndarray | None = None
    step: int = 1
    #: predictions in the window (``None`` on a slice: then ``n * step``)
    n_total: int | None = None

    @property
    def n_represented(self) -> int:
        """How many predictions the rows stand for (the report's ``n``)."""
        return int(self.n_total) if self.step > 1 and self.n_total is not None else self.n * self.step

    @property
    def bounds(self) -> tuple[float | None, float | None]:
        if self.ts is not None:
            return (float(self.ts.min()), float(self.ts.max())) if self.n else (None, None)
        return self.t_lo, self.t_hi  # binned in the database: only the window's bounds are known

    def slice(self, sl: slice) -> PreparedWindow:
        """Rows ``sl`` (a time bucket: rows are in time order)."""
        if sl == slice(None):
            return self
        codes = self.codes[sl]
        return PreparedWindow(
            n=len(codes), codes=codes, matrix=self.matrix, conf_bin=self.conf_bin[sl], conf_ok=self.conf_ok[sl],
            high=self.high[sl], features={k: f.slice(sl) for k, f in self.features.items()},
            review=None if self.review is None else (self.review[0][sl], self.review[1][sl]),
            ts=None if self.ts is None else self.ts[sl], t_lo=self.t_lo, t_hi=self.t_hi,
            bucket=None if self.bucket is None else self.bucket[sl], step=self.step, n_total=None)

    # ------------------------------------------------------------------ producers
    @classmethod
    def empty(cls, n_labels: int) -> PreparedWindow:
        z = np.zeros(0, dtype=np.int64)
        return cls(n=0, codes=z, matrix=np.eye(n_labels + 1), conf_bin=z, conf_ok=z.astype(bool),
                   high=z.astype(bool), bucket=z, n_total=0)

    @classmethod
    def from_frame(cls, window: pd.DataFrame, profile: ReferenceProfile) -> PreparedWindow:
        """Bin a DataFrame of logged predictions (columns of ``DRIFT_COLUMNS``) against ``profile``."""
        n = len(window)
        order = None
        if "ts" in window.columns and n:
            ts = np.asarray(window["ts"], dtype=np.float64)
            if np.any(np.diff(ts) < 0):
                order = np.argsort(ts, kind="stable")
                ts = ts[order]
        else:
            ts = np.zeros(n)

        def col(name: str, dtype: Any = np.float64) -> np.ndarray:
            v = np.asarray(window[name], dtype=dtype)
            return v[order] if order is not None else v

        if n:
            codes, matrix = label_codes(col("label", object), profile.labels)
        else:
            codes, matrix = np.zeros(0, int), np.zeros((0, 1))
        conf = col("confidence") if n else np.zeros(0)
        features: dict[str, FeatureBins] = {}
        for fname, fh in profile.features.items():
            if fname not in window.columns or not n:
                continue
            vals = pd.to_numeric(pd.Series(col(fname, object)), errors="coerce").to_numpy(dtype=np.float64)
            ok = np.isfinite(vals)
            if ok.any():
                features[fname] = FeatureBins(vals, ok, fh.bin_of(vals))
        review = None
        if "route" in window.columns and n:
            routes = pd.Series(col("route", object))
            review = (routes.isin(list(REVIEW_ROUTES)).to_numpy(), routes.notna().to_numpy())
        return cls(n=n, codes=codes, matrix=matrix, conf_bin=profile.confidence.bin_of(conf),
                   conf_ok=np.isfinite(conf), high=conf >= HIGH_CONFIDENCE, features=features, review=review,
                   ts=ts, n_total=n)


def label_codes(labels: Any, reference: tuple[str, ...] | list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes per row and a (unique label → class counts) matrix: strings are handled once
    per distinct value, not once per row (a million rows have a handful of labels)."""
    codes, uniq = pd.factorize(pd.Series(np.asarray(labels, dtype=object)), use_na_sentinel=True)
    idx = {lab: i for i, lab in enumerate(reference)}
    k = len(reference)
    matrix = np.zeros((len(uniq), k + 1))
    for u, value in enumerate(uniq):
        for key in label_keys([value]):  # a multi-label row counts once per label
            matrix[u, idx.get(key, k)] += 1
    return np.asarray(codes), matrix


__all__ = ["REVIEW_ROUTES", "FeatureBins", "PreparedWindow", "label_codes"]
