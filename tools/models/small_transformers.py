"""Small transformer architectures written out op by op, for ONNX export reference models.

No Hugging Face dependency: the blocks are spelled with plain Linear / LayerNorm / matmul /
softmax so the exported ONNX graph holds the primitive ops (MatMul, Softmax, Erf or Tanh GELU,
LayerNormalization, Gather, Where/Add masks) that Loupe must import and differentiate.

- `MiniBert`: BERT-style encoder (word + position + token-type embeddings, post-LN blocks,
  exact erf GELU, additive attention mask from a 0/1 mask, tanh pooler, classifier).
  Devlin et al. 2019, "BERT: Pre-training of Deep Bidirectional Transformers".
- `MiniGPT2`: GPT-2-style decoder (token + learned position embedding, pre-LN blocks, causal
  mask built with `triu`, tanh-approximate GELU, final LayerNorm, tied LM head).
  Radford et al. 2019, "Language Models are Unsupervised Multitask Learners".

Each model has an `embeds` entry point taking the word-embedding output so gradients with
respect to a float input can be taken (ONNX token-id inputs are integers, hence not
differentiable).
"""
from __future__ import annotations

import math

import torch
from torch import nn


class SelfAttention(nn.Module):
    """Multi-head scaled dot-product self-attention with an additive mask [B|1, 1, T, T]."""

    def __init__(self, hidden: int, heads: int):
        super().__init__()
        assert hidden % heads == 0
        self.heads, self.head_dim = heads, hidden // heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor, additive_mask: torch.Tensor | None) -> torch.Tensor:
        b, t, h = x.shape

        def split(y: torch.Tensor) -> torch.Tensor:
            return y.reshape(b, t, self.heads, self.head_dim).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        if additive_mask is not None:
            scores = scores + additive_mask
        probs = torch.softmax(scores, dim=-1)
        ctx = torch.matmul(probs, v).transpose(1, 2).reshape(b, t, h)
        return self.out(ctx)


class BertLayer(nn.Module):
    def __init__(self, hidden: int, heads: int, intermediate: int):
        super().__init__()
        self.attention = SelfAttention(hidden, heads)
        self.ln1 = nn.LayerNorm(hidden, eps=1e-12)
        self.fc1 = nn.Linear(hidden, intermediate)
        self.fc2 = nn.Linear(intermediate, hidden)
        self.ln2 = nn.LayerNorm(hidden, eps=1e-12)
        self.act = nn.GELU()  # exact (erf) GELU as in BERT

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.ln1(x + self.attention(x, mask))
        return self.ln2(x + self.fc2(self.act(self.fc1(x))))


class MiniBert(nn.Module):
    """BERT-style sequence classifier. Inputs: input_ids [B, T] int64, attention_mask [B, T]
    int64 (1 = attend, 0 = padding). Output: logits [B, num_labels]."""

    def __init__(self, vocab: int = 1000, hidden: int = 128, layers: int = 2, heads: int = 4,
                 intermediate: int = 512, max_len: int = 64, num_labels: int = 4):
        super().__init__()
        self.word = nn.Embedding(vocab, hidden)
        self.position = nn.Embedding(max_len, hidden)
        self.token_type = nn.Embedding(2, hidden)
        self.emb_ln = nn.LayerNorm(hidden, eps=1e-12)
        self.layers = nn.ModuleList(BertLayer(hidden, heads, intermediate) for _ in range(layers))
        self.pooler = nn.Linear(hidden, hidden)
        self.classifier = nn.Linear(hidden, num_labels)
        init_like_pretraining(self)

    def embeds(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Forward from the word-embedding output [B, T, H] (float) on."""
        t = inputs_embeds.shape[1]
        pos = torch.arange(t, device=inputs_embeds.device)
        x = inputs_embeds + self.position(pos)[None] + self.token_type.weight[0]
        x = self.emb_ln(x)
        mask = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * -10000.0
        for layer in self.layers:
            x = layer(x, mask)
        pooled = torch.tanh(self.pooler(x[:, 0]))
        return self.classifier(pooled)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.embeds(self.word(input_ids), attention_mask)


class GPT2Block(nn.Module):
    def __init__(self, hidden: int, heads: int):
        super().__init__()
        self.ln1 = nn.LayerNorm(hidden, eps=1e-5)
        self.attention = SelfAttention(hidden, heads)
        self.ln2 = nn.LayerNorm(hidden, eps=1e-5)
        self.fc1 = nn.Linear(hidden, 4 * hidden)
        self.fc2 = nn.Linear(4 * hidden, hidden)
        self.act = nn.GELU(approximate="tanh")  # GPT-2's "gelu_new"

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.ln1(x), mask)
        return x + self.fc2(self.act(self.fc1(self.ln2(x))))


class MiniGPT2(nn.Module):
    """GPT-2-style causal LM. Input: input_ids [B, T] int64. Output: logits [B, T, vocab]."""

    def __init__(self, vocab: int = 1000, hidden: int = 128, layers: int = 2, heads: int = 4,
                 max_len: int = 64):
        super().__init__()
        self.wte = nn.Embedding(vocab, hidden)
        self.wpe = nn.Embedding(max_len, hidden)
        self.blocks = nn.ModuleList(GPT2Block(hidden, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(hidden, eps=1e-5)
        init_like_pretraining(self)

    def embeds(self, inputs_embeds: torch.Tensor) -> torch.Tensor:
        """Forward from the token-embedding output [B, T, H] (float) on."""
        t = inputs_embeds.shape[1]
        pos = torch.arange(t, device=inputs_embeds.device)
        x = inputs_embeds + self.wpe(pos)[None]
        causal = torch.triu(torch.full((t, t), float("-inf"), device=x.device), diagonal=1)
        mask = causal[None, None]
        for block in self.blocks:
            x = block(x, mask)
        return torch.matmul(self.ln_f(x), self.wte.weight.t())

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.embeds(self.wte(input_ids))


def init_like_pretraining(model: nn.Module, std: float = 0.02) -> nn.Module:
    """BERT/GPT-2 initialisation (normal(0, 0.02) weights, zero biases, unit LayerNorm), so
    random-weight logits have realistic magnitudes instead of PyTorch's defaults."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=std)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return model


class EmbedsEntry(nn.Module):
    """Wraps a model's `embeds` method as `forward`, for exporting the float-input variant."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        return self.model.embeds(*args)
