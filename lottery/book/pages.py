"""Page furniture: the stamp on every page, the check that pages agree, compute records,
and the library's own source shown in the book.

**Stamps.** When a chapter executes, :func:`stamp` writes what produced it (profile,
the parameters papermill injected, a signature of the settings and selection) to
``_stamps/<chapter>.json`` and shows it at the top of the page. The parameters are read
from the kernel's own input history: papermill's ``injected-parameters`` cell
(:func:`injected_parameters`), so a plain ``papermill -p …`` run is stamped as truly as
a build. The stamps go next to the executed notebook when the build runs the chapter (it
names the folder in the kernel's environment, :data:`STAMPS_ENV`), into an existing
``_stamps/`` of the working directory (a built book's ``chapters/`` folder, where a
chapter opened by hand runs), and otherwise into ``<cache>/stamps`` — never into a new
folder wherever papermill happened to be started (:func:`stamps_dir`). If another page
of the same book was executed with a different signature, the page says so, and the
intro lists every page that disagrees. The build clears the stamps of the chapters it is
about to execute, so a full build never warns about itself.

**Compute.** :func:`record_compute` writes the training time of the networks behind a
chapter to the run store (``<cache>/compute/``): it is summed from the seconds each
stored network recorded when it was trained, so it survives rebuilds that only load.

**Source.** :func:`show_source` prints a library function's current source, so the
method the book describes cannot drift from the code that ran.
"""

from __future__ import annotations

import ast
import datetime as _dt
import html
import inspect
import json
import os
from pathlib import Path
from typing import Any, Callable, Mapping

import pandas as pd
from lottery import config
from lottery.book.provenance import unique_networks
from lottery.config import to_dict
from lottery.engine.store import settings_hash

STAMPS_DIR = "_stamps"
PARAMS_SUFFIX = ".params.json"
#: The stamps folder of a chapter's kernel (the build sets it next to the executed notebook).
STAMPS_ENV = "LOTTERY_STAMPS_DIR"
#: How papermill's ``injected-parameters`` cell starts (its Python translator's comment).
INJECTED_HEADER = "# Parameters"
#: Injected parameters that are the build's business, not the reader's (not shown).
BUILD_PARAMETERS = ("package_source",)


def stamps_dir(folder: Path | str | None = None) -> Path:
    """Where stamps are: ``<folder>/_stamps`` for a given folder; else the folder named
    by :data:`STAMPS_ENV`; else ``./_stamps`` if it exists; else ``<cache>/stamps``."""
    if folder is not None:
        return Path(folder) / STAMPS_DIR
    if os.environ.get(STAMPS_ENV):
        return Path(os.environ[STAMPS_ENV])
    here = Path.cwd() / STAMPS_DIR
    return here if here.is_dir() else config.cache_dir() / "stamps"


def _literal_assignments(source: str) -> dict[str, Any] | None:
    """``name = literal`` lines as a dict; None if the cell holds anything else."""
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return None
    out = {}
    for node in body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)):
            return None
        try:
            out[node.targets[0].id] = ast.literal_eval(node.value)
        except ValueError:
            return None
    return out


def injected_parameters(history: list[str] | None = None) -> dict[str, Any] | None:
    """The parameters papermill injected into this kernel (its ``injected-parameters``
    cell: ``# Parameters`` and one ``name = literal`` line each), read from the kernel's
    input history (``history``: the executed cells' sources, default IPython's ``In``);
    None when the kernel did not run such a cell (not papermill)."""
    if history is None:
        try:
            from IPython import get_ipython   # only a notebook kernel has a history
        except ImportError:
            return None
        shell = get_ipython()
        history = list(shell.user_ns.get("In", [])) if shell is not None else []
    for source in reversed(history):
        if isinstance(source, str) and source.lstrip().startswith(INJECTED_HEADER):
            found = _literal_assignments(source)
            if found is not None:
                return found
    return None


def given_parameters(chapter: str, folder: Path | None = None,
                     history: list[str] | None = None) -> dict[str, Any] | None:
    """``{"profile", "parameters"}`` this page was executed with: what papermill injected
    (:func:`injected_parameters`), else what the build wrote before executing it
    (:func:`write_parameters`), else None (run by hand)."""
    injected = injected_parameters(history)
    if injected is None:
        return parameters_of(chapter, folder)
    return {"profile": injected.get("profile"),
            "parameters": {k: v for k, v in injected.items()
                           if k != "profile" and k not in BUILD_PARAMETERS}}


def signature(run: Any) -> dict[str, Any]:
    """What must agree between pages for them to describe the same experiment."""

    return {"profile": run.profile, "settings": settings_hash(to_dict(run.settings)),
            "domains": list(run.domains), "seeds": list(run.seeds), "ticket_seeds": list(run.ticket_seeds),
            "pairs": [list(p) for p in run.pairs],
            "rounds": run.settings.prune.rounds}


def write_parameters(folder: Path, chapter: str, profile: str, parameters: Mapping[str, Any]) -> None:
    """Called by the build before executing ``chapter``: the papermill parameters it gets."""
    d = stamps_dir(folder)
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{chapter}{PARAMS_SUFFIX}").write_text(
        json.dumps({"profile": profile, "parameters": dict(parameters)}, default=str, indent=1))


def clear(folder: Path, chapters: list[str]) -> None:
    """Forget the stamps of ``chapters`` (the build is about to execute them)."""
    for name in chapters:
        for suffix in (".json", PARAMS_SUFFIX):
            (stamps_dir(folder) / f"{name}{suffix}").unlink(missing_ok=True)


def read_stamps(folder: Path | None = None) -> dict[str, dict[str, Any]]:
    """Every page's stamp (chapter → stamp) in the book folder of the executed notebooks."""
    d = stamps_dir(folder)
    if not d.is_dir():
        return {}
    return {p.stem: json.loads(p.read_text()) for p in sorted(d.glob("*.json"))
            if not p.name.endswith(PARAMS_SUFFIX)}


def parameters_of(chapter: str, folder: Path | None = None) -> dict[str, Any] | None:
    path = stamps_dir(folder) / f"{chapter}{PARAMS_SUFFIX}"
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
        return "none recorded (not executed by papermill)"
    shown = {k: v for k, v in params.get("parameters", {}).items() if v is not None}
    return ", ".join(f"<code>{html.escape(k)}={html.escape(json.dumps(v, default=str))}</code>"
                     for k, v in shown.items()) or "none (the profile's defaults)"


def stamp(chapter: str, run: Any, folder: Path | None = None) -> Any:
    """Record and show what produced this page; warn if other pages disagree."""
    sig = signature(run)
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    d = stamps_dir(folder)
    d.mkdir(parents=True, exist_ok=True)
    params = given_parameters(chapter, folder)
    (d / f"{chapter}.json").write_text(json.dumps({"signature": sig, "executed": now, "given": params},
                                                  indent=1, default=str))
    given = _given(params)
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
        params = s.get("given") or parameters_of(name, folder) or {}
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
