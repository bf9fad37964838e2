"""The ``lottery`` command line: one sub-command per stage of the book.

Each ``add_*`` function below declares one sub-command's arguments and the function
that runs it; the work itself lives in the library modules. Those are imported inside
the functions that use them, so that ``lottery --help`` does not load torch or jupyter.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable

from lottery import config


def _profile_settings(args: argparse.Namespace) -> config.ExperimentSettings:
    """The chosen profile with ``--set key=value`` overrides, resolved and checked once
    (:func:`lottery.experiment.resolve`); a bad value exits with one line (code 2)."""
    from lottery import experiment

    try:
        return experiment.from_profile(args.profile, config.parse_set(getattr(args, "set", None)))
    except ValueError as exc:
        print(f"lottery: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


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
    from lottery import data

    settings = _profile_settings(args)
    data.use_display_names(settings.data.dataset)
    return _engine_errors(lambda: _print_divergence(args, settings))


def _print_divergence(args: argparse.Namespace, settings: config.ExperimentSettings) -> int:
    from lottery import data, divergence

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


def _chapter_params(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The profile and chapter parameters of ``lottery chapter`` / ``lottery book``.

    ``-p NAME VALUE`` gives a chapter parameter, VALUE read by the same JSON-or-string
    rule as ``--set``; ``--set KEY=VALUE`` settings are merged into the ``overrides``
    parameter (``--set`` wins), so every command speaks one settings vocabulary.
    """
    params = config.parse_set([f"{name}={raw}" for name, raw in args.parameter or []])
    settings = config.parse_set(args.set)
    if settings:
        given = params.get("overrides") or {}
        if not isinstance(given, dict):
            raise ValueError(f"parameter 'overrides' must be a dict of dotted settings, "
                             f"got {given!r}")
        params["overrides"] = {**given, **settings}
    if getattr(args, "dask", None):
        params["dask"] = args.dask
    return params.pop("profile", args.profile), params


def _add_chapter_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default="course", choices=sorted(config.PROFILES),
                   help="experiment profile (default: course)")
    p.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"),
                   help="chapter parameter, VALUE as JSON, e.g. -p domains '[\"books\"]' "
                        "-p rounds 8 -p p 0.35 (repeatable)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override one setting, like `lottery tickets --set` (it goes into "
                        "the 'overrides' parameter), e.g. --set train.lr=0.001 (repeatable)")
    p.add_argument("--project", metavar="DIR",
                   help="the lottery-book project (default: found from the working directory)")
    _add_dask_arg(p)


def _add_dask_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dask", metavar="ADDRESS", help="train on Dask: local[:N], tcp://HOST:PORT or "
                   "slurm:FILE.yml; the run store must be a folder every worker sees")


def _usage_error(command: str, exc: Exception) -> int:
    """Bad input (chapter, parameter, setting, project): one line, exit code 2."""
    print(f"lottery {command}: {exc}", file=sys.stderr)
    return 2


