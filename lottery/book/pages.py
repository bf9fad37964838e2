"""Page furniture: the stamp on every page, the check that pages agree, compute records,
and the library's own source shown in the book.

**Stamps.** When a chapter executes, :func:`stamp` writes what produced it (profile,
papermill parameters, a signature of the settings and selection) to
``_stamps/<chapter>.json`` next to the executed notebook, and shows it at the top of the
page. If another page of the same book was executed with a different signature, the
page says so, and the intro lists every page that disagrees. The build clears the stamps
of the chapters it is about to execute, so a full build never warns about itself.

**Compute.** :func:`record_compute` writes the training time of the networks behind a
chapter to the run store (``<cache>/compute/``): it is summed from the seconds each
stored network recorded when it was trained, so it survives rebuilds that only load.

**Source.** :func:`show_source` prints a library function's current source, so the
method the book describes cannot drift from the code that ran.
"""

from __future__ import annotations

import datetime as _dt
import html
import inspect
import json
from pathlib import Path
from typing import Any, Callable, Mapping

import pandas as pd
from lottery import config
from lottery.book.provenance import unique_networks
from lottery.config import to_dict
from lottery.engine.store import settings_hash

STAMPS_DIR = "_stamps"
PARAMS_SUFFIX = ".params.json"


def _stamps(folder: Path | None = None) -> Path:
    return Path(folder or Path.cwd()) / STAMPS_DIR


def signature(run: Any) -> dict[str, Any]:
    """What must agree between pages for them to describe the same experiment."""

    return {"profile": run.profile, "settings": settings_hash(to_dict(run.settings)),
            "domains": list(run.domains), "seeds": list(run.seeds), "ticket_seeds": list(run.ticket_seeds),
            "pairs": [list(p) for p in run.pairs],
            "rounds": run.settings.prune.rounds}


def write_parameters(folder: Path, chapter: str, profile: str, parameters: Mapping[str, Any]) -> None:
    """Called by the build before executing ``chapter``: the papermill parameters it gets."""
    d = _stamps(folder)
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{chapter}{PARAMS_SUFFIX}").write_text(
        json.dumps({"profile": profile, "parameters": dict(parameters)}, default=str, indent=1))


def clear(folder: Path, chapters: list[str]) -> None:
    """Forget the stamps of ``chapters`` (the build is about to execute them)."""
    for name in chapters:
        for suffix in (".json", PARAMS_SUFFIX):
            (_stamps(folder) / f"{name}{suffix}").unlink(missing_ok=True)


def read_stamps(folder: Path | None = None) -> dict[str, dict[str, Any]]:
    """Every page's stamp (chapter → stamp) in the book folder of the executed notebooks."""
    d = _stamps(folder)
    if not d.is_dir():
        return {}
    return {p.stem: json.loads(p.read_text()) for p in sorted(d.glob("*.json"))
            if not p.name.endswith(PARAMS_SUFFIX)}


def parameters_of(chapter: str, folder: Path | None = None) -> dict[str, Any] | None:
    path = _stamps(folder) / f"{chapter}{PARAMS_SUFFIX}"
    return json.loads(path.read_text()) if path.exists() else None


def disagreeing(stamps: Mapping[str, Mapping[str, Any]], reference: Mapping[str, Any]) -> dict[str, list[str]]:
    """Pages whose signature differs from ``reference``, each with what differs."""
    out = {}
    for name, s in stamps.items():
        diff = [k for k in reference if s.get("signature", {}).get(k) != reference[k]]
        if diff:
            out[name] = diff
    return out


def _box(kind: str, title: str, body: str) -> "Any":
    from IPython.display import HTML

    return HTML(f'<div class="admonition {kind} lottery-stamp"><p class="admonition-title">'
                f"{html.escape(title)}</p>{body}</div>")


def _given(params: Mapping[str, Any] | None) -> str:
    if not params:
        return "none"
    shown = {k: v for k, v in params.get("parameters", {}).items() if v is not None}
    return ", ".join(f"<code>{html.escape(k)}={html.escape(json.dumps(v, default=str))}</code>"
                     for k, v in shown.items()) or "none (the profile's defaults)"


