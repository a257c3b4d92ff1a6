"""Llama 3 (1B, 8B and a tiny smoke-test size), in the shape of nanoGPT's model.py, architecture-identical to
torchtitan's (pytorch/torchtitan, torchtitan/models/llama3/__init__.py and models/common: the `1B` and `8B` flavours).

What makes it Llama 3 rather than GPT-2, each as torchtitan builds it:
- RMSNorm (eps 1e-5) before attention and before the feed-forward, and once more before the output head;
- rotary position embeddings on adjacent pairs of each head's dimensions (ComplexRoPE), theta 500,000, with
  Llama 3.1's frequency scaling (factor 8, low/high frequency factors 1 and 4, original context 8,192);
- grouped-query attention (32 query heads sharing 8 key/value heads), q, k and v from one fused projection,
  causal `scaled_dot_product_attention` with torchtitan's backend priority (cuDNN, flash, math);
- SwiGLU feed-forward, w2(silu(w1 x) * w3 x), hidden width 8/3 x dim scaled by ffn_dim_multiplier and rounded up
  to multiple_of (torchtitan's compute_ffn_hidden_dim);
- no biases anywhere; the 1B ties its output head to the token embedding, the 8B does not.

Parameter counts (8,030,261,248 for 8B; 1,235,814,400 for 1B) and FLOPs per token are held to torchtitan's formula in
tests/test_llama.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel


@dataclass(frozen=True)
class LlamaConfig:
    dim: int = 4096
    n_layers: int = 32
    n_heads: int = 32
    n_kv_heads: int = 8
    vocab_size: int = 128256
    multiple_of: int = 1024
    ffn_dim_multiplier: float | None = 1.3
    norm_eps: float = 1e-5
    rope_theta: float = 500_000.0
    rope_scaling: bool = True  # Llama 3.1's, as torchtitan's flavours set it (scaling="llama")
    tie_embeddings: bool = False
    max_seq_len: int = 8192  # the longest sequence the rotary table covers (torchtitan: 131,072; same values)

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    @property
    def ffn_hidden_dim(self) -> int:
        """torchtitan's compute_ffn_hidden_dim: 2/3 of 4 x dim, times the multiplier, rounded up to multiple_of."""
        hidden = int(2 * 4 * self.dim / 3)
        if self.ffn_dim_multiplier is not None:
            hidden = int(self.ffn_dim_multiplier * hidden)
        return self.multiple_of * ((hidden + self.multiple_of - 1) // self.multiple_of)


SIZES = {
    "8B": LlamaConfig(),
    "1B": LlamaConfig(dim=2048, n_layers=16, ffn_dim_multiplier=1.5, tie_embeddings=True),
    # Llama 3's architecture at a size a CPU trains in a fraction of a second a step: the smoke test for the
    # Llama workloads' defaults (FSDP, selective activation checkpointing, AdamW) without a GPU
    "tiny": LlamaConfig(
        dim=64,
        n_layers=2,
        n_heads=4,
        n_kv_heads=2,
        vocab_size=1024,
        multiple_of=32,
        ffn_dim_multiplier=None,
        max_seq_len=128,
    ),
}


def rotary_table(config: LlamaConfig) -> torch.Tensor:
    """cis(position x frequency) for every position and frequency (torchtitan's ComplexRoPE cache), complex64."""
    dim = config.head_dim
    freqs = 1.0 / (config.rope_theta ** (torch.arange(0, dim, 2)[: dim // 2].float() / dim))
    if config.rope_scaling:  # Llama 3.1: slow the low frequencies by 8, blend the middle band, keep the high ones
        factor, low_freq_factor, high_freq_factor, original_context = 8.0, 1.0, 4.0, 8192
        wavelen = 2 * math.pi / freqs
        high_freq_wavelen = original_context / high_freq_factor
        low_freq_wavelen = original_context / low_freq_factor
        freqs = torch.where(wavelen > low_freq_wavelen, freqs / factor, freqs)
        smooth = (original_context / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
        smoothed = (1 - smooth) * freqs / factor + smooth * freqs
        is_medium = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
        freqs = torch.where(is_medium, smoothed, freqs)
    angles = torch.outer(torch.arange(config.max_seq_len, device=freqs.device), freqs).float()
    return torch.polar(torch.ones_like(angles), angles)


def apply_rotary(x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Rotate (batch, seq, heads, head_dim) by the table's first seq rows, pairing adjacent dimensions."""
    pairs = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
    rotated = pairs * table[: x.shape[1]].view(1, x.shape[1], 1, -1)
    return torch.view_as_real(rotated).flatten(3).type_as(x)


class Attention(nn.Module):
    # torchtitan's ScaledDotProductAttention: cuDNN first, then flash, then the reference kernel
    BACKENDS = [SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.MATH]

    def __init__(self, config: LlamaConfig):
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = config.n_heads, config.n_kv_heads, config.head_dim
        self.wqkv = nn.Linear(config.dim, (config.n_heads + 2 * config.n_kv_heads) * self.head_dim, bias=False)
        self.wo = nn.Linear(config.n_heads * self.head_dim, config.dim, bias=False)

    def forward(self, x: torch.Tensor, rotary: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        q, k, v = self.wqkv(x).split(
            [self.n_heads * self.head_dim, self.n_kv_heads * self.head_dim, self.n_kv_heads * self.head_dim], dim=-1
        )
        q = apply_rotary(q.view(B, T, self.n_heads, self.head_dim), rotary)
        k = apply_rotary(k.view(B, T, self.n_kv_heads, self.head_dim), rotary)
        v = v.view(B, T, self.n_kv_heads, self.head_dim)
        with sdpa_kernel(self.BACKENDS, set_priority=True):
            y = F.scaled_dot_product_attention(
                q.transpose(1, 2),
                k.transpose(1, 2),
                v.transpose(1, 2),
                is_causal=True,
                enable_gqa=self.n_heads > self.n_kv_heads,
            )
        return self.wo(y.transpose(1, 2).reshape(B, T, -1))


class FeedForward(nn.Module):
    def __init__(self, config: LlamaConfig):
        super().__init__()
        hidden = config.ffn_hidden_dim
        self.w1 = nn.Linear(config.dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, config.dim, bias=False)
        self.w3 = nn.Linear(config.dim, hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    def __init__(self, config: LlamaConfig):
        super().__init__()
        self.attention_norm = nn.RMSNorm(config.dim, eps=config.norm_eps)
        self.attention = Attention(config)
        self.ffn_norm = nn.RMSNorm(config.dim, eps=config.norm_eps)
        self.feed_forward = FeedForward(config)

    def forward(self, x: torch.Tensor, rotary: torch.Tensor) -> torch.Tensor:
        h = x + self.attention(self.attention_norm(x), rotary)
        return h + self.feed_forward(self.ffn_norm(h))


class Llama(nn.Module):
    def __init__(self, size: str = "8B", max_seq_len: int | None = None):
        super().__init__()
        config = SIZES[size] if max_seq_len is None else replace(SIZES[size], max_seq_len=max_seq_len)
        self.config = config
        self.tok_embeddings = nn.Embedding(config.vocab_size, config.dim)
        self.layers = nn.ModuleList([Block(config) for _ in range(config.n_layers)])
        self.norm = nn.RMSNorm(config.dim, eps=config.norm_eps)
        self.output = nn.Linear(config.dim, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.tok_embeddings.weight = self.output.weight
        # not a parameter and not saved: recomputed from the config (FSDP leaves buffers whole on every rank)
        self.register_buffer("rotary", rotary_table(config), persistent=False)
        self._init_weights()

    @torch.no_grad()
    def _init_weights(self) -> None:
        """torchtitan's initialisation: embeddings N(0, 1) (unless tied), linears truncated N(0, 0.02), the output
        projections of each block (wo, w2, w3) scaled down with depth, the output head truncated N(0, dim^-0.5)."""
        if not self.config.tie_embeddings:
            nn.init.normal_(self.tok_embeddings.weight)
        for layer_id, block in enumerate(self.layers):
            depth_std = 0.02 / (2 * (layer_id + 1)) ** 0.5
            nn.init.trunc_normal_(block.attention.wqkv.weight, std=0.02)
            nn.init.trunc_normal_(block.feed_forward.w1.weight, std=0.02)
            for weight in (block.attention.wo.weight, block.feed_forward.w2.weight, block.feed_forward.w3.weight):
                nn.init.trunc_normal_(weight, std=depth_std)
        std = self.config.dim**-0.5
        nn.init.trunc_normal_(self.output.weight, std=std, a=-3 * std, b=3 * std)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        T = tokens.shape[1]
        if T > self.config.max_seq_len:
            raise ValueError(f"sequence length {T} exceeds the rotary table's {self.config.max_seq_len}")
        h = self.tok_embeddings(tokens)
        for block in self.layers:
            h = block(h, self.rotary)
        return self.output(self.norm(h))
