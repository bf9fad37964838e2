"""What the sub-commands share: the profile and ``--set`` arguments, run and chapter
arguments, and how errors become one line and an exit code."""

from __future__ import annotations

import argparse
import errno
import os
import sys
from pathlib import Path
from typing import Any

from lottery import config
from lottery.data import DataError
from lottery.engine import cluster
from lottery.engine.results import summarize
from lottery.engine.runner import RunCounts
from lottery.engine.durable import StoreWriteError, full_error, is_full
from lottery.engine.store import RunStore
from lottery.experiment import validate as experiment
from lottery.experiment.labels import show_strategies, sparsity_label

def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1 (``--workers 0`` is an error, not "silently one")."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def csv_path(text: str) -> str:
    """An argparse type: a file that can be created (checked before any training, so a
    typo in the folder does not surface after hours of work)."""
    path = Path(text).expanduser()
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; give a file name such as {path / 'results.csv'}")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"the folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK):
        raise argparse.ArgumentTypeError(f"the folder {path.parent} is not writable")
    return str(path)


def profile_settings(args: argparse.Namespace) -> config.ExperimentSettings:
    """The chosen profile with ``--set key=value`` overrides, resolved and checked once
    (:func:`lottery.experiment.validate.resolve`); a bad value exits with one line (code 2)."""

    try:
        return experiment.from_profile(args.profile, config.parse_set(getattr(args, "set", None)))
    except ValueError as exc:
        print(f"lottery: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def add_profile_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default="course", choices=sorted(config.PROFILES),
                   help="scale of the experiment (default: course)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override one setting, e.g. --set train.max_epochs=3 "
                        "--set 'data.domains=[\"books\"]' (repeatable)")


def add_store_args(p: argparse.ArgumentParser) -> None:
    """Where runs are stored and how they train: ``--workers``, ``--runs``, ``--quiet``."""
    p.add_argument("--workers", type=positive_int, help="worker processes (default: one per usable core)")
    p.add_argument("--runs", help="run store folder (default: <cache>/runs)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", type=int, nargs="+", help="seeds (default: the profile's)")
    add_store_args(p)
    p.add_argument("--csv", type=csv_path, help="also write the results table to this CSV file "
                   "(one row per network; accuracies and sparsity as fractions 0-1, as stored; "
                   "the printed summary shows them in %%)")
    add_dask_arg(p)


def add_pairs_arg(p: argparse.ArgumentParser, metavar: str, what: str) -> None:
    """``--pairs A:B ...`` (read with :func:`parse_pairs`)."""
    p.add_argument("--pairs", nargs="+", metavar=metavar,
                   help=f"{what}, e.g. books:electronics (default: the profile's)")


def train_and_report(args: argparse.Namespace, train: Any) -> int:
    """Run ``train(store, counts)`` (a results frame) and print what it trained and found."""
    store = RunStore(args.runs)

    def go() -> int:
        counts = RunCounts()
        df = train(store, counts)
        return finish_run(args, df, store, counts)
    return engine_errors(go)


def add_dask_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dask", metavar="ADDRESS", help="train on Dask: local[:N], tcp://HOST:PORT or "
                   "slurm:FILE.yml; the run store must be a folder every worker sees")


def add_chapter_args(p: argparse.ArgumentParser) -> None:
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
    add_dask_arg(p)


def chapter_params(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
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


def usage_error(command: str, exc: Exception) -> int:
    """Bad input (chapter, parameter, setting, project): one line, exit code 2."""
    print(f"lottery {command}: {exc}", file=sys.stderr)
    return 2


def engine_errors(fn):
    """Run ``fn``; report bad settings and data problems as one line (exit 2)."""

    try:
        return fn()
    except (ValueError, DataError, cluster.ClusterError) as exc:
        print(f"lottery: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if isinstance(exc, StoreWriteError) or is_full(exc):
            full = exc if isinstance(exc, StoreWriteError) else full_error(exc.filename or config.cache_dir(), exc)
            print(f"lottery: cannot write {full.filename}: {full.strerror}", file=sys.stderr)
            return 2
        if exc.filename is None:
            raise
        # e.g. a read-only cache folder, or a file where a folder should be; every step
        # is written atomically, so nothing half-written is left behind
        hint = {errno.EACCES: "; set LOTTERY_CACHE_DIR (or --runs) to a writable folder",
                errno.EROFS: "; set LOTTERY_CACHE_DIR (or --runs) to a writable folder",
                errno.EPERM: "; set LOTTERY_CACHE_DIR (or --runs) to a writable folder",
                errno.ENOTDIR: "; a file stands where a folder should be: set LOTTERY_CACHE_DIR "
                               "(or --runs) to a folder"}.get(exc.errno, "")
        print(f"lottery: cannot use {exc.filename} ({exc.strerror}){hint}", file=sys.stderr)
        return 2


def finish_run(args: argparse.Namespace, df, store, counts: RunCounts) -> int:

    print(f"\nresults: {len(df)} rows (one per network and curve; round 0 appears under every "
          f"strategy); run store: {store.root}")
    print(f"this command trained {counts.missing_steps} networks (in {counts.run_jobs} "
          f"jobs) and loaded {counts.loaded_jobs} finished jobs from the run store")
    if args.csv:
        df.to_csv(args.csv, index=False)
        print(f"table written to {args.csv}")
    print(accuracy_table(df).to_string(index=False))
    return 0


def accuracy_table(df) -> Any:
    """The printed summary of a results table, in the book's units: sparsity in % (as the
    book labels it) and test accuracy, mean ± std over seeds, in % with one decimal (the
    CSV keeps fractions)."""
    table = show_strategies(summarize(df))   # the strategies by their labels
    table["sparsity"] = [sparsity_label(s) for s in table.sparsity]
    table["test acc (%)"] = [f"{100 * m:.1f} ± {0 if s != s else 100 * s:.1f}"
                             for m, s in zip(table.test_mean, table.test_std)]
    return table[["source", "target", "strategy", "round", "sparsity", "test acc (%)", "n_seeds"]]


def dask_executor(args: argparse.Namespace) -> Any:
    """The executor ``--dask ADDRESS`` names (None: the local process pool), passed to the
    runner explicitly (:func:`lottery.engine.runner.use_dask` is the chapters' way)."""
    address = getattr(args, "dask", None)
    return cluster.connect(address) if address else None


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