def stamp(chapter: str, run: Any, folder: Path | None = None) -> Any:
    """Record and show what produced this page; warn if other pages disagree."""
    sig = signature(run)
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    d = _stamps(folder)
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{chapter}.json").write_text(json.dumps({"signature": sig, "executed": now}, indent=1))
    given = _given(parameters_of(chapter, folder))
    body = (f"<p>Executed {now} with profile <strong>{html.escape(run.profile)}</strong>; "
            f"parameters: {given}; settings hash <code>{sig['settings']}</code>, "
            f"{len(sig['seeds'])} seeds, {sig['rounds']} pruning rounds.</p>")
    others = {k: v for k, v in read_stamps(folder).items() if k != chapter}
    odd = disagreeing(others, sig)
    if odd:
        names = ", ".join(f"{k} ({', '.join(v)})" for k, v in sorted(odd.items()))
        return _box("warning", "This page and the rest of the book differ",
                    body + f"<p>Pages executed with other settings or selections: {names}. "
                    "Their numbers are not comparable with this page's; rebuild the book "
                    "(<code>make book</code>) to make them agree.</p>")
    return _box("note", "How this page was made", body)


def consistency_table(folder: Path | None = None) -> pd.DataFrame:
    """Every executed page with its profile, parameters and whether it agrees with the
    majority signature (for the intro)."""
    stamps = read_stamps(folder)
    if not stamps:
        return pd.DataFrame()
    keys = [json.dumps(s["signature"], sort_keys=True) for s in stamps.values()]
    common = max(set(keys), key=keys.count)
    rows = []
    for (name, s), key in zip(stamps.items(), keys):
        params = parameters_of(name, folder) or {}
        given = {k: v for k, v in params.get("parameters", {}).items() if v is not None}
        rows.append({"page": name, "profile": s["signature"]["profile"],
                     "parameters": json.dumps(given, default=str) if given else "—",
                     "executed": s.get("executed", ""),
                     "agrees with the book": "yes" if key == common else "NO"})
    return pd.DataFrame(rows).set_index("page")


# ---------------------------------------------------------------------------- compute
def record_compute(chapter: str, run: Any, *frames: pd.DataFrame) -> pd.Series:
    """Write the training time of the networks behind ``chapter`` to the run store.

    Each frame is one set of runs (e.g. one ablation variant): its round-0 networks,
    repeated under every strategy, count once."""

    frames = tuple(unique_networks(f) for f in frames if f is not None and len(f))
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({"seconds": []})
    sig = signature(run)
    record = {"chapter": chapter, "networks": int(len(df)),
              "training_seconds": round(float(df["seconds"].sum()), 1), "signature": sig}
    path = config.cache_dir() / "compute" / f"{chapter}-{_key(sig)}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1))
    return pd.Series(record)


def _key(sig: Mapping[str, Any]) -> str:

    return settings_hash(dict(sig))


def compute_table(run: Any, timings: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Per chapter: networks, training compute recorded in the run store (min), and
    this build's execution time (s), for a teacher planning a course."""

    sig = signature(run)
    rows = []
    for path in sorted((config.cache_dir() / "compute").glob(f"*-{_key(sig)}.json")):
        r = json.loads(path.read_text())
        rows.append({"chapter": r["chapter"], "networks": r["networks"],
                     "training compute (min, from the run store)": round(r["training_seconds"] / 60, 1),
                     "executed in this build (s)": (timings or {}).get(r["chapter"])})
    return pd.DataFrame(rows).set_index("chapter") if rows else pd.DataFrame()


# ---------------------------------------------------------------------------- source
def show_source(*functions: Callable[..., Any]) -> Any:
    """The current source of library functions, as a highlighted code block."""
    from IPython.display import Markdown

    blocks = []
    for fn in functions:
        module = inspect.getmodule(fn).__name__
        blocks.append(f"`{module}.{fn.__qualname__}`:\n\n```python\n"
                      f"{inspect.getsource(fn).rstrip()}\n```")
    return Markdown("\n\n".join(blocks))
