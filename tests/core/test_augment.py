"""Text perturbations (``transferops.modality.augment``) and ``train --augment`` (train rows only)."""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd
import pytest

from transferops.errors import ConfigError
from transferops.finetune.config import TrainConfig
from transferops.modality.augment import TextAugmenter, perturbation_names, register_perturbation
from transferops.modality.augment.base import _REGISTRY

TEXTS = ["I hate this product so much, really!", "Shares in the bank fell sharply on Monday.",
         "The striker scored twice in the second half.", "ok"]
BUILTIN = ["char_delete", "char_insert", "char_substitute", "char_swap", "keyboard", "leetspeak",
           "token_mask", "token_replace"]


def test_every_builtin_is_registered_changes_text_and_is_seeded() -> None:
    assert perturbation_names() == BUILTIN
    aug = TextAugmenter(rate=0.3, seed=3).fit(TEXTS)
    again = TextAugmenter(rate=0.3, seed=3).fit(TEXTS)
    other = TextAugmenter(rate=0.3, seed=4).fit(TEXTS)
    for name in BUILTIN:
        out = aug.perturb(TEXTS[:3], name)
        assert out == again.perturb(TEXTS[:3], name), name           # same seed, same output
        assert all(a != b for a, b in zip(out, TEXTS[:3], strict=True)), (name, out)
        assert out != other.perturb(TEXTS[:3], name) or name == "token_mask", name
        # punctuation and the words left alone survive
        assert all(o.rstrip()[-1] == t.rstrip()[-1] for o, t in zip(out, TEXTS[:3], strict=True)), (name, out)


def test_character_perturbations_do_what_their_names_say() -> None:
    aug = TextAugmenter(rate=1.0, seed=0).fit(TEXTS)
    text = "hate"
    assert aug.perturb([text], "leetspeak")[0] in {"h@te", "h4te", "ha7e", "hat3"}
    assert len(aug.perturb([text], "char_insert")[0]) == 5
    assert len(aug.perturb([text], "char_delete")[0]) == 3
    sub = aug.perturb([text], "char_substitute")[0]
    assert len(sub) == 4 and sum(a != b for a, b in zip(sub, text, strict=True)) == 1
    swap = aug.perturb(["word"], "char_swap")[0]
    assert sorted(swap) == sorted("word") and swap != "word"
    kb = aug.perturb(["g"], "keyboard")[0]  # one-letter words are left alone (min length 2)
    assert kb == "g"
    kb = aug.perturb(["go"], "keyboard")[0]
    from transferops.modality.augment.chars import KEYBOARD

    assert kb != "go" and (kb[0] in KEYBOARD["g"] or kb[1] in KEYBOARD["o"])
    assert aug.perturb(["the new job title"], "token_mask")[0] == "[MASK] [MASK] [MASK] [MASK]"
    replaced = aug.perturb(["the new job title"], "token_replace")[0].split()
    assert all(w in aug.context_.vocab for w in replaced if w != "new")  # words of >= 3 letters replaced
    assert aug.perturb([""], "leetspeak") == [""]  # empty text stays empty


def test_rate_controls_the_share_of_words_touched() -> None:
    words = " ".join(f"word{i}" for i in range(40))
    low = TextAugmenter(["token_mask"], rate=0.1).perturb([words], "token_mask")[0]
    high = TextAugmenter(["token_mask"], rate=0.5).perturb([words], "token_mask")[0]
    assert low.count("[MASK]") == 4 and high.count("[MASK]") == 20


def test_a_new_perturbation_is_one_decorated_function() -> None:
    @register_perturbation("shout")
    def shout(text: str, rng: random.Random, rate: float, ctx: object) -> str:
        return text.upper()

    try:
        assert "shout" in perturbation_names()
        assert TextAugmenter(["shout"]).augment(["hi there"]) == (["HI THERE"], ["shout"])
        TrainConfig(augment=1.0, augment_perturbations=["shout"])
    finally:
        del _REGISTRY["shout"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"augment": -0.5}, "augment: must be in [0, 20]"),
    ({"augment_strength": 0.0}, "augment_strength: must be in (0, 1]"),
    ({"augment_perturbations": ["typo"]}, "augment_perturbations: 'typo' is not one of"),
    ({"augment_perturbations": []}, "augment_perturbations: expected a non-empty list"),
    ({"augment_slice": ["career"]}, "augment_slice: expected COLUMN=VALUE"),
    ({"augment_slice_copies": 0}, "augment_slice_copies: must be in [1, 100]"),
])
def test_config_rejects_bad_augmentation_settings(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(").replace("]", r"\]")
                       .replace(")", r"\)")):
        TrainConfig(**kwargs)


def _tiny(tiny_bert: Path, **kw: object) -> dict:
    return {"checkpoint": str(tiny_bert), "strategy": "full", "epochs": 1, "lr": 5e-3, "max_length": 32,
            "batch_size": 16, "check_near_duplicates": False, "baseline": False, "seed": 0, **kw}


