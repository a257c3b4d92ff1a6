"""Vision Transformer B/16 with torchvision's shapes (86,567,656 parameters).

Attention uses one fused qkv projection and `scaled_dot_product_attention`; its parameters are the same size as
torchvision's `nn.MultiheadAttention` (in_proj 3d x d, out_proj d x d, with biases).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class ViTConfig:
    image_size: int = 224
    patch_size: int = 16
    num_layers: int = 12
    num_heads: int = 12
    hidden_dim: int = 768
    mlp_dim: int = 3072
    num_classes: int = 1000
    dropout: float = 0.0


class SelfAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class EncoderBlock(nn.Module):
    def __init__(self, config: ViTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.hidden_dim, eps=1e-6)
        self.self_attention = SelfAttention(config.hidden_dim, config.num_heads)
        self.ln_2 = nn.LayerNorm(config.hidden_dim, eps=1e-6)
        self.mlp = nn.Sequential(
            nn.Linear(config.hidden_dim, config.mlp_dim),
            nn.GELU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.mlp_dim, config.hidden_dim),
            nn.Dropout(config.dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attention(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class VisionTransformer(nn.Module):
    def __init__(self, config: ViTConfig):
        super().__init__()
        self.config = config
        num_patches = (config.image_size // config.patch_size) ** 2
        self.conv_proj = nn.Conv2d(3, config.hidden_dim, kernel_size=config.patch_size, stride=config.patch_size)
        self.class_token = nn.Parameter(torch.zeros(1, 1, config.hidden_dim))
        self.pos_embedding = nn.Parameter(torch.empty(1, num_patches + 1, config.hidden_dim).normal_(std=0.02))
        self.dropout = nn.Dropout(config.dropout)
        self.layers = nn.Sequential(*[EncoderBlock(config) for _ in range(config.num_layers)])
        self.ln = nn.LayerNorm(config.hidden_dim, eps=1e-6)
        self.head = nn.Linear(config.hidden_dim, config.num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.conv_proj(images).flatten(2).transpose(1, 2)  # (B, patches, hidden)
        x = torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = self.ln(self.layers(self.dropout(x + self.pos_embedding)))
        return self.head(x[:, 0])


def vit_b_16(num_classes: int = 1000) -> VisionTransformer:
    return VisionTransformer(ViTConfig(num_classes=num_classes))
