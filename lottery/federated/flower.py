"""The federated protocol of :mod:`lottery.federated.protocol` as a Flower simulation.

Flower (``flwr``, the ``federated`` extra) runs each client as a ``ClientApp`` in a
Ray worker process (one CPU each, so a 2-core machine trains two clients at a time)
and the server as a ``ServerApp`` whose messages go through Flower's grid. The server
is Flower's :class:`FedAvg` strategy with three changes, all in :class:`MaskedFedAvg`:
only survivors travel (packed arrays), the mask travels once (first round), and replies
are averaged in client order (so the float sum, hence every number, is the same on
every re-run, and equal to the inline backend's).

Bytes are counted from the arrays in the messages themselves. One ``run_simulation``
call runs every pending task (Ray starts once); each finished task is written to the
run store before the next starts, so an interrupted run resumes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import logging
import os
from typing import Any, Callable, Iterator, Sequence

from lottery import config
from lottery.federated import protocol as fed

INSTALL_HINT = ("federated.backend=flower needs Flower, which is not installed: "
                "pip install 'lottery-book[federated]' (in a checkout: "
                "pip install -c constraints/pinned.txt -e '.[federated]'); or leave "
                "federated.backend at its default, inline (the same numbers, in process)")


class FlowerMissing(ImportError):
    """The ``federated`` extra (flwr[simulation], Ray) is not installed; the message says
    how to install it. The command line prints it as one line (exit 2)."""


def require() -> None:
    """Raise :class:`FlowerMissing` unless Flower's simulation engine (flwr and Ray) can
    be imported."""
    try:
        import flwr.simulation  # noqa: F401  (the federated extra)
    except ImportError as exc:
        raise FlowerMissing(f"{INSTALL_HINT} ({exc})") from None
    if importlib.util.find_spec("ray") is None:     # flwr without its `simulation` extra
        raise FlowerMissing(f"{INSTALL_HINT} (No module named 'ray')")


def _records(arrays: fed.Arrays) -> Any:
    from flwr.app import Array, ArrayRecord

    return ArrayRecord({n: Array(a) for n, a in arrays.items()})


def _arrays(record: Any) -> fed.Arrays:
    return {n: record[n].numpy() for n in record.keys()}


def client_app(settings: Any, client_side: Callable[..., tuple[fed.Arrays, int]]) -> Any:
    """A ClientApp whose ``train`` message handler calls ``client_side``: decode, train
    locally, pack (see :func:`lottery.federated.jobs.client_update`)."""
    from flwr.app import ConfigRecord, Context, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp

    app = ClientApp()

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        client = int(context.node_config["partition-id"])
        cfg = msg.content["config"]
        task = fed.Task(str(cfg["server"]), str(cfg["clients_domain"]), int(cfg["seed"]),
                        str(cfg["strategy"]), int(cfg["round"]))
        if "mask" in msg.content:          # first round of a task: keep its mask
            context.state["mask"] = msg.content["mask"]
            context.state["mask-of"] = ConfigRecord({"task": task.name})
        kept = "mask-of" in context.state and context.state["mask-of"]["task"] == task.name
        mask_code = _arrays(context.state["mask"]) if kept else None   # None: no mask (dense)
        update, examples = client_side(settings, task, int(cfg["server-round"]), client,
                                       _arrays(msg.content["arrays"]), mask_code)
        return Message(content=RecordDict({
            "arrays": _records(update),
            "metrics": MetricRecord({"num-examples": examples, "client": client})}), reply_to=msg)

    return app


def masked_fedavg(sim: fed.Simulation, clients: int) -> Any:
    """Flower's FedAvg for one task: survivors only, mask once, ordered average."""
    from flwr.app import MetricRecord
    from flwr.serverapp.strategy import FedAvg

    class MaskedFedAvg(FedAvg):
        def configure_train(self, server_round, arrays, config, grid):
            messages = list(super().configure_train(server_round, arrays, config, grid))
            down, mask_code = sim.download(server_round)
            for m in messages:
                if mask_code is not None:
                    m.content["mask"] = _records(mask_code)
            extra = fed.nbytes(mask_code) if mask_code is not None else 0
            sim.count(sum(fed.nbytes(_arrays(m.content["arrays"])) + extra for m in messages), 0)
            return messages

        def aggregate_train(self, server_round, replies):
            replies = list(replies)
            failed = [m.error.reason for m in replies if m.has_error()]
            if failed or len(replies) != clients:
                raise RuntimeError(f"federated task {sim.task.name}, round {server_round}: "
                                   f"{len(replies) - len(failed)} of {clients} clients replied; "
                                   f"errors: {failed}")
            replies.sort(key=lambda m: int(m.content["metrics"]["client"]))
            updates = [_arrays(m.content["arrays"]) for m in replies]
            sizes = [int(m.content["metrics"]["num-examples"]) for m in replies]
            sim.count(0, sum(map(fed.nbytes, updates)))
            return _records(fed.fedavg(updates, sizes)), MetricRecord({"examples": sum(sizes)})

    return MaskedFedAvg(fraction_train=1.0, fraction_evaluate=0.0, min_train_nodes=clients,
                        min_available_nodes=clients)


@contextlib.contextmanager
def _errors_only(*names: str) -> Iterator[None]:
    """The named loggers at ERROR while the block runs."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def run(settings: Any, tasks: Sequence[fed.Task], prepare: Callable[[fed.Task], tuple[fed.Simulation, Any]],
        finish: Callable[[fed.Simulation], None], client_side: Callable[..., tuple[fed.Arrays, int]],
        workers: int | None = None, on_task: Callable[[fed.Task], None] | None = None) -> None:
    """Run ``tasks`` in one Flower simulation with ``federated.clients`` virtual clients.

    ``prepare`` gives a task's starting :class:`Simulation` and a referee
    ``evaluate(state) -> (val, test)``; ``finish`` stores it.
    """
    require()
    from flwr.app import ConfigRecord, Context
    from flwr.serverapp import Grid, ServerApp
    from flwr.simulation import run_simulation

    f = settings.federated
    failure: list[BaseException] = []
    server = ServerApp()

    @server.main()
    def main(grid: Grid, context: Context) -> None:
        try:
            for task in tasks:
                sim, referee = prepare(task)

                def evaluate_fn(server_round: int, arrays: Any) -> Any:
                    from flwr.app import MetricRecord

                    sim.state = fed.unpack(_arrays(arrays), sim.mask, sim.state)
                    val, test = referee(sim.state)
                    sim.record(server_round, val, test)
                    return MetricRecord({"val_acc": val, "test_acc": test})

                masked_fedavg(sim, f.clients).start(
                    grid=grid, initial_arrays=_records(fed.pack(sim.state, sim.mask)),
                    num_rounds=f.comm_rounds, train_config=ConfigRecord(dataclasses.asdict(task)),
                    evaluate_fn=evaluate_fn)
                finish(sim)
                if on_task:
                    on_task(task)
        except BaseException as exc:   # re-raised in the caller's thread below
            failure.append(exc)

    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    with _errors_only("flwr", "ray", "ray.widgets"):   # the book shows errors only
        run_simulation(
            server_app=server, client_app=client_app(settings, client_side),
            num_supernodes=f.clients,
            backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                            "init_args": {"num_cpus": workers or config.usable_cores(),
                                          "logging_level": logging.ERROR, "log_to_driver": False,
                                          "include_dashboard": False}})
    if failure:
        raise failure[0]
