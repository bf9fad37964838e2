"""The Kim-style text CNN of the paper (§4.2, §4.3.1, §5.1), in one short module.

    tokens ─ embedding (N(0,1), dropout) ─┬─ conv h=3 ─ max over time ─┐
                                          ├─ conv h=4 ─ max over time ─┼─ concat ─ ReLU ─ MLP ─ logits
                                          └─ conv h=5 ─ max over time ─┘

(ReLU after the max is the same function as the paper's ReLU before it, and cheaper.)

**1-max pooling makes the convolution's backward pass sparse.** The gradient of
``max_t y[b, c, t]`` reaches only the position t* that won, so filter c's weight gradient
is a sum over the batch of *one* window per review, and the input gradient is one
window per (review, filter) scattered back: O(B·C·d·h) work instead of the
O(B·L·C·d·h) of a full convolution backward (:class:`ConvMax`, used on CPU in float32).
The maths is autograd's; only the order of the floating-point sums differs (the engine
version says so, tests/test_model.py compares the gradients).

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
        # ReLU after max-pooling: relu(max_t y) = max_t relu(y) exactly, and the ReLU
        # (and its backward) runs on (B, C) instead of (B, C, L).
        pooled = pooled_convolutions(x, self.convs)                 # (B, 3C)
        h = F.relu(self.hidden(F.relu(pooled)))
        return self.out(h)


class ConvMax(torch.autograd.Function):
    """The three 1-max pooled convolutions with the sparse backward of the module
    docstring: ``x`` (B, L, d) and (w, b) per height → (B, Σ C) pooled values."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, *weights: torch.Tensor) -> torch.Tensor:
        # A contiguous (B, d, L) copy: oneDNN's conv1d is ~15% faster on it than on the
        # transposed view, with bitwise-identical results (tests/test_bench.py checks).
        xt = x.transpose(1, 2).contiguous()
        pooled, winners = zip(*(F.conv1d(xt, w, b).max(dim=2) for w, b in zip(weights[::2], weights[1::2])))
        ctx.save_for_backward(x, *weights, *winners)
        return torch.cat(pooled, dim=1)

    @staticmethod
    def backward(ctx, g: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x, *saved = ctx.saved_tensors
        g = g.to(x.dtype)      # bfloat16 under autocast: the backward sums in float32
        weights, winners = saved[:len(saved) * 2 // 3], saved[len(saved) * 2 // 3:]
        (batch, length, d) = x.shape
        review = torch.arange(batch, device=x.device).view(batch, 1, 1)
        grad_x = torch.zeros(batch * length, d, dtype=x.dtype, device=x.device)
        grads: list[torch.Tensor] = []
        for w, t_star, g_h in zip(weights[::2], winners, g.split([w.shape[0] for w in weights[::2]], dim=1)):
            positions = t_star.unsqueeze(2) + torch.arange(w.shape[2], device=x.device)   # (B, C, h)
            windows = x[review, positions]                                   # (B, C, h, d): the winners
            grad_w = (g_h[:, :, None, None] * windows).sum(dim=0)             # (C, h, d)
            grads += [grad_w.permute(0, 2, 1).contiguous(), g_h.sum(dim=0)]
            # each winning window's share of the input gradient, g[b, c] · w[c], scattered back
            spread = g_h[:, :, None, None] * w.permute(0, 2, 1)             # (B, C, h, d)
            grad_x.index_add_(0, (review * length + positions).reshape(-1), spread.reshape(-1, d))
        return (grad_x.view(batch, length, d), *grads)


def pooled_convolutions(x: torch.Tensor, convs: nn.ModuleList) -> torch.Tensor:
    """Each convolution of ``x`` (B, L, d), 1-max pooled over time and concatenated:
    (B, Σ C). :class:`ConvMax` where it is the fast path (CPU, gradients needed), else
    plain autograd (evaluation, GPUs, where a scatter-add is not deterministic, and
    convolutions with forward hooks, e.g. ``torch.nn.utils.prune``'s, which compute the
    weight only when the module is called)."""
    hooked = any(conv._forward_pre_hooks or conv._forward_hooks for conv in convs)
    if x.device.type == "cpu" and torch.is_grad_enabled() and not hooked:
        return ConvMax.apply(x, *(t for conv in convs for t in (conv.weight, conv.bias)))
    xt = x.transpose(1, 2).contiguous()       # (B, d, L), see ConvMax.forward
    return torch.cat([conv(xt).max(dim=2).values for conv in convs], dim=1)


#: Bits per keep-or-drop draw in :func:`dropout_noise` (three draws per 63-bit integer).
NOISE_BITS = 21


def dropout_noise(shape: torch.Size | tuple[int, ...], p: float, device: torch.device | str,
                  dtype: torch.dtype) -> torch.Tensor:
    """Inverted-dropout multipliers: 0 with probability ``p``, else 1/(1-p).

    Each element is kept when a uniform 21-bit integer is below round((1-p)·2²¹), i.e.
    with probability 1-p to within 2.4e-7; three such draws are cut from one 63-bit
    integer of torch's generator, ~1.4x cheaper than ``torch.rand(shape) < 1-p`` and ~2.5x
    cheaper than ``F.dropout``'s ``bernoulli_`` (engine version 3; the global RNG, which
    the training seeds, draws them).
    """
    keep, n = 1.0 - p, math.prod(shape)
    ones = (1 << NOISE_BITS) - 1
    bits = torch.empty((n + 2) // 3, dtype=torch.int64, device=device).random_()   # 63 random bits each
    draws = torch.stack([bits & ones, (bits >> NOISE_BITS) & ones, bits >> 2 * NOISE_BITS], dim=1)
    kept = draws.view(-1)[:n] < round(keep * (1 << NOISE_BITS))
    return kept.view(shape).to(dtype).mul_(1.0 / keep)


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
