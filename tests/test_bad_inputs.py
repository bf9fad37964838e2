"""Bad inputs end in one line that names the problem, exit code 2, no traceback — and
the next good command still works. One table, one row per bad input."""

from __future__ import annotations

import gzip
import json
import shutil

import pytest

from lottery.cli import app as cli


def run(argv, capsys) -> tuple[int, str]:
    try:
        code = cli.main(argv)
    except SystemExit as exc:      # argument and settings errors exit from argparse level
        code = exc.code
    err = capsys.readouterr().err
    return code, err


@pytest.fixture
def specs(mirror, tmp_path):
    """A good spec, and the ingredients of bad ones, in tmp_path."""
    src = mirror / "format-samples/mcauley2014/Books_small.json"
    shutil.copy(src, tmp_path / "books.json")
    raw = gzip.compress(src.read_bytes())
    (tmp_path / "cut.json.gz").write_bytes(raw[: len(raw) // 2])          # a truncated .gz

    def spec(name, **body):
        path = tmp_path / f"{name}.spec.json"
        path.write_text(json.dumps(body))
        return str(path)

    return {
        "good": spec("good", format="mcauley2014", domains={"books": ["books.json"]}),
        "truncated": spec("truncated", format="mcauley2014", domains={"books": ["cut.json.gz"]}),
        "missing": spec("missing", format="mcauley2014", domains={"books": ["nope.json"]}),
        "format": spec("format", format="xml", domains={"books": ["books.json"]}),
        "mixed": spec("mixed", domains={"books": {"files": ["books.json"], "format": "mcauley2014"},
                                        "cut": ["cut.json.gz"]}),
        "notjson": str(tmp_path / "books.json"),
        "file_as_runs": str(tmp_path / "books.json"),
    }


SMALL = ["--set", "data.n_train=60", "--set", "data.n_val=20", "--set", "data.n_test=20"]

CASES = [
    # (id, argv with {placeholders}, expected message fragments)
    ("truncated gz", ["data", "check", "{truncated}", *SMALL], ["cut.json.gz", "truncated or corrupt"]),
    ("missing file", ["data", "check", "{missing}", *SMALL], ["nope.json", "not found"]),
    ("unknown format", ["data", "check", "{format}", *SMALL], ["unknown review format 'xml'"]),
    ("no format for a domain", ["data", "check", "{mixed}", *SMALL], ["no format for domain 'cut'"]),
    ("spec is not a spec", ["data", "check", "{notjson}"], ["not valid JSON"]),
    ("too few reviews", ["data", "check", "{good}"], ["usable negative reviews", "data.n_train"]),
    ("empty seed list", ["tickets", "--profile", "smoke", "--set", "seeds=[]"],
     ["seeds must be a non-empty list"]),
    ("wrong type", ["tickets", "--profile", "smoke", "--set", "train.max_epochs=abc"],
     ["train.max_epochs must be an integer"]),
    ("unknown domain", ["tickets", "--profile", "smoke", "--domains", "kitchen"],
     ["unknown domain 'kitchen'"]),
    ("chapter parameter", ["chapter", "tickets", "--profile", "smoke", "-p", "rounds", "three"],
     ["parameter 'rounds'", "'three'", "(prune.rounds: "]),
    ("odd split size, run", ["tickets", "--profile", "smoke", "--set", "data.n_train=201"],
     ["setting data.n_train must be an even integer >= 2", "got 201 (data.n_train: "]),
    ("odd split size, profile", ["profile", "smoke", "--set", "data.n_val=51"],
     ["setting data.n_val must be an even integer >= 2", "got 51 (data.n_val: "]),
    ("odd split size, data check", ["data", "check", "{good}", *SMALL, "--set", "data.n_test=21"],
     ["setting data.n_test must be an even integer"]),
    ("bad autocast", ["profile", "smoke", "--set", "train.autocast_dtype=float16"],
     ['train.autocast_dtype must be null or "bfloat16"']),
    ("runs folder is a file", ["tickets", "--profile", "smoke", "--runs", "{file_as_runs}",
                               "--quiet"], ["cannot use", "LOTTERY_CACHE_DIR"]),
]


@pytest.mark.parametrize("case,argv,expected", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_with_exit_2(case, argv, expected, specs, capsys):
    code, err = run([a.format(**specs) for a in argv], capsys)
    assert code == 2, (case, err)
    assert "Traceback" not in err
    for fragment in expected:
        assert fragment in err, (case, err)
    # the next good command works
    code, err = run(["data", "check", specs["good"], *SMALL], capsys)
    assert code == 0, err
