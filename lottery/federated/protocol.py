"""Beyond the paper (§7): sparsify-and-transfer, simulated with federated averaging.

§7 proposes that a server find a ticket on its own data and send only the *sparse*
network to clients with data of another distribution, who train it there. This module
simulates that with federated averaging (FedAvg, McMahan et al. 2017) and a fixed mask:

* the **server** holds a domain's TICKET-RESET masks (the ticket chapter's runs);
* each of ``federated.clients`` **clients** holds one shard of another domain's
  training reviews;
* a **communication round** sends the global survivors down (the mask once, in the
  first round), trains ``local_epochs`` on every client with the mask held fixed
  (:func:`lottery.engine.train.masked_step`), sends the survivors up and averages them,
  weighted by shard size.

The conditions are rows of the strategy table (Fig. 4's curves): FULL-MODEL (dense),
MASKS-RESET / MASKS-RANDOM (the server's mask, from θ0 or a fresh draw) and
TICKET-TARGET (the clients' domain's own ticket: an oracle, since finding it needs the
clients' data in one place). Bytes are the payloads as sent: float32 survivors, and a
mask encoded per layer as the smaller of a bitmap and a list of int32 positions.

The functions here are the whole protocol. :mod:`lottery.federated.flower` runs them as a
Flower simulation (clients in Ray workers, messages through Flower's grid); the inline
backend below calls the same functions in this process and gives identical numbers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from lottery.engine.masks import Mask
from lottery.engine.starts import derive_seed
from lottery.engine.train import (EncodedSplit, accuracies, bucketed_batches, collate, float_masks,
                                  intra_op_threads, make_optimizer, masked_step)

Arrays = dict[str, np.ndarray]

#: Where a condition's mask comes from, by the strategy table's ``mask`` column: no mask,
#: the server domain's TICKET-RESET run, or the clients' domain's own TICKET-RESET run.
MASK_FROM: dict[str, str | None] = {"full": None, "source": "server", "magnitude": "clients"}


# ------------------------------------------------------------------ payloads and bytes

def pack(state: dict[str, torch.Tensor], mask: Mask) -> Arrays:
    """The survivors of ``state`` as flat float32 arrays (what travels each round).

    A pruned parameter sends only its values where ``mask`` is True; an unpruned one
    (biases) sends every value.
    """
    return {n: (t[mask[n]] if n in mask else t.reshape(-1)).detach().cpu().numpy().astype(np.float32)
            for n, t in state.items()}


def unpack(arrays: Arrays, mask: Mask, template: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The full state from packed survivors (pruned weights are exactly 0)."""
    out = {}
    for n, t in template.items():
        values = torch.from_numpy(np.asarray(arrays[n], dtype=np.float32).copy())
        if n in mask:
            full = torch.zeros(t.shape, dtype=torch.float32)
            full[mask[n]] = values
            out[n] = full
        else:
            out[n] = values.reshape(t.shape)
    return out


def encode_mask(mask: Mask) -> Arrays:
    """Per layer, the smaller of a bitmap (``uint8``, 1 bit per weight) and the int32
    positions of the survivors; :func:`decode_mask` tells them apart by dtype."""
    out = {}
    for n, m in mask.items():
        flat = m.reshape(-1).numpy()
        bitmap = np.packbits(flat)
        positions = np.flatnonzero(flat).astype(np.int32)
        out[n] = bitmap if bitmap.nbytes <= positions.nbytes else positions
    return out


def decode_mask(encoded: Arrays, template: Mask) -> Mask:
    out = {}
    for n, m in template.items():
        e, size = encoded[n], m.numel()
        flat = (np.unpackbits(e, count=size).astype(bool) if e.dtype == np.uint8
                else np.isin(np.arange(size), e))
        out[n] = torch.from_numpy(flat).reshape(m.shape)
    return out


def nbytes(arrays: Arrays) -> int:
    return int(sum(a.nbytes for a in arrays.values()))


def fedavg(updates: list[Arrays], sizes: list[int]) -> Arrays:
    """Federated averaging of packed survivors, weighted by shard size, in list order
    (callers sort by client so that the float sum is always taken in the same order).
    Every client shares the mask, so the average of packed survivors is the packed
    average of the masked networks."""
    total = float(sum(sizes))
    out = {n: np.zeros_like(a, dtype=np.float64) for n, a in updates[0].items()}
    for update, size in zip(updates, sizes):
        for n, a in update.items():
            out[n] += a.astype(np.float64) * (size / total)
    return {n: a.astype(np.float32) for n, a in out.items()}


# ------------------------------------------------------------------ clients

def shards(n: int, clients: int, seed: int) -> list[torch.Tensor]:
    """``clients`` disjoint, near-equal random shards of ``range(n)`` (IID clients)."""
    if clients > n:
        raise ValueError(f"setting federated.clients = {clients} exceeds the {n} training reviews")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(derive_seed(seed, "shards", clients)))
    return [part.sort().values for part in perm.tensor_split(clients)]


