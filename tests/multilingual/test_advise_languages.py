"""``advise`` detects the languages of the data and recommends a multilingual checkpoint when it is not
(mostly) English; English data keeps the bundled English checkpoints."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from transferops.select.advise import advise, detect_language


@pytest.mark.parametrize(("text", "lang"), [
    ("这款耳机音质很好，电池可以用一整周。", "zh"),
    ("このヘッドホンは音がとても良く、バッテリーも一週間もちます。", "ja"),
    ("이 헤드폰은 음질이 정말 좋아요", "ko"),
    ("Это хороший товар, и я его не верну, как и все.", "ru"),
    ("Наушники звучат отлично", "cyrillic"),
    ("The film won three awards and the cast was praised by the critics", "en"),
    ("Die Lieferung war schnell und das ist nicht schlecht für den Preis", "de"),
])
def test_detect_language(text: str, lang: str) -> None:
    assert detect_language(text) == lang


def test_non_english_data_gets_a_multilingual_checkpoint(reviews_csv: Path) -> None:
    a = advise(reviews_csv, checkpoints=["minilm-l6"])
    rec = a.recommendation
    assert sum(v for k, v in a.profile.languages.items() if k not in ("en", "unknown")) > 0.10
    assert rec.checkpoints[:2] == ["use-multilingual", "multilingual-e5-small"] and rec.strategy == "head"
    assert "multilingual" in rec.approach
    assert any("--checkpoint use-multilingual" in c and "--strategy head" in c for c in rec.commands)
    finding = next(f for f in a.findings if f.rule == "no-relevant-checkpoint")
    assert "use-multilingual" in finding.advice and "--strategy head" in finding.advice
    assert "use-multilingual" in a.table()


def test_english_data_keeps_the_english_checkpoint(bbc_small: pd.DataFrame) -> None:
    rec = advise(bbc_small, checkpoints=["minilm-l6"]).recommendation
    assert rec.checkpoints == ["minilm-l6"] and "multilingual" not in rec.approach