@command
def add_chapter(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("chapter", help="execute one book chapter with parameters (papermill)")
    p.add_argument("name", nargs="?", help="chapter: intro, data, divergence, tickets, "
                                           "transfer, phase, ablation, verdict")
    _add_chapter_args(p)
    p.add_argument("--output", "-o", help="executed notebook (default: "
                                          "book/chapters/NAME.ipynb in the project)")
    p.add_argument("--list", action="store_true", help="list chapters and their parameters")
    p.set_defaults(run=_run_chapter)


def _run_chapter(args: argparse.Namespace) -> int:
    from lottery import build, chapters

    try:
        if args.list:
            notebooks = build.notebooks_dir(args.project)
            for ch in chapters.CHAPTERS:
                declared = chapters.read_chapter(ch.name, notebooks).parameters
                params = ", ".join(f"{k}={v!r}" for k, v in declared.items())
                print(f"{ch.name:<11} {ch.title:<32} {params}")
            return 0
        if not args.name:
            raise ValueError("give a chapter name (or --list)")
        profile, params = _chapter_params(args)
        out = build.execute_chapter(args.name, profile, params, output=args.output,
                                    project=args.project)
        if args.output is None and chapters.chapter(args.name).name != "intro":
            build.refresh_intro(out.parent, args.project)
            print("lottery chapter: rebuild the HTML with `lottery book --no-execute`")
    except (ValueError, build.ProjectNotFoundError) as exc:
        return _usage_error("chapter", exc)
    except build.ChapterError as exc:
        print(f"lottery chapter: {exc}", file=sys.stderr)
        return 1
    return 0


@command
def add_book(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("book", help="execute every chapter and build the HTML book")
    _add_chapter_args(p)
    p.add_argument("--no-execute", action="store_true",
                   help="rebuild the HTML from the already executed chapters")
    p.add_argument("--no-html", action="store_true", help="execute the chapters only")
    p.add_argument("--book-dir", help="build in this folder (a copy of book/) instead of book/")
    p.add_argument("--assets-only", action="store_true",
                   help="only put Vega and MathJax into book/_static (offline set-up)")
    p.set_defaults(run=_run_book)


def _run_book(args: argparse.Namespace) -> int:
    from lottery import build

    book_dir = Path(args.book_dir) if args.book_dir else None
    try:
        if args.assets_only:
            build.ensure_assets(book_dir or build.find_project(args.project) / build.BOOK_DIR)
            return 0
        profile, params = _chapter_params(args)
        build.build_book(profile, params, book_dir=book_dir, execute=not args.no_execute,
                         html=not args.no_html, project=args.project)
    except (ValueError, build.ProjectNotFoundError) as exc:
        return _usage_error("book", exc)
    except RuntimeError as exc:
        print(f"lottery book: {exc}", file=sys.stderr)
        return 1
    return 0


def _add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", type=int, nargs="+", help="seeds (default: the profile's)")
    p.add_argument("--workers", type=int, help="worker processes (default: one per core)")
    p.add_argument("--runs", help="run store folder (default: <cache>/runs)")
    p.add_argument("--csv", help="also write the results table to this CSV file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_dask_arg(p)


def _finish_run(args: argparse.Namespace, df, store) -> int:
    from lottery.procedures import summarize
    from lottery.runner import LAST_RUN

    print(f"\nresults: {len(df)} rows (one per network and curve; round 0 appears under every "
          f"strategy); run store: {store.root}")
    print(f"this command trained {LAST_RUN['missing_steps']} networks (in {LAST_RUN['run_jobs']} "
          f"jobs) and loaded {LAST_RUN['loaded_jobs']} finished jobs from the run store")
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
    except OSError as exc:
        if exc.filename is None:
            raise
        # e.g. a read-only cache folder, or a file where a folder should be; every step
        # is written atomically, so nothing half-written is left behind
        print(f"lottery: cannot use {exc.filename} ({exc.strerror}); set LOTTERY_CACHE_DIR "
              f"(or --runs) to a writable folder", file=sys.stderr)
        return 2


@command
def add_tickets(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tickets", help="find lottery tickets (FULL-MODEL, TICKET-RESET, TICKET-RANDOM, "
                                       "RANDOM-PRUNING) per domain and seed; resumable")
    _add_profile_args(p)
    p.add_argument("--domains", nargs="+", help="domains (default: the profile's)")
    p.add_argument("--strategies", nargs="+", help="reset, random, random_pruning, rewind (default: the profile's)")
    _add_run_args(p)
    p.set_defaults(run=_run_tickets)


def _run_tickets(args: argparse.Namespace) -> int:
    from lottery.runner import run_tickets, use_dask
    from lottery.store import RunStore

    settings = _profile_settings(args)
    store = RunStore(args.runs)

    def go():
        use_dask(args.dask)
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
    p.add_argument("--strategies", nargs="+", default=["masks_reset", "masks_random"],
                   help="masks_reset, masks_random, masks_rewind (default: the first two)")
    _add_run_args(p)
    p.set_defaults(run=_run_transfer)


def _run_transfer(args: argparse.Namespace) -> int:
    from lottery.runner import run_transfer, use_dask
    from lottery.store import RunStore

    settings = _profile_settings(args)
    store = RunStore(args.runs)
    pairs = parse_pairs(args.pairs, "SOURCE:TARGET")

    def go():
        use_dask(args.dask)
        df = run_transfer(settings, pairs, args.seeds, args.strategies, not args.quiet, args.workers, store)
        return _finish_run(args, df, store)
    return _engine_errors(go)


def parse_pairs(items: list[str] | None, form: str) -> list[tuple[str, str]] | None:
    """``--pairs A:B ...`` as pairs (None when not given); a malformed item exits (code 2)."""
    if not items:
        return None
    pairs = []
    for item in items:
        a, sep, b = item.partition(":")
        if not sep:
            print(f"lottery: --pairs expects {form}, got {item!r}", file=sys.stderr)
            raise SystemExit(2)
        pairs.append((a, b))
    return pairs


@command
def add_claims(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("claims", help="test the paper's eight claims on a profile's results "
                                      "(trains what the run store lacks)")
    _add_profile_args(p)
    p.add_argument("--json", action="store_true", help="print JSON: claim, paper, measured, "
                                                       "interval, test, verdict, details")
    p.add_argument("--workers", type=int, help="worker processes (default: one per core)")
    p.add_argument("--runs", help="run store folder (default: <cache>/runs)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_run_claims)


def _run_claims(args: argparse.Namespace) -> int:
    from lottery import chapters, claims, divergence, runner
    from lottery.procedures import results_frame
    from lottery.store import RunStore

    _profile_settings(args)  # a bad --set fails here, in one line
    store = RunStore(args.runs)

    def go():
        run = chapters.chapter_settings(args.profile, overrides=config.parse_set(args.set))
        found = runner.run_tickets(run.settings, run.domains, run.seeds, progress=not args.quiet,
                                   workers=args.workers, store=store)
        moved = (runner.run_transfer(run.settings, run.pairs, run.seeds, progress=not args.quiet,
                                     workers=args.workers, store=store)
                 if run.pairs else results_frame([]))
        jsd = divergence.jsd_matrix(run.settings.data, run.settings.vocab)
        found_claims = claims.claim_list(found, moved, jsd, run.pairs)
        if args.json:
            print(json.dumps([c.record() for c in found_claims], indent=2, ensure_ascii=False))
            return 0
        for c in found_claims:
            print(f"{c.claim}\n  paper:    {c.paper}\n  measured: {c.measured}\n"
                  f"  interval: {c.interval}\n  test:     {c.test}\n  verdict:  {c.verdict}\n")
        return 0
    return _engine_errors(go)


def build_parser() -> argparse.ArgumentParser:
    import lottery.cli_data  # noqa: F401  (registers `datasets` and `data check`)
    import lottery.cli_plan  # noqa: F401  (registers `plan` and `profile`)
    import lottery.cli_federated  # noqa: F401  (registers `federated`)

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
