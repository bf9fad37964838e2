"""The data sub-commands of ``lottery``: ``datasets`` and ``data check`` (own reviews).

"""

from __future__ import annotations

import argparse
import json
import sys

from lottery.cli.args import add_profile_args, engine_errors, profile_settings
from lottery.data import DATASETS, READERS
from lottery.data.check import check_dataset


def add_datasets(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("datasets", help="list the built-in datasets and the review formats a "
                                        "dataset spec can use")
    p.set_defaults(run=_run_datasets)


def _run_datasets(args: argparse.Namespace) -> int:

    print("datasets (use with --set data.dataset=NAME, or give the path of a JSON spec):")
    for name, spec in DATASETS.items():
        if name.endswith(".json"):
            continue
        print(f"  {name}: format {spec.format!r}, {len(spec.domains)} domains: "
              f"{', '.join(spec.domains)}\n    {spec.provenance}; licence: {spec.licence}")
    print("\nformats (a spec's \"format\", or per domain):")
    for name, reader in READERS.items():
        doc = (reader.__doc__ or "").strip().split("\n\n")[0]
        print(f"  {name}: {' '.join(doc.split())}")
    return 0


def add_data(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="data commands: 'check SPEC' validates a dataset")
    dsub = p.add_subparsers(dest="data_command", required=True)
    c = dsub.add_parser("check", help="read a dataset spec (or dataset name) and print, per "
                                      "domain and class, what is kept and dropped and why "
                                      "(no training)")
    c.add_argument("spec", help="path of a JSON dataset spec, or a dataset name")
    add_profile_args(c)
    c.set_defaults(run=_run_data_check)


def _run_data_check(args: argparse.Namespace) -> int:

    args.set = [f"data.dataset={json.dumps(args.spec)}"] + list(args.set or [])
    settings = profile_settings(args)

    def go():
        read, classes, problems = check_dataset(settings.data)
        print(read.to_string(), classes.to_string(), sep="\n\n")
        errors = [p for p in problems if not p.startswith(("warning", ))
                  and ": malformed: " not in p]
        for p in dict.fromkeys(problems):
            print(p, file=sys.stderr)
        print(f"\n{len(settings.data.domains)} domains checked: "
              + ("ready to train" if not errors else f"{len(errors)} problem(s) to fix"))
        return 2 if errors else 0
    return engine_errors(go)


#: The sub-commands this module adds.
COMMANDS = (add_datasets, add_data,)
