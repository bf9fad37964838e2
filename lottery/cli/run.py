"""``lottery divergence``, ``tickets``, ``transfer`` and ``claims``: the experiments, from
the command line."""

from __future__ import annotations

import argparse
import json
import sys

from lottery import config, data
from lottery.cli.args import (add_pairs_arg, add_profile_args, add_run_args, add_store_args, dask_executor,
                              engine_errors, parse_pairs, profile_settings, train_and_report)
from lottery.engine import runner
from lottery.engine.results import results_frame
from lottery.engine.runner import run_tickets, run_transfer
from lottery.engine.store import RunStore
from lottery.stats import claims, divergence, robustness

def add_divergence(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("divergence", help="JSD between the domains' subword unigram "
                                          "distributions (paper Fig. 1)")
    add_profile_args(p)
    p.add_argument("--json", action="store_true",
                   help="print {domain: {domain: jsd}} (raw JSD, log base 2) as JSON")
    p.set_defaults(run=_run_divergence)


def _run_divergence(args: argparse.Namespace) -> int:

    settings = profile_settings(args)
    data.use_display_names(settings.data.dataset)
    return engine_errors(lambda: _print_divergence(args, settings))


def _print_divergence(args: argparse.Namespace, settings: config.ExperimentSettings) -> int:

    table = divergence.jsd_matrix(settings.data, settings.vocab)
    square = divergence.to_square(table)
    (lo_a, lo_b, lo), (hi_a, hi_b, hi) = divergence.extreme_pairs(table)
    if args.json:
        print(json.dumps({a: {b: float(v) for b, v in row.items()}
                          for a, row in square.iterrows()}, indent=2))
        print(f"raw JSD, log base 2; Fig. 1 shows JSD x 1e5. most similar: {lo_a}-{lo_b}, "
              f"least similar: {hi_a}-{hi_b}", file=sys.stderr)
        return 0
    names = {d: data.paper_name(d) for d in square.index}
    print("Jensen-Shannon divergence x 1e5 (log base 2) of subword unigram distributions")
    print((square * divergence.DISPLAY_SCALE).rename(index=names, columns=names)
          .round(1).to_string())
    print(f"most similar:  {names[lo_a]} - {names[lo_b]}  ({lo * divergence.DISPLAY_SCALE:.1f})")
    print(f"least similar: {names[hi_a]} - {names[hi_b]}  ({hi * divergence.DISPLAY_SCALE:.1f})")
    return 0


def add_tickets(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tickets", help="find lottery tickets (FULL-MODEL, TICKET-RESET, TICKET-RANDOM, "
                                       "RANDOM-PRUNING) per domain and seed; resumable")
    add_profile_args(p)
    p.add_argument("--domains", nargs="+", help="domains (default: the profile's)")
    p.add_argument("--strategies", nargs="+",
                   help="reset, random, random_pruning, rewind (default: the profile's)")
    add_run_args(p)
    p.set_defaults(run=_run_tickets)


def _run_tickets(args: argparse.Namespace) -> int:

    settings = profile_settings(args)
    return train_and_report(args, lambda store, counts: run_tickets(
        settings, args.domains, args.seeds, args.strategies, not args.quiet, args.workers, store,
        dask_executor(args), counts))


def add_transfer(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("transfer", help="retrain a source domain's ticket masks in a target domain "
                                        "(MASKS-RESET, MASKS-RANDOM); resumable")
    add_profile_args(p)
    add_pairs_arg(p, "SOURCE:TARGET", "transfer tasks")
    p.add_argument("--strategies", nargs="+", default=["masks_reset", "masks_random"],
                   help="masks_reset, masks_random, masks_rewind (default: the first two)")
    add_run_args(p)
    p.set_defaults(run=_run_transfer)


def _run_transfer(args: argparse.Namespace) -> int:

    settings = profile_settings(args)
    pairs = parse_pairs(args.pairs, "SOURCE:TARGET")
    return train_and_report(args, lambda store, counts: run_transfer(
        settings, pairs, args.seeds, args.strategies, not args.quiet, args.workers, store,
        dask_executor(args), counts))


def add_claims(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("claims", help="test the paper's claims (§5) on a profile's results, with "
                                      "power and robustness (trains what the run store lacks)")
    add_profile_args(p)
    p.add_argument("--json", action="store_true", help="print JSON: claim, paper, measured, "
                   "interval, test, verdict, mde, seeds_needed, seeds, robust, robustness, details")
    p.add_argument("--bootstrap", type=int, default=robustness.BOOTSTRAP, metavar="B",
                   help=f"bootstrap resamples of the seeds for 'robust' (default {robustness.BOOTSTRAP})")
    add_store_args(p)
    p.set_defaults(run=_run_claims)


def _run_claims(args: argparse.Namespace) -> int:

    settings = profile_settings(args)   # checked once; a bad --set fails here, in one line
    data.use_display_names(settings.data.dataset)
    store = RunStore(args.runs)

    def go():   # every domain, seed and transfer pair of the settings
        found = runner.run_tickets(settings, progress=not args.quiet, workers=args.workers, store=store)
        moved = (runner.run_transfer(settings, progress=not args.quiet, workers=args.workers, store=store)
                 if settings.transfer_pairs else results_frame([]))
        jsd = divergence.jsd_matrix(settings.data, settings.vocab)
        found_claims = claims.robust_claims(found, moved, jsd, settings.transfer_pairs, args.bootstrap)
        if args.json:
            print(json.dumps([c.record() for c in found_claims], indent=2, ensure_ascii=False))
            return 0
        for c in found_claims:
            print(f"{c.claim}\n  paper:    {c.paper}\n  measured: {c.measured}\n"
                  f"  interval: {c.interval}\n  test:     {c.test}\n  verdict:  {c.verdict} "
                  f"[{claims.status(c)}]\n  power:    minimum detectable effect {c.mde} pts, "
                  f"seeds for ±2 pts: {c.seeds_needed}\n  robust:   {c.robustness}\n")
        return 0
    return engine_errors(go)


#: The sub-commands this module adds (in ``lottery --help`` order).
COMMANDS = (add_divergence, add_tickets, add_transfer, add_claims,)
