"""K text CNNs of the same shape trained as one network (opt-in: ``train.stack_strategies``).

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
(``tests/test_bench.py`` checks logits, gradients and trained results). For the narrow
course model (48/24/24) this fills the CPU's vector units better than K small
convolutions; for the paper-width model it brings nothing (see the README's Speed
section). Use it through :func:`train_stacked`; the ticket engine does when
``TrainSettings.stack_strategies`` is set (round r of a (domain, seed)'s strategies in
lockstep, see :func:`lottery.tickets.find_tickets`).
"""

from __future__ import annotations

import copy
import time
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lottery.config import TrainSettings
from lottery.masks import Mask
from lottery.model import TextCNN, pad_length
from lottery.train import (EncodedSplit, TrainResult, autocast, bucketed_batches, collate,
                           make_optimizer)


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
            # The same draws as F.dropout on one (B, L, d) input: K separate runs share them.
            noise = F.dropout(torch.ones(batch, length, x.shape[-1], device=x.device, dtype=x.dtype),
                              self.settings.embed_dropout, True)
            x = x * noise
        x = x.permute(1, 0, 3, 2).reshape(batch, k * x.shape[-1], length)              # (B, K·d, L)
        pooled = [F.relu(F.conv1d(x, w, b, groups=k)).amax(dim=2).view(batch, k, -1)
                  for w, b in zip(self.conv_weight, self.conv_bias)]
        h = torch.cat(pooled, dim=2).transpose(0, 1)                                     # (K, B, 3C)
        h = F.relu(torch.baddbmm(self.hidden_bias.unsqueeze(1), h, self.hidden_weight.transpose(1, 2)))
        return torch.baddbmm(self.out_bias.unsqueeze(1), h, self.out_weight.transpose(1, 2))


@torch.no_grad()
def stacked_correct(model: StackedTextCNN, split: EncodedSplit, max_len: int, batch_size: int,
                    device: str, autocast_dtype: str | None = None) -> list[float]:
    """Accuracy of each of the K models (length-sorted large batches)."""
    model.eval()
    order = torch.sort(split.lengths, stable=True).indices
    correct = torch.zeros(model.k, dtype=torch.long)
    for index in order.split(batch_size):
        tokens, labels = collate(split, index, max_len, model.settings, model.pad_id)
        with autocast(device, autocast_dtype):
            logits = model(tokens.to(device))
        correct += (logits.argmax(dim=2).cpu() == labels.unsqueeze(0)).sum(dim=1)
    return [int(c) / len(split) for c in correct]


def train_stacked(models: Sequence[TextCNN], masks: Sequence[Mask], train: EncodedSplit,
                  val: EncodedSplit, test: EncodedSplit, settings: TrainSettings, max_len: int,
                  seed: int) -> list[TrainResult]:
    """K calls of :func:`lottery.train.train_masked` with the same ``seed``, as one.

    Early stopping is per model: a model that stops keeps the results it had at that
    point (it keeps being computed, which wastes work but not correctness).
    """
    device, amp = settings.device, getattr(settings, "autocast_dtype", None)
    for m, mask in zip(models, masks):
        from lottery.masks import apply_mask

        apply_mask(m, mask)
    stacked = StackedTextCNN(models).to(device)
    float_masks = stacked.stack_masks(masks)
    optimizer = make_optimizer(stacked, settings)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)

    k = stacked.k
    start = time.perf_counter()
    best_acc, best_epoch, bad = [-1.0] * k, [0] * k, [0] * k
    best_state: list[dict | None] = [None] * k
    history: list[list[float]] = [[] for _ in range(k)]
    running = [True] * k
    lengths = train.lengths
    for epoch in range(1, settings.max_epochs + 1):
        stacked.train()
        for index in bucketed_batches(lengths, settings.batch_size, generator):
            tokens, labels = collate(train, index, max_len, stacked.settings, stacked.pad_id)
            labels = labels.to(device)
            with autocast(device, amp):
                logits = stacked(tokens.to(device))
            loss = sum(F.cross_entropy(logits[i].float(), labels) for i in range(k))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                for p, m in float_masks:
                    p.mul_(m)
        accs = stacked_correct(stacked, val, max_len, settings.eval_batch_size, device, amp)
        states = None
        for i in range(k):
            if not running[i]:
                continue
            history[i].append(accs[i])
            if accs[i] > best_acc[i]:
                best_acc[i], best_epoch[i], bad[i] = accs[i], epoch, 0
                states = states or stacked.state_dicts()
                best_state[i] = copy.deepcopy(states[i])
            else:
                bad[i] += 1
                if settings.patience is not None and bad[i] >= settings.patience:
                    running[i] = False
        if not any(running):
            break
    # Test accuracy of each model's best weights.
    best_models = []
    for i, m in enumerate(models):
        m.load_state_dict(best_state[i])
        best_models.append(m)
    final = StackedTextCNN(best_models).to(device)
    test_acc = stacked_correct(final, test, max_len, settings.eval_batch_size, device, amp)
    seconds = time.perf_counter() - start
    return [TrainResult(val_acc=best_acc[i], test_acc=test_acc[i], best_epoch=best_epoch[i],
                        epochs_run=len(history[i]), seconds=seconds / k, history=history[i],
                        state={n: t.clone() for n, t in best_state[i].items()})
            for i in range(k)]


__all__ = ["StackedTextCNN", "stacked_correct", "train_stacked", "pad_length"]
