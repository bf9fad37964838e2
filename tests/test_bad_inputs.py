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


def _raw(folder, name, text):
    path = folder / f"{name}.spec.json"
    path.write_text(text)
    return str(path)


@pytest.fixture
def specs(mirror, tmp_path):
    """A good spec, and the ingredients of bad ones, in tmp_path."""
    src = mirror / "format-samples/mcauley2014/Books_small.json"
    shutil.copy(src, tmp_path / "books.json")
    raw = gzip.compress(src.read_bytes())
    (tmp_path / "cut.json.gz").write_bytes(raw[: len(raw) // 2])          # a truncated .gz

    (tmp_path / "empty.json").write_bytes(b"")
    (tmp_path / "a_folder").mkdir()

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
        "dup": _raw(tmp_path, "dup", '{"format": "mcauley2014", "domains": {"books": ["books.json"], '
                                     '"books": ["cut.json.gz"]}}'),
        "empty_file": spec("empty_file", format="mcauley2014", domains={"books": ["empty.json"]}),
        "dir_file": spec("dir_file", format="mcauley2014", domains={"books": ["a_folder"]}),
        "no_domains": spec("no_domains", format="mcauley2014"),
        "no_files": spec("no_files", format="mcauley2014", domains={"books": []}),
        "int_file": spec("int_file", format="mcauley2014", domains={"books": [3]}),
        "unknown_key": spec("unknown_key", format="mcauley2014", domains={"books": ["books.json"]}, colour=1),
        "no_spec": str(tmp_path / "no-such.spec.json"),
        "folder": str(tmp_path / "a_folder"),
        "csv_nowhere": str(tmp_path / "no-such-folder" / "out.csv"),
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
    # -- your own data: the spec and its files
    ("duplicate domain key", ["data", "check", "{dup}", *SMALL], ["key 'books' appears twice in \"domains\""]),
    ("empty data file", ["data", "check", "{empty_file}", *SMALL], ["empty.json: is empty (0 bytes)"]),
    ("folder listed as a data file", ["data", "check", "{dir_file}", *SMALL],
     ["a_folder: is a directory, expected a review file"]),
    ("spec path does not exist", ["tickets", "--profile", "smoke", "--set", "data.dataset={no_spec}"],
     ["no-such.spec.json: dataset spec file does not exist"]),
    ("spec path is a folder", ["data", "check", "{folder}"], ["a_folder: is a directory"]),
    ("spec without domains", ["data", "check", "{no_domains}"], ['a dataset spec is a JSON object with "domains"']),
    ("domain without files", ["data", "check", "{no_files}"], ["domains.books: expected a non-empty list of files"]),
    ("file that is not a path", ["data", "check", "{int_file}"], ["domains.books: every file must be a path", "got 3"]),
    ("unknown spec key", ["data", "check", "{unknown_key}"], ["unknown key 'colour'"]),
    ("unknown dataset", ["tickets", "--profile", "smoke", "--set", "data.dataset=nope"], ["unknown dataset 'nope'"]),
    # -- settings
    ("unknown setting", ["tickets", "--profile", "smoke", "--set", "train.nope=1"], ["unknown setting 'nope'"]),
    ("--set without =", ["tickets", "--profile", "smoke", "--set", "trainlr"], ["--set expects KEY=VALUE"]),
    ("negative lr", ["tickets", "--profile", "smoke", "--set", "train.lr=-1"], ["train.lr must be a number > 0"]),
    ("prune fraction above 1", ["tickets", "--profile", "smoke", "--set", "prune.prune_fraction_per_round=1.5"],
     ["must be a number in (0, 1), got 1.5"]),
    ("zero epochs", ["tickets", "--profile", "smoke", "--set", "train.max_epochs=0"],
     ["train.max_epochs must be an integer >= 1, got 0"]),
    ("zero batch", ["tickets", "--profile", "smoke", "--set", "train.batch_size=0"], ["train.batch_size must be"]),
    ("negative rewind", ["tickets", "--profile", "smoke", "--set", "prune.rewind_iterations=-1"],
     ["prune.rewind_iterations must be an integer >= 0"]),
    ("no training reviews", ["tickets", "--profile", "smoke", "--set", "data.n_train=0"],
     ["data.n_train must be an even integer >= 2"]),
    ("fractional seed", ["tickets", "--profile", "smoke", "--set", "seeds=[0.5]"], ["0.5 is not an integer >= 0"]),
    ("not a torch device", ["tickets", "--profile", "smoke", "--set", "train.device=gpu"],
     ["train.device must be a torch device"]),
    ("unreachable transfer rounds", ["transfer", "--profile", "smoke", "--set", "transfer_rounds=[99]"],
     ["transfer_rounds has no round the pruning reaches"]),
    ("unreachable federated rounds", ["federated", "--profile", "smoke", "--set", "federated.rounds=[99]"],
     ["federated.rounds has no round the pruning reaches"]),
    ("vocabulary too small", ["tickets", "--profile", "smoke", "--domains", "books", "--quiet",
                              "--set", "vocab.vocab_size=5"], ["vocab.vocab_size = 5 is too small"]),
    # -- the selection and the command line
    ("negative seed", ["tickets", "--profile", "smoke", "--seeds", "-1"], ["-1 is not an integer >= 0"]),
    ("seed twice", ["tickets", "--profile", "smoke", "--seeds", "0", "0"], ["lists a value twice"]),
    ("zero workers", ["tickets", "--profile", "smoke", "--workers", "0"], ["--workers: expected an integer >= 1, got 0"]),
    ("workers not a number", ["tickets", "--profile", "smoke", "--workers", "abc"], ["--workers: expected an integer"]),
    ("unknown profile", ["tickets", "--profile", "huge"], ["invalid choice: 'huge'"]),
    ("unknown strategy", ["tickets", "--profile", "smoke", "--strategies", "foo"], ["unknown tickets strategy 'foo'"]),
    ("pair without colon", ["transfer", "--profile", "smoke", "--pairs", "books"], ["--pairs expects SOURCE:TARGET"]),
    ("pair of one domain", ["transfer", "--profile", "smoke", "--pairs", "books:books"],
     ["source and target must differ"]),
    ("pair with unknown domain", ["transfer", "--profile", "smoke", "--pairs", "books:kitchen"],
     ["unknown domain 'kitchen'"]),
    ("unknown chapter", ["chapter", "nope", "--profile", "smoke"], ["unknown chapter 'nope'"]),
    ("unknown chapter parameter", ["chapter", "tickets", "--profile", "smoke", "-p", "nonsense", "1"],
     ["unknown parameter(s) ['nonsense']"]),
    ("csv into a missing folder", ["tickets", "--profile", "smoke", "--csv", "{csv_nowhere}"],
     ["no-such-folder does not exist"]),
    ("dask address", ["tickets", "--profile", "smoke", "--dask", "nonsense"], ["--dask: expected local"]),
    ("dask local:0", ["tickets", "--profile", "smoke", "--dask", "local:0"], ["local:N needs N >= 1"]),
    ("dask slurm file", ["tickets", "--profile", "smoke", "--dask", "slurm:/no/such.yml"], ["no such file"]),
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
