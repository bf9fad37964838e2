"""Masked training with early stopping (paper §5.1), fast on a CPU: one training loop.

The loop trains K networks of the same shape at once (:func:`train_models`). K = 1 is
the plain case: the network itself runs. K > 1 (``train.stack_strategies``) stacks the
K networks into one :class:`lottery.engine.stacked.StackedTextCNN` that shares every batch.

Two things make training fast without changing the maths:

* **Length bucketing.** Reviews are shuffled, cut into chunks of ~100 batches, sorted
  by length inside each chunk and batched; each batch is padded only to
  ``longest + max kernel height`` (:func:`lottery.engine.model.pad_length`), which gives the
  same logits as padding to the maximum length. Batch order is shuffled again.
* **Masks multiplied after each optimizer step.** Adam's moments and the L2 term would
  otherwise move pruned weights off zero; multiplying by the mask after every step keeps
  them exactly 0.0 at negligible cost. The optimizer is fresh in every round.
"""

from __future__ import annotations

import contextlib
import copy
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lottery.config import ModelSettings, TrainSettings
from lottery.engine.allocator import keep_freed_memory
from lottery.engine.devices import check_device, deterministic, device_name
from lottery.engine.masks import Mask, apply_mask
from lottery.engine.model import TextCNN, pad_length
from lottery.engine.stacked import StackedTextCNN


@dataclass
class EncodedSplit:
    """One split as token-id tensors (truncated, unpadded) and labels."""

    ids: list[torch.Tensor]
    labels: torch.Tensor

    @property
    def lengths(self) -> torch.Tensor:
        """Each review's length in tokens (computed once)."""
        if "_lengths" not in self.__dict__:
            self.__dict__["_lengths"] = torch.tensor([len(t) for t in self.ids])
        return self.__dict__["_lengths"]

    def __len__(self) -> int:
        return len(self.ids)


def encode_split(vocab, texts: Sequence[str], labels: Sequence[int], max_len: int) -> EncodedSplit:
    ids = [torch.tensor(x if x else [vocab.pad_id], dtype=torch.long) for x in vocab.encode(list(texts), max_len)]
    return EncodedSplit(ids=ids, labels=torch.tensor(list(labels), dtype=torch.long))


def padded_ids(split: EncodedSplit, pad_id: int) -> torch.Tensor:
    """All of the split's reviews as one (N, longest) matrix padded with ``pad_id``, made
    once per split (a batch is then one row gather instead of a copy per review)."""
    cached = split.__dict__.get("_padded")
    if cached is None or cached[0] != pad_id:
        cached = (pad_id, torch.nn.utils.rnn.pad_sequence(split.ids, batch_first=True, padding_value=pad_id))
        split.__dict__["_padded"] = cached
    return cached[1]


