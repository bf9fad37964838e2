"""The Kim-style text CNN of the paper (§4.2, §4.3.1, §5.1), in one short module.

    tokens ─ embedding (N(0,1), dropout) ─┬─ conv h=3 ─ max over time ─┐
                                          ├─ conv h=4 ─ max over time ─┼─ concat ─ ReLU ─ MLP ─ logits
                                          └─ conv h=5 ─ max over time ─┘

(ReLU after the max is the same function as the paper's ReLU before it, and cheaper.)

**1-max pooling makes the convolution's backward pass sparse.** The gradient of
``max_t y[b, c, t]`` reaches only the position t* that won, so filter c's weight gradient
is a sum over the batch of *one* window per review, and the input gradient is one
window per (review, filter) scattered back: O(B·C·d·h) work instead of the
O(B·L·C·d·h) of a full convolution backward (:class:`ConvMax`, used on CPU in float32,
computed as two sparse matrix products: :func:`winning_windows`).
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
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from lottery.config import ModelSettings

# torch.sparse.mm on CSR is what the backward needs; its "beta" notice is noise here.
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")


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
        xt = conv_input(x)
        pooled, winners = zip(*(F.conv1d(xt, w, b).max(dim=2) for w, b in zip(weights[::2], weights[1::2])))
        ctx.save_for_backward(x, *weights, *winners)
        return torch.cat(pooled, dim=1)

    @staticmethod
    def backward(ctx, g: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x, *saved = ctx.saved_tensors
        g = g.to(x.dtype)      # bfloat16 under autocast: the backward sums in float32
        weights, winners = saved[:len(saved) * 2 // 3:2], saved[len(saved) * 2 // 3:]
        (batch, length, d) = x.shape
        select, taps = winning_windows(g, weights, winners, length)
        with torch.autocast(x.device.type, enabled=False):    # a backward called inside autocast
            grad_taps = sparse_product(select, x.reshape(batch * length, d))     # (Σ C·h, d)
            grad_x = sparse_product(select.t().to_sparse_csr(), taps)            # (B·L, d)
        grads: list[torch.Tensor] = []
        rows = grad_taps.split([w.shape[0] * w.shape[2] for w in weights])
        for w, grad, g_h in zip(weights, rows, g.split([w.shape[0] for w in weights], dim=1)):
            (channels, _, height) = w.shape
            grads += [grad.view(channels, height, d).permute(0, 2, 1).contiguous(), g_h.sum(dim=0)]
        return (grad_x.view(batch, length, d), *grads)


def winning_windows(g: torch.Tensor, weights: list[torch.Tensor], winners: list[torch.Tensor],
                    length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The backward of 1-max pooling as two sparse products.

    A *tap* is one filter row: (c, j) of a height-h convolution, j < h, with weights
    ``w[c, :, j]``. ``select`` (taps × B·L, CSR) holds g[b, c] at column b·L + t*[b, c] + j:
    the one input position that tap (c, j) read for review b when filter c won at t*.
    Then, with X the input as a (B·L, d) matrix and ``taps`` the (taps, d) matrix of tap
    weights, the weight gradient is ``select @ X`` and the input gradient ``selectᵀ @
    taps``: B·C·h·d multiply-adds each, no (B, C, h, d) temporaries.
    """
    batch = g.shape[0]
    start = (torch.arange(batch, device=g.device) * length).view(1, 1, batch)
    columns, values, tap_rows = [], [], []
    for w, t_star, g_h in zip(weights, winners, g.split([w.shape[0] for w in weights], dim=1)):
        (channels, d, height) = w.shape
        offsets = torch.arange(height, device=g.device).view(1, height, 1)
        columns.append((start + t_star.t().unsqueeze(1) + offsets).reshape(-1))         # (C, h, B)
        values.append(g_h.t().unsqueeze(1).expand(channels, height, batch).reshape(-1))
        tap_rows.append(w.permute(0, 2, 1).reshape(channels * height, d))
    n_taps = sum(len(t) for t in tap_rows)
    rows = torch.arange(0, n_taps * batch + 1, batch, device=g.device)    # B entries per tap
    select = torch.sparse_csr_tensor(rows, torch.cat(columns), torch.cat(values), (n_taps, batch * length),
                                     check_invariants=False)
    return select, torch.cat(tap_rows)


def sparse_product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` for a CSR matrix ``a`` and a dense ``b``, written once into a new tensor.

    The same bits as ``torch.sparse.mm(a, b)``, which zero-fills its result and copies
    it once more: that is ~half the time of the input-gradient product at paper width
    (tests/test_model.py checks the bits; with ``beta=0`` the uninitialised ``out`` is
    never read).
    """
    out = torch.empty((a.shape[0], b.shape[1]), dtype=b.dtype, device=b.device)
    return torch.addmm(out, a, b, beta=0, out=out)


def pooled_convolutions(x: torch.Tensor, convs: nn.ModuleList) -> torch.Tensor:
    """Each convolution of ``x`` (B, L, d), 1-max pooled over time and concatenated:
    (B, Σ C). :class:`ConvMax` where it is the fast path (CPU, gradients needed), else
    plain autograd (evaluation, GPUs, where a scatter-add is not deterministic, and
    convolutions with forward hooks, e.g. ``torch.nn.utils.prune``'s, which compute the
    weight only when the module is called)."""
    hooked = any(conv._forward_pre_hooks or conv._forward_hooks for conv in convs)
    if x.device.type == "cpu" and torch.is_grad_enabled() and not hooked:
        return ConvMax.apply(x, *(t for conv in convs for t in (conv.weight, conv.bias)))
    xt = conv_input(x)
    return torch.cat([conv(xt).amax(dim=2) for conv in convs], dim=1)   # no indices: ~8x cheaper


def conv_input(x: torch.Tensor) -> torch.Tensor:
    """``x`` (B, L, d) as the convolutions' input: a contiguous (B, d, L) copy (oneDNN's
    conv1d is ~15% faster on it than on the transposed view, bitwise the same; see
    tests/test_bench.py). Under bfloat16 autocast the cast comes first, on the
    contiguous (B, L, d) tensor, and the copy moves half the bytes; autocast would
    otherwise cast the float32 input once per kernel height. Same bits either way
    (tests/test_model.py)."""
    kind = x.device.type
    if torch.is_autocast_enabled(kind):
        x = x.to(torch.get_autocast_dtype(kind))
    return x.transpose(1, 2).contiguous()


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
    threshold = round(keep * (1 << NOISE_BITS))
    bits = torch.empty((n + 2) // 3, dtype=torch.int64, device=device).random_()   # 63 random bits each
    noise = torch.empty((len(bits), 3), dtype=dtype, device=device)   # draw 3i+k = bits i, field k
    noise[:, 0] = (bits & ones) < threshold
    noise[:, 1] = ((bits >> NOISE_BITS) & ones) < threshold
    noise[:, 2] = (bits >> 2 * NOISE_BITS) < threshold
    return noise.view(-1)[:n].view(shape).mul_(1.0 / keep)


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
