"""The Kim-style text CNN of the paper (§4.2, §4.3.1, §5.1), in one short module.

    tokens ─ embedding (N(0,1), dropout) ─┬─ conv h=3 ─ max over time ─┐
                                          ├─ conv h=4 ─ max over time ─┼─ concat ─ ReLU ─ MLP ─ logits
                                          └─ conv h=5 ─ max over time ─┘

(ReLU after the max is the same function as the paper's ReLU before it, and cheaper.)

The padding token's embedding is a zero vector that stays zero (``padding_idx``: no
gradient, and masking never revives it). With zero padding, a batch padded only to
``longest + max kernel height`` gives exactly the logits of a batch padded to the
fixed maximum length: every window value of the long batch (including the all-padding
window, whose conv output is just the bias) is still present. See :func:`pad_length`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from lottery.config import ModelSettings


class TextCNN(nn.Module):
    def __init__(self, vocab_size: int, settings: ModelSettings = ModelSettings(), pad_id: int = 0):
        super().__init__()
        self.settings = settings
        self.pad_id = pad_id
        self.embedding = nn.Embedding(vocab_size, settings.embed_dim, padding_idx=pad_id)
        self.convs = nn.ModuleList(
            nn.Conv1d(settings.embed_dim, settings.channels, kernel_size=h)
            for h in settings.kernel_heights
        )
        pooled = settings.channels * len(settings.kernel_heights)
        self.hidden = nn.Linear(pooled, settings.hidden)
        self.out = nn.Linear(settings.hidden, settings.n_classes)
        reset_parameters(self, torch.Generator().manual_seed(0))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens``: (batch, length) int64 ids → (batch, n_classes) logits."""
        x = self.embedding(tokens)                                   # (B, L, d)
        if self.training and self.settings.embed_dropout > 0:
            x = x * dropout_noise(x.shape, self.settings.embed_dropout, x.device, x.dtype)
        # A contiguous (B, d, L) copy: oneDNN's conv1d is ~15% faster on it than on the
        # transposed view, with bitwise-identical results (tests/test_bench.py checks).
        x = x.transpose(1, 2).contiguous()                           # (B, d, L)
        # ReLU after max-pooling: relu(max_t y) = max_t relu(y) exactly, and the ReLU
        # (and its backward) runs on (B, C) instead of (B, C, L).
        pooled = [conv(x).max(dim=2).values for conv in self.convs]   # each (B, C)
        h = F.relu(self.hidden(F.relu(torch.cat(pooled, dim=1))))
        return self.out(h)


def dropout_noise(shape: torch.Size | tuple[int, ...], p: float, device: torch.device | str,
                  dtype: torch.dtype) -> torch.Tensor:
    """Inverted-dropout multipliers: 0 with probability ``p``, else 1/(1-p).

    Drawn as ``torch.rand(shape) < 1-p``, which on CPU is ~2x cheaper than the
    ``bernoulli_`` inside ``F.dropout`` (same distribution, a different random stream;
    it draws from the global RNG, which the training seeds).
    """
    keep = 1.0 - p
    return (torch.rand(shape, device=device) < keep).to(dtype).mul_(1.0 / keep)


def he_uniform_bound(fan_in: int, a: float = 0.0) -> float:
    """Eq. 4: b = sqrt(6 / ((1 + a²) · fan_in)). a = 0 is He's ReLU case."""
    return math.sqrt(6.0 / ((1.0 + a * a) * fan_in))


@torch.no_grad()
def reset_parameters(model: TextCNN, generator: torch.Generator) -> None:
    """Draw every parameter from the §4.3.1 distributions with ``generator``.

    Embedding ~ N(0, 1) (padding row zero); conv and linear weights ~ U(-b, b) with the
    He bound of Eq. 4; biases ~ U(-1/√fan_in, 1/√fan_in) as in PyTorch's default (the
    paper does not say, and biases are not pruned by default).
    TICKET-RANDOM and MASKS-RANDOM use this same function for their fresh draws.
    """
    a = model.settings.he_a
    emb = model.embedding.weight
    emb.copy_(torch.randn(emb.shape, generator=generator))
    emb[model.pad_id].zero_()
    for layer in [*model.convs, model.hidden, model.out]:
        w = layer.weight
        fan_in = w[0].numel()
        b = he_uniform_bound(fan_in, a)
        w.copy_(torch.empty(w.shape).uniform_(-b, b, generator=generator))
        bb = 1.0 / math.sqrt(fan_in)
        layer.bias.copy_(torch.empty(layer.bias.shape).uniform_(-bb, bb, generator=generator))


def init_model(vocab_size: int, settings: ModelSettings, seed: int, pad_id: int = 0) -> TextCNN:
    """A fresh model whose parameters depend only on ``seed`` (θ0 of that seed)."""
    model = TextCNN(vocab_size, settings, pad_id)
    reset_parameters(model, torch.Generator().manual_seed(seed))
    return model


def pad_length(longest: int, max_len: int, settings: ModelSettings) -> int:
    """Shortest padding that gives the same logits as padding to ``max_len``."""
    return min(max_len, longest + max(settings.kernel_heights))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
