"""``lottery federated``: §7's sparsify-and-transfer, simulated (see :mod:`lottery.federated`)."""

from __future__ import annotations

import argparse
import json

from lottery.cli import (_add_profile_args, _add_run_args, _engine_errors, _profile_settings, command,
                         parse_pairs)


@command
def add_federated(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("federated", help="train the server's ticket by federated averaging on "
                                         "clients of another domain (§7); resumable")
    _add_profile_args(p)
    p.add_argument("--pairs", nargs="+", metavar="SERVER:CLIENTS",
                   help="tasks, e.g. books:electronics (default: the profile's federated.pairs)")
    _add_run_args(p)
    p.set_defaults(run=_run_federated)


def _run_federated(args: argparse.Namespace) -> int:
    from lottery import federated_report, federated_runs
    from lottery.runner import use_dask
    from lottery.store import RunStore

    settings = _profile_settings(args)
    store = RunStore(args.runs)
    pairs = parse_pairs(args.pairs, "SERVER:CLIENTS")
    if pairs:
        settings = _profile_settings(argparse.Namespace(
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
    return _engine_errors(go)
