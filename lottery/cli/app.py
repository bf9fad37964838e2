"""The ``lottery`` command line: one sub-command per stage of the book.

Each sub-command lives in the module of its group (:mod:`~lottery.cli.run`: the
experiments; :mod:`~lottery.cli.book`: chapters and the book; :mod:`~lottery.cli.data`:
datasets; :mod:`~lottery.cli.plan`: costs and profiles; :mod:`~lottery.cli.federated`);
the shared arguments are in :mod:`~lottery.cli.args`; the work itself lives in the library.
"""

from __future__ import annotations

import argparse
import sys

from lottery import __version__
from lottery.cli import book, data, federated, plan, run, store
from lottery.federated.flower import FlowerMissing

#: Every sub-command, in ``lottery --help`` order.
COMMANDS = (run.COMMANDS[:1] + book.COMMANDS + run.COMMANDS[1:] + data.COMMANDS + plan.COMMANDS
            + federated.COMMANDS + store.COMMANDS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lottery", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except FlowerMissing as exc:        # federated.backend=flower without the federated extra
        print(f"lottery: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; finished work is kept and a re-run resumes from it", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
