"""``lottery plan --profile P``: what a profile's book costs before it runs (the trainings and
FLOPs of every chapter that trains, and the wall time here and on a named GPU); and
``lottery profile --profile NAME``: a profile's fully resolved settings (``--help-settings``: every
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
from lottery.engine import cost, devices
from lottery.engine.store import RunStore
from lottery.experiment import validate as experiment


def _si(x: float, unit: str) -> str:
    for scale, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M")):
        if x >= scale:
            return f"{x / scale:,.1f} {prefix}{unit}"
    return f"{x:,.0f} {unit}"


def _hours(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:,.0f} s"
    return f"{seconds / 60:,.1f} min" if seconds < 3600 else f"{seconds / 3600:,.1f} h"


def _efficiency(text: str) -> float:
    x = float(text)
    if not 0 < x <= 1:
        raise argparse.ArgumentTypeError(f"a share of the peak is in (0, 1], not {text}")
    return x


def add_profile_choice(p: argparse.ArgumentParser, default: str | None, what: str = "") -> None:
    """``--profile NAME`` as every command takes it, plus the older positional form
    (``lottery plan course``), kept for compatibility."""
    names = sorted(config.PROFILES)
    p.add_argument("--profile", choices=names, default=None,
                   help=f"profile: {', '.join(names)}"
                        + (f" (default: {default})" if default else "") + (f"; {what}" if what else ""))
    p.add_argument("positional_profile", nargs="?", choices=names, metavar="PROFILE",
                   help="the same as --profile PROFILE (the older form)")
    p.set_defaults(default_profile=default)


def _with_profile(run: Any, command: str) -> Any:
    """``run`` after merging the positional profile into ``args.profile`` (exit 2 when
    the two name different profiles)."""
    def go(args: argparse.Namespace) -> int:
        given, old = args.profile, args.positional_profile
        if given and old and given != old:
            print(f"lottery {command}: two profiles given ({old} and --profile {given}); "
                  f"give one", file=sys.stderr)
            return 2
        args.profile = given or old or args.default_profile
        return run(args)
    return go


def add_plan(sub: argparse._SubParsersAction) -> None:

    p = sub.add_parser("plan", help="trainings, FLOPs and projected wall time of a profile's book, "
                                    "per chapter (here: calibrated on stored trainings, else a "
                                    "short probe; on a named GPU: a range of assumed efficiencies)")
    add_profile_choice(p, default="course")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override one setting")
    p.add_argument("--runs", help="run store whose trainings calibrate the CPU projection "
                                  "(default: <cache>/runs; nothing is written)")
    p.add_argument("--gpu", default="H100", choices=sorted(cost.GPU_PEAK),
                   help="GPU to project onto (default: H100)")
    low, high = cost.GPU_EFFICIENCY_RANGE
    p.add_argument("--gpu-efficiency", type=_efficiency, nargs="+", metavar="SHARE",
                   default=list(cost.GPU_EFFICIENCY_RANGE),
                   help=f"share(s) of the GPU's TF32 peak reached: one, or a range LOW HIGH "
                        f"(default {low} {high}: an assumption, not a measurement, until "
                        "benchmarks/gpu_check.sh measures it)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=_with_profile(_run_plan, "plan"))


def _machine(s: Any, loads: list[plan.ChapterLoad], store: RunStore, tokens: Any) -> dict[str, Any]:
    """This machine: the probe (a lower bound) and the projection calibrated on the run
    store's trainings where it holds some of their kind."""
    cores = config.usable_cores()
    rate = cost.probe_flops_per_second(s, tokens(s))
    proj = plan.cpu_projection(loads, store, tokens, rate, cores)
    total = sum(proj.seconds.values())
    basis = ("calibrated" if proj.probed == 0 else "probe" if proj.calibrated == 0
             else "partly calibrated")
    return {"cpu": devices.cpu_model(), "cores": cores, "run_store": str(store.root),
            "measured_flops_per_worker": rate,
            "probe_hours": sum(ld.flops for ld in loads) / (rate * cores) / 3600,
            "projected_hours": total / 3600, "basis": basis,
            "calibrated_trainings": proj.calibrated, "stored_samples": proj.samples,
            "probe_trainings": proj.probed,
            "chapter_hours": {c: v / 3600 for c, v in proj.seconds.items()}}


