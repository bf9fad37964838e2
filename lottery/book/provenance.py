"""Where a page's numbers came from: the machine and software, the data source, the
networks trained and their compute, and this build's per-chapter timings."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import pandas as pd

from lottery import config
from lottery.book.layout import TIMINGS_FILE
from lottery.engine.devices import cpu_model


# ---------------------------------------------------------------------------- run info
def environment_table() -> pd.DataFrame:
    """Hardware and software that executed this notebook (computed, not typed)."""
    import torch  # heavy; only the intro asks


    rows = [
        ("machine", f"{cpu_model()} ({platform.machine()}), {os.cpu_count()} CPU cores ({config.usable_cores()} usable)"),
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
