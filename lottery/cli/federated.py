"""``lottery federated``: §7's sparsify-and-transfer, simulated (see :mod:`lottery.federated.protocol`)."""

from __future__ import annotations

import argparse
import json

from lottery.cli.args import (add_pairs_arg, add_profile_args, add_run_args, engine_errors, parse_pairs,
                              profile_settings)
from lottery.engine.runner import use_dask
from lottery.engine.store import RunStore
from lottery.federated import jobs as federated_runs, report as federated_report


def add_federated(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("federated", help="train the server's ticket by federated averaging on "
                                         "clients of another domain (§7); resumable")
    add_profile_args(p)
    add_pairs_arg(p, "SERVER:CLIENTS", "federated tasks (the profile's: federated.pairs)")
    add_run_args(p)
    p.set_defaults(run=_run_federated)


def _run_federated(args: argparse.Namespace) -> int:

    settings = profile_settings(args)
    store = RunStore(args.runs)
    pairs = parse_pairs(args.pairs, "SERVER:CLIENTS")
    if pairs:
        settings = profile_settings(argparse.Namespace(
            profile=args.profile, set=(args.set or []) + [f"federated.pairs={json.dumps(pairs)}"]))

    def go() -> int:
        use_dask(args.dask)     # for ticket runs the store lacks
        rows = federated_runs.run_federated(settings, seeds=args.seeds, store=store,
                                            progress=not args.quiet, workers=args.workers)
        results = federated_runs.results_frame(rows)
        if args.csv:
            results.to_csv(args.csv, index=False)
            print(f"table written to {args.csv}")
        print(federated_report.key_points(results, federated_runs.history_frame(rows)).to_string())
        return 0
    return engine_errors(go)


#: The sub-commands this module adds.
COMMANDS = (add_federated,)