def _measured_gpu(gpu: str, s: Any) -> dict[str, Any] | None:
    """The GPU check's best rate on this card (benchmarks/results/gpu-check.json), if it
    ran on one and measured this profile's model (it times the paper's width)."""
    root = config.project_root()
    path = root / "benchmarks" / "results" / "gpu-check.json" if root else None
    if path is None or not path.exists():
        return None
    found = json.loads(path.read_text())
    if found.get("peak_table") != gpu or s.model != config.get_profile("paper").model \
            or found.get("model", "").startswith("tiny"):
        return None
    return {"file": str(path), "device": found.get("device"), **found.get("best", {})}


def _gpu(args: argparse.Namespace, s: Any, total: float) -> dict[str, Any]:
    peak = cost.GPU_PEAK[args.gpu]["tf32"]
    shares = sorted(args.gpu_efficiency)[::-1]   # fastest first
    out = {"name": args.gpu, "tf32_peak": peak, "basis": "assumed", "efficiency": shares,
           "paper_width": s.model == config.get_profile("paper").model,
           "projected_hours": [total / (peak * e) / 3600 for e in shares]}
    measured = _measured_gpu(args.gpu, s)
    if measured and measured.get("flops_per_s"):
        out.update(basis="measured", measured=measured,
                   measured_hours=total / measured["flops_per_s"] / 3600)
    return out


def _plan(args: argparse.Namespace) -> dict[str, Any]:
    if len(args.gpu_efficiency) > 2:
        raise ValueError("--gpu-efficiency takes one share of the peak, or two (a range LOW HIGH)")
    s = experiment.apply_overrides(config.get_profile(args.profile), config.parse_set(args.set))
    tokens = plan.review_lengths()
    loads = plan.profile_workload(s, tokens)
    machine = _machine(s, loads, RunStore(args.runs), tokens)
    total = sum(ld.flops for ld in loads)
    resolved = experiment.resolve(s)
    return {"profile": args.profile,
            "chapters": {ld.chapter: {"trainings": ld.count, "flops": ld.flops,
                                      "hours_here": machine["chapter_hours"][ld.chapter]}
                         for ld in loads if ld.count},
            "reading_chapters": [ld.chapter for ld in loads if not ld.count],
            "trainings": {ld.chapter: ld.count for ld in loads if ld.count},
            "total_trainings": sum(ld.count for ld in loads), "total_flops": total,
            "tokens_per_review": round(tokens(s), 1),
            "flops_per_training": cost.flops_per_network(resolved, tokens(s)),
            "flops_per_federated_training": cost.federated_flops(resolved, tokens(s)),
            "this_machine": machine, "gpu": _gpu(args, s, total)}


def _run_plan(args: argparse.Namespace) -> int:

    def go() -> int:
        out = _plan(args)
        if args.json:
            print(json.dumps(out, indent=1))
        else:
            s = experiment.resolve(experiment.apply_overrides(config.get_profile(args.profile),
                                                              config.parse_set(args.set)))
            print("\n".join(_table(out) + _per_training(out, s) + _machine_lines(out)
                            + _gpu_lines(out)))
        return 0
    return engine_errors(go)


def _table(out: dict[str, Any]) -> list[str]:
    m = out["this_machine"]
    lines = [f"profile {out['profile']}: {out['total_trainings']:,} trainings in "
             f"{len(out['chapters'])} chapters; "
             + (", ".join(out["reading_chapters"]) + " read their runs and train nothing (the "
                "phase chapter's optional -p rewind_sweep is not counted)"
                if out["reading_chapters"] else "every chapter trains"),
             f"  {'chapter':<10} {'trainings':>9} {'FLOPs':>13} {'share':>6} {'this machine':>13}"]
    for name, c in out["chapters"].items():
        lines.append(f"  {name:<10} {c['trainings']:>9,} {_si(c['flops'], 'FLOP'):>13} "
                     f"{c['flops'] / out['total_flops']:>6.0%} {_hours(c['hours_here'] * 3600):>13}")
    lines.append(f"  {'total':<10} {out['total_trainings']:>9,} {_si(out['total_flops'], 'FLOP'):>13} "
                 f"{1:>6.0%} {_hours(m['projected_hours'] * 3600):>13}")
    return lines


