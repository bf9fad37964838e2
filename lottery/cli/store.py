"""``lottery store export`` and ``lottery store import``: a filled run store as one
checksummed archive (:mod:`lottery.engine.archive`), to hand a built book's results to a
class: students import it and build the book in a minute, training only what they change.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lottery import config
from lottery.book import plan
from lottery.cli.args import engine_errors, profile_settings
from lottery.engine import archive
from lottery.engine.store import RunStore

WITHOUT_WEIGHTS = ("without weights: the book builds from these runs and anything that trains new "
                   "run folders (other seeds, domains or settings) works; extending an imported "
                   "chain to more rounds (-p rounds N) retrains that chain here, because its latest "
                   "weights are missing: export with --with-weights to extend it instead")
WITH_WEIGHTS = "with weights: imported chains resume and extend to more rounds as if trained here"


def add_store(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("store", help="export the run store as one checksummed archive (a class gets "
                                     "the built book's results), or import one")
    actions = p.add_subparsers(dest="store_command", required=True, metavar="{export,import}")
    e = actions.add_parser("export", help="write the run store's finished runs (metrics, masks, θ0; "
                                          "weights optional), the vocabulary and the encoded data "
                                          "to a .tar.gz with a SHA-256 manifest")
    e.add_argument("archive", metavar="ARCHIVE", help="the archive to write, e.g. course-runs.tar.gz")
    e.add_argument("--profile", choices=sorted(config.PROFILES),
                   help="only the runs of this profile's book (default: every run in the store)")
    e.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="with --profile: override one setting, as the book was built (repeatable)")
    e.add_argument("--with-weights", action="store_true",
                   help="also the trained weights of each chain's latest round (larger; needed to "
                        "extend imported chains to more rounds)")
    e.add_argument("--runs", help="run store folder (default: <cache>/runs)")
    e.set_defaults(run=_run_export)
    i = actions.add_parser("import", help="verify every checksum of an archive, then add its runs to "
                                          "the run store (finished steps already there are kept)")
    i.add_argument("archive", metavar="ARCHIVE", help="an archive written by `lottery store export`")
    i.add_argument("--runs", help="run store folder (default: <cache>/runs)")
    i.set_defaults(run=_run_import)


def _profile_runs(args: argparse.Namespace, store: RunStore) -> tuple[list[Path], int, int]:
    """The run folders of the profile's book, its trainings and how many are stored."""
    settings = profile_settings(args)
    networks = [n for nets in plan.book_networks(settings).values() for n in nets]
    stored = sum(n.trainings for n in networks if (n.job.path(store) / n.step / "metrics.json").exists())
    return sorted({n.job.path(store) for n in networks}), sum(n.trainings for n in networks), stored


def _n(k: int, what: str) -> str:
    return f"{k:,} {what}{'' if k == 1 else 's'}"


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


def _run_export(args: argparse.Namespace) -> int:
    if args.set and not args.profile:
        print("lottery store export: --set selects a profile's runs; give --profile too", file=sys.stderr)
        return 2
    store = RunStore(args.runs)

    def go() -> int:
        runs, total, stored = _profile_runs(args, store) if args.profile else (None, 0, 0)
        target = Path(args.archive)
        counts = archive.export_store(target, store, config.cache_dir(), runs, args.with_weights)
        print(f"lottery store export: wrote {target} ({_mb(target.stat().st_size)}): {_n(counts.runs, 'run')}, "
              f"{_n(counts.steps, 'finished network')} (metrics and masks"
              f"{', weights of the latest rounds' if args.with_weights else ', no weights'}), "
              f"{_n(counts.run_files, 'run file')} (settings, θ0), {counts.cache_files:,} vocabulary and "
              f"encoded-data files; {_mb(counts.bytes)} before compression")
        if args.profile:
            print(f"  profile {args.profile}: {stored:,} of the {total:,} networks of its book are in it"
                  + ("" if stored == total else f"; build the book first (make book) to include the "
                                                  f"other {total - stored:,}"))
        print("  students: lottery store import " + target.name + ", then make book")
        return 0
    return engine_errors(go)


def _run_import(args: argparse.Namespace) -> int:
    store = RunStore(args.runs)

    def go() -> int:
        try:
            counts = archive.import_store(args.archive, store, config.cache_dir())
        except archive.ArchiveError as exc:
            print(f"lottery store import: {args.archive}: {exc}; nothing was imported", file=sys.stderr)
            return 2
        print(f"lottery store import: {args.archive} verified (every SHA-256 of the manifest "
              f"matches, {_mb(counts.bytes)}); into {store.root}:")
        print(f"  {_n(counts.runs, 'run')}: {_n(counts.steps, 'network')} added, {counts.steps_kept:,} "
              f"already stored (kept{f'; weights added to {counts.completed:,} of them' if counts.completed else ''}); "
              f"{_n(counts.run_files, 'run file')} and {counts.cache_files:,} vocabulary and "
              f"encoded-data files added, {counts.kept_files:,} already there (kept)")
        for note in counts.notes:
            print(f"  note: {note}")
        print("  " + (WITH_WEIGHTS if counts.with_weights else WITHOUT_WEIGHTS))
        return 0
    return engine_errors(go)


#: The sub-commands this module adds.
COMMANDS = (add_store,)
