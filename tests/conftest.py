"""Shared fixtures: an isolated cache, the local data mirror, and no network.

- ``LOTTERY_CACHE_DIR`` points at a session temp folder, so no test writes to ``~``.
- ``LOTTERY_DATA_MIRROR`` is taken from the environment (CI sets ``../shared/data``)
  or falls back to ``<repo>/../shared/data``; tests needing real data use the
  ``mirror`` fixture, which skips with a message when neither exists.
- Downloads are disabled: any test that reaches ``urlopen`` gets a URLError.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.error import URLError

import pytest

REPO = Path(__file__).resolve().parents[1]


def _find_mirror() -> Path | None:
    env = os.environ.get("LOTTERY_DATA_MIRROR")
    for candidate in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data"]:
        candidate = candidate.expanduser().resolve()
        if (candidate / "fdu-mtl").is_dir():
            return candidate
    return None


MIRROR = _find_mirror()


def _no_network(*args, **kwargs):
    raise URLError("network access is disabled in tests")


@pytest.fixture(scope="session", autouse=True)
def _isolated_environment(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LOTTERY_CACHE_DIR", str(tmp_path_factory.mktemp("lottery-cache")))
        if MIRROR is not None:
            mp.setenv("LOTTERY_DATA_MIRROR", str(MIRROR))
        else:
            mp.delenv("LOTTERY_DATA_MIRROR", raising=False)
        mp.setattr("lottery.data.download.urlopen", _no_network)
        yield


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The real-data mirror folder (skips the test when it is not available)."""
    if MIRROR is None:
        pytest.skip("no data mirror: set LOTTERY_DATA_MIRROR or provide ../shared/data")
    return MIRROR