def _per_training(out: dict[str, Any], s: Any) -> list[str]:
    f = s.federated
    return [f"  a network: {_si(out['flops_per_training'], 'FLOP')} ({s.train.max_epochs} epochs "
            f"of {s.data.n_train:,} reviews, {out['tokens_per_review']:.0f} subword pieces each "
            f"on average); a federated training: {_si(out['flops_per_federated_training'], 'FLOP')} "
            f"({f.comm_rounds} communication rounds × {f.local_epochs} local "
            f"epoch{'s' if f.local_epochs > 1 else ''} over {f.clients} clients' shards of the "
            f"training reviews); dense FLOPs, forward + backward, validation "
            f"and test passes; ablation variants with other settings are counted with theirs"]


def _machine_lines(out: dict[str, Any]) -> list[str]:
    m = out["this_machine"]
    head = (f"  this machine ({m['cpu']}, {m['cores']} usable cores), from an empty run store: "
            f"{_hours(m['projected_hours'] * 3600)}, ")
    calibrated = (f"each training's FLOPs × the seconds per FLOP recorded by {m['stored_samples']:,} "
                  f"trainings of this book in the run store {m['run_store']} (their own training "
                  f"time, on the machine that trained them), networks run {m['cores']} at a time "
                  f"(fewer with train.threads > 1; federated tasks too, one after another on the "
                  f"Flower backend); data, "
                  f"vocabulary and the pages' own work are not included")
    if m["basis"] == "calibrated":
        basis = "calibrated: " + calibrated
    elif m["basis"] == "probe":
        basis = ("from the probe below (the run store holds none of these trainings to "
                 "calibrate on): a lower bound")
    else:
        basis = (f"partly calibrated: {m['probe_trainings']:,} trainings of kinds the run store "
                 f"holds none of are timed by the probe below (a lower bound); the rest: "
                 + calibrated)
    return [head + basis,
            f"  probe: {_si(m['measured_flops_per_worker'], 'FLOP/s')} per single-threaded worker "
            f"(measured now: a few training steps of this model) on {m['cores']} cores -> "
            f"{_hours(m['probe_hours'] * 3600)}; a lower bound (no data handling, evaluation "
            f"overhead or process start-up)"]


def _gpu_lines(out: dict[str, Any]) -> list[str]:
    g = out["gpu"]
    fast, slow = g["projected_hours"][0], g["projected_hours"][-1]
    shares = "–".join(f"{e:.0%}" for e in dict.fromkeys(g["efficiency"]))
    span = _hours(fast * 3600) + ("" if fast == slow else f"–{_hours(slow * 3600)}")
    lines = [f"  {g['name']}: {span} at {shares} of its {g['tf32_peak'] / 1e12:,.0f} TFLOP/s TF32 "
             f"peak; the efficiency is an assumption, not a measurement: for batch-32 steps of a "
             f"model this small (launch- and memory-bound) 2–5% is likelier than 10% "
             f"(benchmarks/gpu_check.sh measures it on a card)"
             + ("" if g["paper_width"] else "; this profile's model is narrower than the paper's, "
                "so its steps are even more launch-bound and even 2% may be optimistic")]
    if g["basis"] == "measured":
        m = g["measured"]
        lines.append(f"  measured on {m['device']} ({m['file']}): best {m.get('precision')} K="
                     f"{m.get('k')}, {_si(m['flops_per_s'], 'FLOP/s')} -> "
                     f"{_hours(g['measured_hours'] * 3600)}")
    return lines


def add_profile(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("profile", help="print a profile's fully resolved settings (with --set applied); "
                                       "--help-settings: every setting with its type and help")
    add_profile_choice(p, default=None, what="optional with --help-settings: then the defaults are shown")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override one setting (repeatable)")
    p.add_argument("--json", action="store_true", help="print JSON (default: one KEY = VALUE per line)")
    p.add_argument("--help-settings", action="store_true",
                   help="list every setting: dotted name, type, value (the profile's, else the "
                        "default) and help")
    p.set_defaults(run=_with_profile(_run_profile, "profile"))


def _run_profile(args: argparse.Namespace) -> int:
    if args.profile is None and not args.help_settings:
        print("lottery profile: give a profile, --profile NAME (or --help-settings)", file=sys.stderr)
        return 2
    resolved = profile_settings(args) if args.profile else None
    if args.help_settings:
        return _help_settings(resolved, args.profile)
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
