"""What the chapters display besides the analyses: tables about the data and the
divergences, the run's provenance (machine, data source, compute, build timings), and
the glue that pastes computed values into the prose.

Each function returns a frame or dict that a notebook cell shows as is, so the cells
stay one line and the tables are tested here rather than eyeballed in the book.
"""

from __future__ import annotations

import json
import os
import platform
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from lottery.build import TIMINGS_FILE
from lottery.chapters import ChapterSettings
from lottery.labels import display_name, pct


# ---------------------------------------------------------------------------- notebook set-up
def setup_notebook(dask: str | None = None) -> None:
    """What every chapter does first: offline charts, full-width table cells, no
    progress-bar warnings (the chapters train with ``progress=False``), and, with
    ``dask`` (the chapter parameter, as for ``--dask``), training on that Dask cluster."""
    from lottery import plots  # altair: only the notebooks draw charts

    if dask:
        from lottery import runner  # the engine (torch)

        runner.use_dask(dask)

    plots.use_offline_renderer()
    pd.set_option("display.max_colwidth", None)
    pd.set_option("display.width", 200)
    warnings.filterwarnings("ignore", message="IProgress not found")


def stored_results(run: ChapterSettings, transfer: bool = True
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ticket and transfer results for ``run``, for chapters that summarise them.

    In a book build the ticket and transfer chapters have trained everything already, so
    this reads the run store in this process (``workers=1``: no worker start-up). Run on
    its own it trains what is missing, one network at a time. Without transfer pairs
    the second frame is empty.
    """
    from lottery import runner  # the engine (torch); the other tables here do not need it
    from lottery.procedures import results_frame

    found = runner.run_tickets(run.settings, domains=run.domains, seeds=run.seeds,
                               progress=False, workers=1)
    moved = (runner.run_transfer(run.settings, pairs=run.pairs, seeds=run.seeds,
                                 progress=False, workers=1)
             if transfer and run.pairs else results_frame([]))
    return found, moved


def retrain_check(run: ChapterSettings) -> pd.DataFrame:
    """Retrain the first domain's first-seed FULL-MODEL and compare it with the store."""
    from lottery.procedures import TicketChain
    from lottery.runner import run_tickets

    domain, seed = run.domains[0], run.seeds[0]
    run_tickets(run.settings, domains=[domain], seeds=[seed], progress=False, workers=1)
    out = TicketChain(run.settings, domain, seed).retrain_full()
    return pd.DataFrame([{**out, "domain": display_name(out["domain"])}]).set_index("domain")


def glue_values(values: Mapping[str, Any]) -> None:
    """``myst_nb.glue`` each value without displaying it (for ``{glue:text}`` roles)."""
    from myst_nb import glue  # the book extra; only a notebook kernel glues

    for key, value in values.items():
        if isinstance(value, (np.floating, np.integer)):
            value = value.item()
        glue(key, value, display=False)


# ---------------------------------------------------------------------------- data chapter
def domain_table(domains: Sequence[str], dataset: str = "fdu-mtl") -> pd.DataFrame:
    """Display names next to the dataset's domain names (the paper's for FDU-MTL)."""
    from lottery.data import get_dataset

    spec = get_dataset(dataset)
    title = "paper (Amazon category)" if spec.downloadable else "shown as"
    return pd.DataFrame({title: [display_name(d) for d in domains],
                         "dataset domain": list(domains),
                         "format": [spec.format_of(d) for d in domains]}).set_index(title)


def dataset_facts(data: Any) -> dict[str, Any]:
    """Name, provenance, licence and files of the dataset ``data`` reads."""
    from lottery.data import get_dataset

    spec = get_dataset(data.dataset)
    name = Path(spec.name).name if spec.name.endswith(".json") else spec.name
    return {"dataset": name, "provenance": spec.provenance, "licence": spec.licence,
            "source": spec.url or "your files (dataset spec)",
            "files": {d: [Path(f).name for f in spec.files[d]] for d in data.domains}}


def dataset_table(facts: Mapping[str, Any]) -> pd.DataFrame:
    rows = [("dataset", facts["dataset"]), ("provenance", facts["provenance"] or "not stated"),
            ("licence", facts["licence"] or "not stated"), ("source", facts["source"])]
    rows += [(f"files: {display_name(d)}", ", ".join(f)) for d, f in facts["files"].items()]
    return pd.DataFrame(rows, columns=["", "value"]).set_index("")


def split_counts_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Reviews per domain, split and class from ``lottery.data.split_summary``."""
    t = summary.copy()
    t["domain"] = t["domain"].map(display_name)
    t["class"] = t["label"].map({0: "neg", 1: "pos"})
    wide = t.pivot_table(index="domain", columns=["split", "class"], values="n_reviews",
                         aggfunc="sum", sort=False)
    splits = [s for s in ("train", "val", "test") if s in wide.columns.get_level_values(0)]
    wide = wide[[(s, c) for s in splits for c in ("neg", "pos")]]
    wide[("all", "total")] = wide.sum(axis=1)
    wide.columns.names = [None, None]
    return wide.astype(int)


def length_distribution(
    lengths_by_domain: Mapping[str, Iterable[int]], bin_width: int = 25, cap: int = 1000
) -> pd.DataFrame:
    """Histogram (share of reviews per length bin) of review lengths per domain.

    Lengths at or above ``cap`` fall in the last bin.
    """
    rows = []
    bins = np.arange(0, cap + bin_width, bin_width)
    for domain, lengths in lengths_by_domain.items():
        lengths = np.asarray(list(lengths))
        counts, edges = np.histogram(np.minimum(lengths, cap), bins=bins)
        total = max(len(lengths), 1)
        for c, lo, hi in zip(counts, edges[:-1], edges[1:]):
            rows.append({"domain": domain, "name": display_name(domain), "bin_start": int(lo),
                         "bin_end": int(hi), "count": int(c), "share": c / total})
    return pd.DataFrame(rows)


def length_table(
    texts_by_domain: Mapping[str, Iterable[str]],
    subword_lengths: Mapping[str, Sequence[int]] | None = None,
    max_len: int | None = None,
) -> pd.DataFrame:
    """Median / 90th percentile / max review length per domain (tokens and subwords)."""
    rows = []
    for domain, texts in texts_by_domain.items():
        tok = np.array([len(str(t).split()) for t in texts])
        row = {"domain": display_name(domain), "reviews": len(tok),
               "median tokens": int(np.median(tok)), "p90 tokens": int(np.percentile(tok, 90)),
               "max tokens": int(tok.max())}
        if subword_lengths is not None:
            sw = np.asarray(subword_lengths[domain])
            row["median subwords"] = int(np.median(sw))
            row["p90 subwords"] = int(np.percentile(sw, 90))
            if max_len:
                row[f"share > {max_len} subwords"] = pct(float((sw > max_len).mean()))
        rows.append(row)
    return pd.DataFrame(rows).set_index("domain")


def subword_lengths(vocab: Any, texts: Sequence[str], limit: int = 1_000_000) -> np.ndarray:
    """Number of subword pieces of each text under ``vocab`` (untruncated)."""
    return np.array([len(ids) for ids in vocab.encode(list(texts), limit)])


def example_reviews(frame: pd.DataFrame, domain: str, per_label: int = 1, seed: int = 0,
                    chars: int = 240) -> pd.DataFrame:
    """``per_label`` random reviews of each label (fixed seed), shortened to ``chars``."""
    rows = []
    for label, group in frame.groupby("label", sort=True):
        picked = group.sample(n=min(per_label, len(group)), random_state=seed)
        for text in picked["text"]:
            text = str(text)
            short = text if len(text) <= chars else text[: chars].rsplit(" ", 1)[0] + " …"
            rows.append({"domain": display_name(domain),
                         "label": "positive" if int(label) == 1 else "negative",
                         "review (start)": short})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------- divergence
def jsd_named(jsd: pd.DataFrame) -> pd.DataFrame:
    """Add the paper's names (``name_a``, ``name_b``) to the tidy JSD frame."""
    out = jsd.copy()
    out["name_a"] = out["domain_a"].map(display_name)
    out["name_b"] = out["domain_b"].map(display_name)
    return out


def jsd_table(jsd: pd.DataFrame, digits: int = 1) -> pd.DataFrame:
    """The JSD matrix ×1e5 as the paper prints it (square, rounded)."""
    named = jsd_named(jsd)
    order = list(dict.fromkeys(named["name_a"]))
    table = named.pivot(index="name_a", columns="name_b", values="jsd_x1e5")
    table = table.loc[order, order].round(digits)
    table.index.name = "JSD ×1e5"
    table.columns.name = None
    return table


def jsd_extremes(jsd: pd.DataFrame) -> dict[str, Any]:
    """Most and least similar pair of distinct domains (each unordered pair once)."""
    from lottery.divergence import extreme_pairs  # imports the vocabulary (and torch)

    (la, lb, lo), (ha, hb, hi) = extreme_pairs(jsd)
    off = jsd[jsd["domain_a"] != jsd["domain_b"]]
    return {
        "most_similar": (la, lb), "most_similar_jsd_x1e5": lo * 1e5,
        "least_similar": (ha, hb), "least_similar_jsd_x1e5": hi * 1e5,
        "mean_jsd_x1e5": float(off["jsd_x1e5"].mean()),
    }


# ---------------------------------------------------------------------------- run info
def environment_table() -> pd.DataFrame:
    """Hardware and software that executed this notebook (computed, not typed)."""
    import torch  # heavy; only the intro asks

    from lottery import plan

    rows = [
        ("machine", f"{plan.cpu_model()} ({platform.machine()}), {os.cpu_count()} CPU cores"),
        ("system", f"{platform.system()} {platform.release()}"),
        ("python", platform.python_version()),
        ("torch", f"{torch.__version__} (threads: {torch.get_num_threads()}, "
                  f"CUDA: {'yes' if torch.cuda.is_available() else 'no'})"),
    ]
    if torch.cuda.is_available():
        rows.append(("GPU", torch.cuda.get_device_name(0)))
    return pd.DataFrame(rows, columns=["item", "value"]).set_index("item")


def data_source() -> str:
    """Where the reviews were read from: the local mirror or the canonical download."""
    return ("local mirror (LOTTERY_DATA_MIRROR)" if os.environ.get("LOTTERY_DATA_MIRROR")
            else "downloaded from the canonical source")


def unique_networks(df: pd.DataFrame) -> pd.DataFrame:
    """One row per trained network: the full model (round 0) appears in the results
    under every TICKET-* strategy but was trained once per domain and seed."""
    full = (df["procedure"] == "tickets") & (df["round"] == 0)
    return pd.concat([df[~full], df[full].drop_duplicates(["domain", "seed"])],
                     ignore_index=True)


def compute_summary(*frames: pd.DataFrame) -> pd.DataFrame:
    """Trained networks and total training time (minutes) per procedure."""
    df = unique_networks(pd.concat([f for f in frames if f is not None and len(f)],
                                   ignore_index=True))
    g = df.groupby("procedure")
    out = pd.DataFrame({"trained subnetworks": g.size(),
                        "training time (min)": (g["seconds"].sum() / 60).round(1)})
    out.loc["total"] = [int(out["trained subnetworks"].sum()),
                        round(float(out["training time (min)"].sum()), 1)]
    return out


def build_timings(chapters_dir: Path | None = None) -> pd.DataFrame | None:
    """Per-chapter execution time of this build so far, if the pipeline recorded one.

    The pipeline writes it next to the executed notebooks (the kernel's working
    directory), before it executes the intro.
    """
    path = Path(chapters_dir or Path.cwd()) / TIMINGS_FILE
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return pd.DataFrame({"seconds": data}).rename_axis("chapter").round(1)
