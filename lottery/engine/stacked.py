"""K text CNNs of the same shape as one network (opt-in: ``train.stack_strategies``).

Within a (domain, seed), round r of every strategy trains with the same batch order and
the same dropout noise (see :mod:`lottery.tickets`), so K such models can share every
batch: their weights are stacked along a new leading axis and

* the K embeddings are one table of K·V rows (token ids offset by k·V);
* the K convolutions of each height are one *grouped* convolution (``groups=K``);
* the K hidden and output layers are batched matmuls (``baddbmm``);
* the K losses are summed, so each model's gradient is exactly its own;
* one dropout noise tensor of the separate model's shape is drawn from the same global
  RNG stream and shared by the K models (what K separate runs with the same seed draw);
* Adam is elementwise, so one optimizer over the stacked tensors is K optimizers.

The maths is that of K separate models; the floating-point summation order of the
grouped convolution differs, so results agree to float tolerance, not bitwise
(``tests/test_bench.py`` checks logits, gradients and trained results). On the 2-core
CPU it measured no faster than separate engine-2 training (course book: 587 s vs 598 s)
and is ~2x slower per step than separate networks with the engine's sparse convolution
backward, which it does not use (``benchmarks/stacking.py``); it is kept for GPUs, where
K small networks per kernel launch fill the device better. The
training loop (:func:`lottery.engine.train.train_models`) uses it when given K > 1 models; the
ticket engine does so when ``TrainSettings.stack_strategies`` is set (round r of a
(domain, seed)'s strategies in lockstep, see :mod:`lottery.engine.jobs`).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lottery.engine.masks import Mask
from lottery.engine.model import TextCNN, dropout_noise


class StackedTextCNN(nn.Module):
    """K :class:`TextCNN` of identical settings and vocabulary as one module.

    ``forward(tokens)`` returns (K, batch, n_classes) logits: model k's logits at [k].
    """

    def __init__(self, models: Sequence[TextCNN]):
        super().__init__()
        first = models[0]
        if any(m.settings != first.settings or m.embedding.num_embeddings != first.embedding.num_embeddings
               or m.pad_id != first.pad_id for m in models):
            raise ValueError("stacked models need identical settings, vocabulary size and pad id")
        self.k = len(models)
        self.settings = first.settings
        self.pad_id = first.pad_id
        self.vocab_size = first.embedding.num_embeddings
        self.embedding = nn.Parameter(torch.stack([m.embedding.weight.detach() for m in models]).clone())
        self.conv_weight = nn.ParameterList(
            nn.Parameter(torch.cat([m.convs[i].weight.detach() for m in models]).clone())
            for i in range(len(first.convs)))
        self.conv_bias = nn.ParameterList(
            nn.Parameter(torch.cat([m.convs[i].bias.detach() for m in models]).clone())
            for i in range(len(first.convs)))
        self.hidden_weight = nn.Parameter(torch.stack([m.hidden.weight.detach() for m in models]).clone())
        self.hidden_bias = nn.Parameter(torch.stack([m.hidden.bias.detach() for m in models]).clone())
        self.out_weight = nn.Parameter(torch.stack([m.out.weight.detach() for m in models]).clone())
        self.out_bias = nn.Parameter(torch.stack([m.out.bias.detach() for m in models]).clone())
        # The padding rows are constants (as ``padding_idx`` makes them in TextCNN).
        self.embedding.register_hook(self._zero_pad_rows)

    def _zero_pad_rows(self, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        grad[:, self.pad_id] = 0
        return grad

    # -------------------------------------------------------------- parameter mapping
    def _slices(self) -> dict[str, tuple[torch.Tensor, int]]:
        """TextCNN parameter name → (stacked tensor, rows per model along dim 0 or 0 for a
        leading model axis)."""
        out: dict[str, tuple[torch.Tensor, int]] = {"embedding.weight": (self.embedding, 0)}
        for i, (w, b) in enumerate(zip(self.conv_weight, self.conv_bias)):
            c = w.shape[0] // self.k
            out[f"convs.{i}.weight"] = (w, c)
            out[f"convs.{i}.bias"] = (b, c)
        out.update({"hidden.weight": (self.hidden_weight, 0), "hidden.bias": (self.hidden_bias, 0),
                    "out.weight": (self.out_weight, 0), "out.bias": (self.out_bias, 0)})
        return out

    def part(self, tensor: torch.Tensor, rows: int, k: int) -> torch.Tensor:
        return tensor[k] if rows == 0 else tensor[k * rows:(k + 1) * rows]

    def state_dicts(self) -> list[dict[str, torch.Tensor]]:
        """One TextCNN ``state_dict`` per model (CPU copies)."""
        return [{name: self.part(t, rows, k).detach().cpu().clone() for name, (t, rows) in self._slices().items()}
                for k in range(self.k)]

    def stack_masks(self, masks: Sequence[Mask]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(stacked parameter, float mask) pairs for per-step masking."""
        pairs = []
        for name, (t, rows) in self._slices().items():
            if name in masks[0]:
                ms = [m[name].to(t.device, t.dtype) for m in masks]
                pairs.append((t, torch.stack(ms) if rows == 0 else torch.cat(ms)))
        return pairs

    # -------------------------------------------------------------- forward
    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        k, v = self.k, self.vocab_size
        batch, length = tokens.shape
        offsets = torch.arange(k, device=tokens.device).view(k, 1, 1) * v
        x = F.embedding(tokens.unsqueeze(0) + offsets, self.embedding.view(k * v, -1))   # (K, B, L, d)
        if self.training and self.settings.embed_dropout > 0:
            # The draws one TextCNN makes for a (B, L, d) input: K separate runs share them.
            x = x * dropout_noise((batch, length, x.shape[-1]), self.settings.embed_dropout, x.device, x.dtype)
        x = x.permute(1, 0, 3, 2).reshape(batch, k * x.shape[-1], length)              # (B, K·d, L)
        pooled = [F.conv1d(x, w, b, groups=k).max(dim=2).values.view(batch, k, -1)
                  for w, b in zip(self.conv_weight, self.conv_bias)]
        h = F.relu(torch.cat(pooled, dim=2)).transpose(0, 1)                            # (K, B, 3C)
        h = F.relu(torch.baddbmm(self.hidden_bias.unsqueeze(1), h, self.hidden_weight.transpose(1, 2)))
        return torch.baddbmm(self.out_bias.unsqueeze(1), h, self.out_weight.transpose(1, 2))
