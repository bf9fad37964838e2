"""``lottery plan PROFILE``: what a profile's book grid costs before it runs; and
``lottery profile NAME``: a profile's fully resolved settings (``--help-settings``: every
setting's name, type, value and help).
"""

from __future__ import annotations

import argparse
import json
import sys

from typing import Any

from lottery import config
from lottery.config import hparams
from lottery.book import plan
from lottery.cli.args import engine_errors, profile_settings
from lottery.engine import cost
from lottery.experiment import validate as experiment


def _si(x: float, unit: str) -> str:
    for scale, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M")):
        if x >= scale:
            return f"{x / scale:,.1f} {prefix}{unit}"
    return f"{x:,.0f} {unit}"


def _hours(seconds: float) -> str:
    return f"{seconds / 60:,.1f} min" if seconds < 3600 else f"{seconds / 3600:,.1f} h"


def add_plan(sub: argparse._SubParsersAction) -> None:

    p = sub.add_parser("plan", help="trainings, FLOPs and projected wall time of a profile "
                                    "(here, from a short measured probe, and on a named GPU)")
    p.add_argument("profile", choices=sorted(config.PROFILES))
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override one setting")
    p.add_argument("--gpu", default="H100", choices=sorted(cost.GPU_PEAK),
                   help="GPU to project onto (default: H100)")
    p.add_argument("--gpu-efficiency", type=float, default=cost.GPU_EFFICIENCY,
                   help=f"share of the GPU's TF32 peak reached (default {cost.GPU_EFFICIENCY}, "
                        "an assumption until benchmarks/gpu_check.sh measures it)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=_run_plan)


def _run_plan(args: argparse.Namespace) -> int:

    def go() -> int:
        s = experiment.apply_overrides(config.get_profile(args.profile), config.parse_set(args.set))
        counts = plan.profile_networks(s)
        tokens = cost.tokens_per_review(s)
        per_net = cost.flops_per_network(s, tokens)
        n = sum(counts.values())
        total = n * per_net
        rate = cost.probe_flops_per_second(s, tokens)
        workers = max(1, config.usable_cores() // max(1, s.train.threads))
        here_s = total / (rate * workers)
        peak = cost.GPU_PEAK[args.gpu]["tf32"]
        gpu_s = total / (peak * args.gpu_efficiency)
        out = {"profile": args.profile, "trainings": counts, "total_trainings": n,
               "tokens_per_review": round(tokens, 1), "flops_per_training": per_net,
               "total_flops": total, "this_machine": {
                   "cpu": cost.cpu_model(), "workers": workers,
                   "measured_flops_per_worker": rate, "projected_hours": here_s / 3600},
               "gpu": {"name": args.gpu, "tf32_peak": peak, "efficiency": args.gpu_efficiency,
                       "projected_hours": gpu_s / 3600}}
        if args.json:
            print(json.dumps(out, indent=1))
            return 0
        print(f"profile {args.profile}: {n:,} trainings ({counts['tickets']:,} ticket, "
              f"{counts['transfer']:,} transfer)")
        print(f"  per training: {_si(per_net, 'FLOP')} ({s.train.max_epochs} epochs of "
              f"{s.data.n_train:,} reviews, {tokens:.0f} subword pieces each on average; dense "
              f"FLOPs, forward + backward, validation and test passes)")
        print(f"  in all: {_si(total, 'FLOP')}")
        print(f"  this machine ({out['this_machine']['cpu']}): {_si(rate, 'FLOP/s')} per "
              f"single-threaded worker (measured now: a few training steps of this model), "
              f"{workers} workers -> {_hours(here_s)} ({here_s / 86400:,.1f} days); a lower "
              f"bound (data handling and evaluation overheads are not in the probe)")
        print(f"  {args.gpu}: {args.gpu_efficiency:.0%} of its {peak / 1e12:,.0f} TFLOP/s TF32 "
              f"peak -> {_hours(gpu_s)} (efficiency stated, not measured)")
        return 0
    return engine_errors(go)


def add_profile(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("profile", help="print a profile's fully resolved settings (with --set applied); "
                                       "--help-settings: every setting with its type and help")
    p.add_argument("name", nargs="?", choices=sorted(config.PROFILES),
                   help="profile (optional with --help-settings: then the defaults are shown)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override one setting (repeatable)")
    p.add_argument("--json", action="store_true", help="print JSON (default: one KEY = VALUE per line)")
    p.add_argument("--help-settings", action="store_true",
                   help="list every setting: dotted name, type, value (the profile's, else the "
                        "default) and help")
    p.set_defaults(run=_run_profile)


def _run_profile(args: argparse.Namespace) -> int:
    if args.name is None and not args.help_settings:
        print("lottery profile: give a profile name (or --help-settings)", file=sys.stderr)
        return 2
    args.profile = args.name
    resolved = profile_settings(args) if args.name else None
    if args.help_settings:
        return _help_settings(resolved, args.name)
    settings = config.to_dict(resolved)
    if args.json:
        print(json.dumps(settings, indent=2))
        return 0

    def flat(prefix: str, obj: Any) -> None:
        if isinstance(obj, dict):
            for k, v in obj.items():
                flat(f"{prefix}{k}.", v)
        else:
            print(f"{prefix[:-1]} = {json.dumps(obj)}")
    flat("", settings)
    return 0


def _help_settings(settings: config.ExperimentSettings | None, name: str | None) -> int:
    """Every setting as ``--set`` names it: type, value and the help its field carries."""
    rows = list(hparams.iter_settings(config.ExperimentSettings if settings is None else settings))
    source = f"profile {name}'s value" if name else "default"
    print(f"settings (--set NAME=VALUE, VALUE as JSON): name, type, {source}, help")
    width = max(len(r.name) for r in rows)
    for r in rows:
        print(f"  {r.name:<{width}}  {r.type}  = {json.dumps(r.value)}")
        print(f"  {'':<{width}}  {r.help}")
    return 0


#: The sub-commands this module adds.
COMMANDS = (add_plan, add_profile,)