def collate(split: EncodedSplit, index: torch.Tensor, max_len: int, model: ModelSettings,
            pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad the reviews at ``index`` to the shortest length that keeps logits exact."""
    width = pad_length(int(split.lengths[index].max()), max_len, model)
    rows = padded_ids(split, pad_id)[index, :width]
    tokens = F.pad(rows, (0, width - rows.shape[1]), value=pad_id) if rows.shape[1] < width else rows
    return tokens, split.labels[index]


def bucketed_batches(lengths: torch.Tensor, batch_size: int, generator: torch.Generator,
                     chunk_batches: int = 100) -> list[torch.Tensor]:
    """Shuffled batches of similar-length reviews (see module docstring)."""
    perm = torch.randperm(len(lengths), generator=generator)
    batches = []
    chunk = batch_size * chunk_batches
    for start in range(0, len(perm), chunk):
        part = perm[start:start + chunk]
        part = part[torch.sort(lengths[part], stable=True).indices]
        batches.extend(part.split(batch_size))
    order = torch.randperm(len(batches), generator=generator)
    return [batches[i] for i in order.tolist()]


def autocast(device: str, dtype: str | None):
    """``torch.autocast`` for ``dtype`` ("bfloat16") on ``device``'s type, or a
    no-op context when ``dtype`` is None (the default: float32 everywhere)."""
    kind = torch.device(device).type
    if dtype not in (None, "bfloat16"):
        raise ValueError(f"train.autocast_dtype must be None or 'bfloat16' (float16 would need "
                         f"loss scaling), got {dtype!r}")
    if dtype is None:
        return torch.autocast(kind, enabled=False)
    return torch.autocast(kind, dtype=getattr(torch, dtype))


@contextlib.contextmanager
def intra_op_threads(n: int) -> Iterator[None]:
    """Run with ``n`` intra-op threads, then restore the caller's setting.

    The thread count changes floating-point summation order, so the training sets it
    itself (``train.threads``, part of the run key when not 1): calling the library from
    a 2-thread process cannot write different numbers into the same run directory.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ------------------------------------------------------------------ K networks as one

def as_network(models: Sequence[TextCNN]) -> nn.Module:
    """The module that trains ``models``: the model itself for K = 1, else a stack."""
    return models[0] if len(models) == 1 else StackedTextCNN(models)


def _logits(net: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """(K, batch, classes) logits for either kind of network."""
    out = net(tokens)
    return out if isinstance(net, StackedTextCNN) else out.unsqueeze(0)


def float_masks(net: nn.Module, masks: Sequence[Mask]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(parameter, float mask) pairs to multiply after every optimizer step."""
    if isinstance(net, StackedTextCNN):
        return net.stack_masks(masks)
    params = dict(net.named_parameters())
    return [(params[n], m.to(params[n].device, params[n].dtype)) for n, m in masks[0].items()]


def _states(net: nn.Module) -> list[dict[str, torch.Tensor]]:
    """A copy of each of the K networks' weights."""
    if isinstance(net, StackedTextCNN):
        return net.state_dicts()
    return [copy.deepcopy(net.state_dict())]


@torch.no_grad()
def evaluate(net: nn.Module, split: EncodedSplit, max_len: int, batch_size: int = 32,
             device: str = "cpu", autocast_dtype: str | None = None) -> list[tuple[float, float]]:
    """(accuracy, share of reviews predicted positive) of each of the K networks, over
    length-sorted batches (each padded only as far as it needs). The share tells a
    network that answers one class for (almost) every review: it collapsed."""
    net.eval()
    order = torch.sort(split.lengths, stable=True).indices
    correct = positive = None
    for index in order.split(batch_size):
        tokens, labels = collate(split, index, max_len, net.settings, net.pad_id)
        with autocast(device, autocast_dtype):
            logits = _logits(net, tokens.to(device, non_blocking=True))
        predicted = logits.argmax(dim=2).cpu()
        hits, ones = (predicted == labels.unsqueeze(0)).sum(dim=1), (predicted == 1).sum(dim=1)
        correct = hits if correct is None else correct + hits
        positive = ones if positive is None else positive + ones
    return [(int(c) / len(split), int(o) / len(split)) for c, o in zip(correct, positive)]


def accuracies(net: nn.Module, split: EncodedSplit, max_len: int, batch_size: int = 32,
               device: str = "cpu", autocast_dtype: str | None = None) -> list[float]:
    """Accuracy of each of the K networks (see :func:`evaluate`)."""
    return [acc for acc, _ in evaluate(net, split, max_len, batch_size, device, autocast_dtype)]


def accuracy(model: TextCNN, split: EncodedSplit, max_len: int, batch_size: int = 32,
             device: str = "cpu", autocast_dtype: str | None = None) -> float:
    """Accuracy of one model (see :func:`accuracies`)."""
    return accuracies(model, split, max_len, batch_size, device, autocast_dtype)[0]


@dataclass
class TrainResult:
    val_acc: float
    test_acc: float
    best_epoch: int
    epochs_run: int
    seconds: float
    history: list[float] = field(default_factory=list)   # validation accuracy per epoch
    test_positive_share: float = float("nan")   # share of test reviews predicted positive
    state: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)  # best weights
    device_name: str = ""   # the GPU's or CPU's model (lottery.engine.devices.device_name)


def make_optimizer(model: nn.Module, settings: TrainSettings) -> torch.optim.Optimizer:
    """Adam with L2 (coupled weight decay, as 'ℓ2 regularization' in §5.1).

    ``fused=True`` is ~7% faster on CPU in torch 2.x; fall back where unsupported.
    Adam is elementwise, so one optimizer over stacked tensors is K optimizers.
    """
    try:
        return torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay,
                                fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)


def masked_step(net: nn.Module, optimizer: torch.optim.Optimizer,
                float_masks: Sequence[tuple[torch.Tensor, torch.Tensor]], tokens: torch.Tensor,
                labels: torch.Tensor, amp: str | None = None) -> None:
    """One training step of a pruned network: an Adam step on the cross-entropy, then
    every pruned weight set back to exactly zero.

    Zeroing the gradient alone would not keep a pruned weight at zero: Adam's moment
    estimates and the L2 term move it anyway. Multiplying by the 0/1 mask after each
    step does, so a pruned weight never contributes to any forward pass.
    """
    with autocast(tokens.device.type, amp):
        logits = _logits(net, tokens)
    losses = [F.cross_entropy(logits[i].float(), labels) for i in range(len(logits))]
    loss = sum(losses[1:], losses[0])     # each model's gradient is its own
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        for p, m in float_masks:
            p.mul_(m)


class _BestEpochs:
    """Early stopping for K models on validation accuracy: each model's history, best
    epoch and its weights; a model stops after ``patience`` epochs without a strict
    improvement (``None``: never)."""

    def __init__(self, k: int, patience: int | None):
        self.patience = patience
        self.acc, self.epoch, self.bad = [-1.0] * k, [0] * k, [0] * k
        self.state: list[dict[str, torch.Tensor]] = [{} for _ in range(k)]
        self.history: list[list[float]] = [[] for _ in range(k)]
        self.running = [True] * k

    def update(self, accs: Sequence[float], epoch: int, net: nn.Module) -> bool:
        """Record one epoch's validation accuracies; whether any model still runs."""
        states = None
        for i, acc in enumerate(accs):
            if not self.running[i]:
                continue
            self.history[i].append(acc)
            if acc > self.acc[i]:
                self.acc[i], self.epoch[i], self.bad[i] = acc, epoch, 0
                states = states or _states(net)
                self.state[i] = states[i]
            else:
                self.bad[i] += 1
                if self.patience is not None and self.bad[i] >= self.patience:
                    self.running[i] = False
        return any(self.running)


def train_models(models: Sequence[TextCNN], masks: Sequence[Mask], train: EncodedSplit,
                 val: EncodedSplit, test: EncodedSplit, settings: TrainSettings, max_len: int,
                 seed: int, on_step: Callable[[nn.Module], None] | None = None) -> list[TrainResult]:
    """Train each model with its pruned weights held at exactly zero; keep its best epoch.

    Early stopping on validation accuracy, per model: after ``patience`` epochs without
    a strict improvement a model stops (``None``: run all ``max_epochs``) and keeps the
    results it had (in a stack it is still computed until all stop). The weights of the
    best epoch are restored and evaluated on the test split. Everything random (batch
    order, dropout) derives from ``seed``, so the same call gives the same numbers, and
    the K models see the same batches and dropout noise as K separate calls would.
    On CUDA the kernels are deterministic (:func:`lottery.engine.devices.deterministic`);
    a device this process cannot use is a one-line ``ValueError``. Each result names
    the device's model (``device_name``).
    """
    device, amp, k = settings.device, settings.autocast_dtype, len(models)
    check_device(device)
    keep_freed_memory()        # no page faults for the per-step tensors (bitwise the same)
    with intra_op_threads(settings.threads), deterministic(device):
        for model, mask in zip(models, masks):
            apply_mask(model, mask)
        net = as_network(models).to(device)
        held = float_masks(net, masks)
        optimizer = make_optimizer(net, settings)
        generator = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)   # dropout
        start = time.perf_counter()
        best = _BestEpochs(k, settings.patience)
        for epoch in range(1, settings.max_epochs + 1):
            net.train()
            for index in bucketed_batches(train.lengths, settings.batch_size, generator):
                tokens, labels = collate(train, index, max_len, net.settings, net.pad_id)
                masked_step(net, optimizer, held, tokens.to(device, non_blocking=True),
                            labels.to(device, non_blocking=True), amp)
                if on_step is not None:
                    on_step(net)
            if not best.update(accuracies(net, val, max_len, settings.eval_batch_size, device, amp),
                               epoch, net):
                break
        for model, state in zip(models, best.state):
            model.load_state_dict(state)
        tested = evaluate(as_network(models).to(device), test, max_len, settings.eval_batch_size,
                          device, amp)
        seconds = time.perf_counter() - start
        name = device_name(device)
    return [TrainResult(val_acc=best.acc[i], test_acc=tested[i][0], best_epoch=best.epoch[i],
                        epochs_run=len(best.history[i]), seconds=seconds / k, history=best.history[i],
                        test_positive_share=tested[i][1], device_name=name,
                        state={n: t.detach().cpu().clone() for n, t in models[i].state_dict().items()})
            for i in range(k)]


def train_masked(model: TextCNN, mask: Mask, train: EncodedSplit, val: EncodedSplit,
                 test: EncodedSplit, settings: TrainSettings, max_len: int, seed: int,
                 on_step: Callable[[nn.Module], None] | None = None) -> TrainResult:
    """:func:`train_models` for one model."""
    return train_models([model], [mask], train, val, test, settings, max_len, seed, on_step)[0]
