"""The ``lottery`` command line: one sub-command per stage of the book.

Each ``add_*`` function below declares one sub-command's arguments and the function
that runs it; the work itself lives in the library modules.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable

from lottery import config


def _profile_settings(args: argparse.Namespace) -> config.ExperimentSettings:
    """The chosen profile with ``--set key=value`` overrides (values parsed as JSON)."""
    settings = config.get_profile(args.profile)
    changes: dict[str, Any] = {}
    for item in getattr(args, "set", None) or []:
        key, sep, raw = item.partition("=")
        if not sep:
            raise SystemExit(f"--set expects key=value, got {item!r}")
        try:
            changes[key] = json.loads(raw)
        except json.JSONDecodeError:
            changes[key] = raw
    try:
        return config.override(settings, **changes)
    except (ValueError, TypeError) as exc:
        raise SystemExit(f"lottery: {exc}") from None


def _add_profile_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default="course", choices=sorted(config.PROFILES),
                   help="scale of the experiment (default: course)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override one setting, e.g. --set train.max_epochs=3 "
                        "--set 'data.domains=[\"books\"]' (repeatable)")


# ---------------------------------------------------------------- sub-commands
# (filled in by the stage that owns each: divergence, tickets/transfer, chapter/book)

COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = []


def command(fn: Callable[[argparse._SubParsersAction], None]) -> Callable:
    COMMANDS.append(fn)
    return fn


@command
def add_divergence(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("divergence", help="JSD between the domains' subword unigram "
                                          "distributions (paper Fig. 1)")
    _add_profile_args(p)
    p.add_argument("--json", action="store_true",
                   help="print {domain: {domain: jsd}} (raw JSD, log base 2) as JSON")
    p.set_defaults(run=_run_divergence)


def _run_divergence(args: argparse.Namespace) -> int:
    from lottery import data, divergence  # imported here: keeps `lottery --help` fast

    settings = _profile_settings(args)
    try:
        table = divergence.jsd_matrix(settings.data, settings.vocab)
    except data.DataError as exc:
        print(f"lottery: {exc}", file=sys.stderr)
        return 2
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


def _chapter_params(items: list[list[str]] | None) -> dict[str, Any]:
    """``-p NAME VALUE`` pairs; VALUE is parsed as JSON (plain strings allowed)."""
    params: dict[str, Any] = {}
    for name, raw in items or []:
        try:
            params[name] = json.loads(raw)
        except json.JSONDecodeError:
            params[name] = raw
    return params


def _add_chapter_param_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"),
                   help="chapter parameter, VALUE as JSON, e.g. -p domains '[\"books\"]' "
                        "-p rounds 8 (repeatable)")


@command
def add_chapter(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("chapter", help="execute one book chapter with parameters (papermill)")
    p.add_argument("name", nargs="?", help="chapter: intro, data, divergence, tickets, "
                                           "transfer, phase, verdict")
    p.add_argument("--profile", default="course", choices=sorted(config.PROFILES),
                   help="experiment profile (default: course)")
    _add_chapter_param_arg(p)
    p.add_argument("--output", "-o", help="executed notebook (default: book/chapters/NAME.ipynb)")
    p.add_argument("--list", action="store_true", help="list chapters and their parameters")
    p.set_defaults(run=_run_chapter)


def _run_chapter(args: argparse.Namespace) -> int:
    from lottery import book

    if args.list:
        for ch in book.CHAPTERS:
            params = ", ".join(f"{k}={v!r}" for k, v in book.chapter_parameters(ch.name).items())
            print(f"{ch.name:<11} {ch.title:<32} {params}")
        return 0
    if not args.name:
        raise SystemExit("lottery chapter: give a chapter name (or --list)")
    params = _chapter_params(args.parameter)
    profile = params.pop("profile", args.profile)
    try:
        book.chapter(args.name)
        book.check_parameters(args.name, {"profile": profile, **params})
    except ValueError as exc:
        raise SystemExit(f"lottery chapter: {exc}") from None
    try:
        book.execute_chapter(args.name, profile, params, output=args.output)
    except book.ChapterError as exc:
        print(f"lottery chapter: {exc}", file=sys.stderr)
        return 1
    return 0


@command
def add_book(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("book", help="execute every chapter and build the HTML book")
    p.add_argument("--profile", default="course", choices=sorted(config.PROFILES),
                   help="experiment profile (default: course)")
    _add_chapter_param_arg(p)
    p.add_argument("--no-execute", action="store_true",
                   help="rebuild the HTML from the already executed chapters")
    p.add_argument("--no-html", action="store_true", help="execute the chapters only")
    p.add_argument("--book-dir", help="build in this folder (a copy of book/) instead of book/")
    p.add_argument("--assets-only", action="store_true",
                   help="only put Vega and MathJax into book/_static (offline set-up)")
    p.add_argument("--update-golden", action="store_true",
                   help="re-execute every chapter with the smoke profile and rewrite "
                        "tests/golden/ (the nbval reference copies)")
    p.set_defaults(run=_run_book)


def _run_book(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lottery import book

    if args.assets_only:
        book.ensure_assets()
        return 0
    if args.update_golden:
        book.update_golden("smoke")
        return 0
    params = _chapter_params(args.parameter)
    profile = params.pop("profile", args.profile)
    try:
        book.build_book(profile, params, book_dir=Path(args.book_dir) if args.book_dir else None,
                        execute=not args.no_execute, html=not args.no_html)
    except (ValueError, RuntimeError) as exc:
        print(f"lottery book: {exc}", file=sys.stderr)
        return 1
    return 0


def _add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", type=int, nargs="+", help="seeds (default: the profile's)")
    p.add_argument("--workers", type=int, help="worker processes (default: one per core)")
    p.add_argument("--runs", help="run store folder (default: <cache>/runs)")
    p.add_argument("--csv", help="also write the results table to this CSV file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _finish_run(args: argparse.Namespace, df, store) -> int:
    from lottery.tickets import summarize

    print(f"\nresults: {len(df)} trained networks; run store: {store.root}")
    if args.csv:
        df.to_csv(args.csv, index=False)
        print(f"table written to {args.csv}")
    table = summarize(df)
    table["test_acc"] = [f"{m:.3f} ± {0 if s != s else s:.3f}" for m, s in zip(table.test_mean, table.test_std)]
    print(table[["source", "target", "strategy", "round", "sparsity", "test_acc", "n_seeds"]]
          .to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    return 0


def _engine_errors(fn):
    """Run ``fn``; report bad settings and data problems as one line (exit 2)."""
    from lottery.data import DataError

    try:
        return fn()
    except (ValueError, DataError) as exc:
        print(f"lottery: {exc}", file=sys.stderr)
        return 2


@command
def add_tickets(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tickets", help="find lottery tickets (FULL-MODEL, TICKET-RESET, TICKET-RANDOM, "
                                       "RANDOM-PRUNING) per domain and seed; resumable")
    _add_profile_args(p)
    p.add_argument("--domains", nargs="+", help="domains (default: the profile's)")
    p.add_argument("--strategies", nargs="+", help="reset, random, random_pruning (default: the profile's)")
    _add_run_args(p)
    p.set_defaults(run=_run_tickets)


def _run_tickets(args: argparse.Namespace) -> int:
    from lottery.store import RunStore
    from lottery.tickets import run_tickets

    settings = _profile_settings(args)
    store = RunStore(args.runs)

    def go():
        df = run_tickets(settings, args.domains, args.seeds, args.strategies, not args.quiet,
                         args.workers, store)
        return _finish_run(args, df, store)
    return _engine_errors(go)


@command
def add_transfer(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("transfer", help="retrain a source domain's ticket masks in a target domain "
                                        "(MASKS-RESET, MASKS-RANDOM); resumable")
    _add_profile_args(p)
    p.add_argument("--pairs", nargs="+", metavar="SOURCE:TARGET",
                   help="transfer tasks, e.g. books:electronics (default: the profile's)")
    p.add_argument("--strategies", nargs="+", default=["masks_reset", "masks_random"])
    _add_run_args(p)
    p.set_defaults(run=_run_transfer)


def _run_transfer(args: argparse.Namespace) -> int:
    from lottery.store import RunStore
    from lottery.tickets import run_transfer

    settings = _profile_settings(args)
    store = RunStore(args.runs)
    pairs = None
    if args.pairs:
        pairs = []
        for item in args.pairs:
            source, sep, target = item.partition(":")
            if not sep:
                raise SystemExit(f"lottery: --pairs expects SOURCE:TARGET, got {item!r}")
            pairs.append((source, target))

    def go():
        df = run_transfer(settings, pairs, args.seeds, args.strategies, not args.quiet, args.workers, store)
        return _finish_run(args, df, store)
    return _engine_errors(go)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lottery", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted; finished work is kept and a re-run resumes from it", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
