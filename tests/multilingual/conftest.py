"""Multilingual fixtures: the review sentences (tests/fixtures/multilingual_reviews.csv, written for these
tests in nine languages; no accuracy is claimed on them) and a tiny random XLM-R with a tokenizer trained
here on those sentences (the architecture of a real multilingual checkpoint, none of its weights)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "multilingual_reviews.csv"


@pytest.fixture(scope="session")
def reviews_csv() -> Path:
    return FIXTURE


@pytest.fixture(scope="session")
def reviews() -> pd.DataFrame:
    return pd.read_csv(FIXTURE)


@pytest.fixture(scope="session")
def tiny_xlmr(tmp_path_factory: pytest.TempPathFactory, reviews: pd.DataFrame) -> Path:
    """A 2-layer, 32-wide random XLM-RoBERTa saved as a HF folder, with a Unigram tokenizer (the XLM-R
    kind) trained on the fixture sentences and wrapped as a ``PreTrainedTokenizerFast``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast, XLMRobertaConfig, XLMRobertaForMaskedLM

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # XLM-R's ids: <s>=0, <pad>=1, </s>=2, <unk>=3
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.train_from_iterator(reviews["text"].tolist(), trainers.UnigramTrainer(
        vocab_size=600, special_tokens=specials, unk_token="<unk>"))
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<pad>", mask_token="<mask>", cls_token="<s>", sep_token="</s>",
                                   model_max_length=64)
    assert [fast.convert_tokens_to_ids(s) for s in specials[:4]] == [0, 1, 2, 3]
    torch.manual_seed(0)
    cfg = XLMRobertaConfig(vocab_size=fast.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=66, pad_token_id=1, bos_token_id=0,
                           eos_token_id=2)
    out = tmp_path_factory.mktemp("tiny-xlmr")
    XLMRobertaForMaskedLM(cfg).save_pretrained(str(out), safe_serialization=True)
    fast.save_pretrained(str(out))
    return out
