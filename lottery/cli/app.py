"""The ``lottery`` command line: one sub-command per stage of the book.

Each sub-command lives in the module of its group (:mod:`~lottery.cli.run`: the
experiments; :mod:`~lottery.cli.book`: chapters and the book; :mod:`~lottery.cli.data`:
datasets; :mod:`~lottery.cli.plan`: costs and profiles; :mod:`~lottery.cli.federated`);
the shared arguments are in :mod:`~lottery.cli.args`; the work itself lives in the library.
"""

from __future__ import annotations

import argparse
import sys

from lottery.cli import book, data, federated, plan, run

#: Every sub-command, in ``lottery --help`` order.
COMMANDS = run.COMMANDS[:1] + book.COMMANDS + run.COMMANDS[1:] + data.COMMANDS + plan.COMMANDS + federated.COMMANDS


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