def subset(split: EncodedSplit, index: torch.Tensor) -> EncodedSplit:
    return EncodedSplit(ids=[split.ids[i] for i in index.tolist()], labels=split.labels[index])


@dataclass(frozen=True)
class Task:
    """One federated training as the clients see it: a condition (a strategy key), a mask
    round and a seed, with everything a client needs to know about it (sent in each
    round's config). The run-store job around it is
    :class:`lottery.federated.jobs.FederatedTask`."""

    server: str
    clients_domain: str
    seed: int
    strategy: str
    round: int

    @property
    def name(self) -> str:
        return f"{self.server}>{self.clients_domain}/{self.strategy}/s{self.seed}/r{self.round}"


def local_update(settings: Any, model_template: Any, state: dict[str, torch.Tensor], mask: Mask,
                 shard: EncodedSplit, task: Task, comm_round: int, client: int) -> dict[str, torch.Tensor]:
    """One client's work in one communication round: ``local_epochs`` of masked Adam
    steps (a fresh optimizer, as every client would start one) from the global state.
    Batch order and dropout derive from (seed, task, round, client)."""
    t = settings.train
    seed = derive_seed(task.seed, task.strategy, task.round, "federated", comm_round, client)
    with intra_op_threads(t.threads):
        model = model_template
        model.load_state_dict(state)
        net = model.to(t.device)
        masks = float_masks(net, [mask])
        optimizer = make_optimizer(net, t)
        generator = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        net.train()
        for _ in range(settings.federated.local_epochs):
            for index in bucketed_batches(shard.lengths, t.batch_size, generator):
                tokens, labels = collate(shard, index, settings.vocab.max_len, net.settings, net.pad_id)
                masked_step(net, optimizer, masks, tokens.to(t.device), labels.to(t.device),
                            t.autocast_dtype)
        return {n: p.detach().cpu().clone() for n, p in net.state_dict().items()}


# ------------------------------------------------------------------ one simulation

@dataclass
class Simulation:
    """What the server knows about one task: its mask, the global state, the history."""

    task: Task
    mask: Mask
    state: dict[str, torch.Tensor]
    send_mask: bool = True     # False for FULL-MODEL: the clients know the full mask
    sparsity: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)
    bytes_down: int = 0
    bytes_up: int = 0
    started: float = field(default_factory=time.perf_counter)

    def download(self, comm_round: int) -> tuple[Arrays, Arrays | None]:
        """What each client receives: packed survivors, and the mask in round 1."""
        first = comm_round == 1 and self.send_mask
        return pack(self.state, self.mask), encode_mask(self.mask) if first else None

    def count(self, down: int, up: int) -> None:
        self.bytes_down += down
        self.bytes_up += up

    def record(self, comm_round: int, val_acc: float, test_acc: float) -> None:
        self.history.append({"comm_round": comm_round, "val_acc": val_acc, "test_acc": test_acc,
                             "bytes_down": self.bytes_down, "bytes_up": self.bytes_up})


def evaluate(settings: Any, model_template: Any, state: dict[str, torch.Tensor], val: EncodedSplit,
             test: EncodedSplit) -> tuple[float, float]:
    """The referee (not part of the protocol): the global model on the clients' domain's
    validation and test reviews."""
    t = settings.train
    with intra_op_threads(t.threads):
        model_template.load_state_dict(state)
        net = model_template.to(t.device)
        v, = accuracies(net, val, settings.vocab.max_len, t.eval_batch_size, t.device, t.autocast_dtype)
        te, = accuracies(net, test, settings.vocab.max_len, t.eval_batch_size, t.device, t.autocast_dtype)
    return v, te


#: A client's work in one round: (settings, task, comm round, client, packed survivors,
#: mask code or None) -> (packed update, shard size).
ClientSide = Callable[[Any, Task, int, int, Arrays, "Arrays | None"], tuple[Arrays, int]]


def run_inline(settings: Any, sim: Simulation, referee: Callable[[dict], tuple[float, float]],
               client_side: ClientSide) -> Simulation:
    """The protocol in this process: the same functions, in the same order, as the Flower
    backend (the referee at round 0 and after every round; clients 0..n-1 each round,
    averaged in that order; the mask sent in round 1 and kept by the clients)."""
    f = settings.federated
    sim.record(0, *referee(sim.state))
    kept = None
    for c in range(1, f.comm_rounds + 1):
        down, code = sim.download(c)
        kept = code if code is not None else kept
        replies = [client_side(settings, sim.task, c, i, down, kept) for i in range(f.clients)]
        updates = [u for u, _ in replies]
        sim.count(f.clients * (nbytes(down) + (nbytes(code) if code is not None else 0)),
                  sum(map(nbytes, updates)))
        sim.state = unpack(fedavg(updates, [n for _, n in replies]), sim.mask, sim.state)
        sim.record(c, *referee(sim.state))
    return sim