def test_train_augments_train_rows_only_and_records_it(tiny_bert: Path, bbc_small: pd.DataFrame,
                                                       tmp_path: Path) -> None:
    import transferops

    df = bbc_small.copy()
    df["career"] = ["change" if i % 10 == 0 else "stay" for i in range(len(df))]
    res = transferops.train(df, out=tmp_path / "aug", slice_columns=["career"],
                            **_tiny(tiny_bert, augment=0.5, augment_slice=["career=change"],
                                    augment_perturbations=["leetspeak", "keyboard"]))
    m = res.manifest
    a = m["augmentation"]
    sizes = m["splits"]["sizes"]
    n_train = sizes["train"]
    slice_rows = a["slices"][0]["train_rows"]
    assert a["applied_to"] == "train" and a["train_rows"] == n_train
    assert a["rows_added"] == round(0.5 * n_train) + 2 * slice_rows
    assert set(a["by_perturbation"]) <= {"leetspeak", "keyboard"}
    assert sum(a["by_perturbation"].values()) == a["rows_added"]
    assert a["slices"][0] == {"column": "career", "value": "change", "train_rows": slice_rows,
                              "rows_added": 2 * slice_rows}
    # the saved splits are the real rows: nothing augmented reaches validation or test
    saved = {s: pd.read_parquet(tmp_path / "aug" / "data" / f"{s}.parquet") for s in ("train", "validation", "test")}
    assert len(saved["train"]) == n_train and len(saved["test"]) == sizes["test"]
    originals = set(df["text"])
    assert set(saved["validation"]["text"]) <= originals and set(saved["test"]["text"]) <= originals
    assert m["config"]["augment"] == 0.5
    # the model trained on the real rows plus the copies (one epoch: every row seen once)
    assert m["training"]["examples_seen"] == n_train + a["rows_added"]
    assert m["splits"]["train_used"] == n_train


def test_train_without_augment_writes_no_entry_and_bad_slice_is_a_clear_error(
        tiny_bert: Path, bbc_small: pd.DataFrame, tmp_path: Path) -> None:
    import transferops

    with pytest.raises(ConfigError, match="augment_slice: column 'career' is not in the training data; pass "
                                          "--slice-column career"):
        transferops.train(bbc_small, out=tmp_path / "bad", **_tiny(tiny_bert, augment_slice=["career=change"]))
    with pytest.raises(ConfigError, match="augment_slice: no training row has label='nope'"):
        transferops.train(bbc_small, out=tmp_path / "bad2", slice_columns=["label"],
                          **_tiny(tiny_bert, augment_slice=["label=nope"]))


def test_train_cli_augment_flags(tiny_bert: Path, bbc_small_csv: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    from transferops.artifacts import read_manifest
    from transferops.cli.main import main

    out = tmp_path / "cli"
    yml = tmp_path / "train.yaml"
    yml.write_text("baseline: false\naugment_strength: 0.3\naugment: 3\n")  # the flag below wins for augment
    rc = main(["-q", "train", "--data", str(bbc_small_csv), "--out", str(out), "--checkpoint", str(tiny_bert),
               "--config", str(yml), "--strategy", "full", "--epochs", "1", "--max-length", "32",
               "--no-near-duplicates", "--augment", "1", "--augment-perturbations", "token_mask,char_swap"])
    assert rc == 0
    a = read_manifest(out)["augmentation"]
    assert a["rows_added"] == a["train_rows"] and a["strength"] == 0.3
    assert a["perturbations"] == ["token_mask", "char_swap"]
    rc = main(["-q", "train", "--data", str(bbc_small_csv), "--out", str(tmp_path / "x"), "--checkpoint",
               str(tiny_bert), "--augment-perturbations", "typo"])
    assert rc == 2
    assert "augment_perturbations: 'typo' is not one of" in capsys.readouterr().err
    rc = main(["-q", "train", "--data", str(bbc_small_csv), "--out", str(tmp_path / "y"), "--checkpoint",
               str(tiny_bert), "--augment-slice", "career"])
    assert rc == 2
    assert "augment_slice: expected COLUMN=VALUE (e.g. career=change), got 'career'" in capsys.readouterr().err


def test_augment_train_keeps_labels_and_columns_and_is_reproducible() -> None:
    from transferops.data import ColumnMap, LabeledData
    from transferops.finetune.augment import augment_train

    frame = pd.DataFrame({"text": [f"the market rallied on day {i} of trading" for i in range(20)],
                          "label": [["economy", "people"] if i % 2 else ["economy"] for i in range(20)],
                          "career": ["change" if i < 3 else "stay" for i in range(20)], "rid": range(20)})
    data = LabeledData(frame, "multilabel", ["economy", "people"], ColumnMap(slices=["career"]))
    cfg = TrainConfig(augment=0.25, augment_slice=["career=change"], augment_slice_copies=3, seed=7)
    out, entry = augment_train(data, cfg)
    again, _ = augment_train(data, cfg)
    assert out.frame.equals(again.frame)
    assert len(out) == 20 + 5 + 9 and entry["rows_added"] == 14
    copies = out.frame.iloc[20:]
    assert list(out.frame.columns) == ["text", "label", "career", "rid"]
    assert (copies["career"] == "change").sum() >= 9  # the slice's 3 rows x 3 copies (+ any global ones)
    for _, row in copies.iterrows():  # each copy keeps its source row's labels and columns
        assert row["label"] == frame["label"][row["rid"]] and row["career"] == frame["career"][row["rid"]]
    assert all(t not in set(frame["text"]) for t in copies["text"])
    assert augment_train(data, TrainConfig())[1] == {}
