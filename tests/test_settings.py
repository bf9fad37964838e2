"""Settings are checked once, at the edge, by one validator; every setting carries its
help; the validator's mark changes no run directory."""

from __future__ import annotations

import dataclasses

import pytest

from lottery import config
from lottery.book import plan
from lottery.cli import app as cli
from lottery.config import hparams
from lottery.engine import jobs, runner
from lottery.engine.jobs import ticket_key, transfer_key
from lottery.engine.store import RunStore
from lottery.experiment import selection, validate

SETTINGS_CLASSES = (config.DataSettings, config.VocabSettings, config.ModelSettings,
                    config.TrainSettings, config.PruneSettings, config.FederatedSettings,
                    config.ExperimentSettings)


def run(argv, capsys) -> tuple[int, str, str]:
    try:
        code = cli.main(argv)
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------ help on every setting
def test_every_field_of_every_settings_dataclass_has_a_one_line_help():
    for cls in SETTINGS_CLASSES:
        for f in dataclasses.fields(cls):
            text = f.metadata.get("help", "")
            assert text.strip() and "\n" not in text, f"{cls.__name__}.{f.name} has no one-line help"


def test_help_metadata_kept_the_hash_metadata():
    prune = {f.name: f.metadata for f in dataclasses.fields(config.PruneSettings)}
    assert prune["rounds"]["hashed"] is False
    assert prune["rewind_iterations"]["neutral"] == config.REWIND_DEFAULT
    train = {f.name: f.metadata for f in dataclasses.fields(config.TrainSettings)}
    assert train["eval_batch_size"]["hashed"] is False and train["autocast_dtype"]["neutral"] is None
    assert train["threads"]["neutral"] == 1 and train["stack_strategies"]["neutral"] is False


def _leaves(cls, prefix=""):
    for f in hparams.settings_fields(cls):
        if isinstance(f.default_factory, type) and dataclasses.is_dataclass(f.default_factory):
            yield from _leaves(f.default_factory, f"{prefix}{f.name}.")
        else:
            yield prefix + f.name


def test_help_settings_lists_every_setting_with_type_default_and_help(capsys):
    code, out, _ = run(["profile", "--help-settings"], capsys)
    assert code == 0
    names = list(_leaves(config.ExperimentSettings))
    assert len(names) == len(list(hparams.iter_settings())) > 40
    lines = out.splitlines()
    for name in names:
        row = next(line for line in lines if line.split()[:1] == [name])
        assert str(hparams.setting_field(name).type) in row
        assert hparams.setting_help(name) in out
    assert "resolved" not in [line.split()[0] for line in lines[1:] if line.strip()]
    assert any(line.split()[:1] == ["train.lr"] and "= 0.001" in line for line in lines)


def test_help_settings_of_a_profile_shows_its_values(capsys):
    code, out, _ = run(["profile", "course", "--help-settings", "--set", "train.max_epochs=3"], capsys)
    assert code == 0 and "profile course" in out.splitlines()[0]
    names = set(_leaves(config.ExperimentSettings))
    rows: dict[str, str] = {}
    for line in out.splitlines()[1:]:
        if line.split()[:1] and line.split()[0] in names:
            rows.setdefault(line.split()[0], line)
    assert set(rows) == names
    assert "= 1200" in rows["data.n_train"] and "= 3" in rows["train.max_epochs"]
    assert run(["profile"], capsys)[0] == 2


# ------------------------------------------------------------------ one validator, one message
def test_odd_n_train_fails_the_same_way_in_profile_and_in_a_run(capsys, tmp_path):
    expected = ("lottery: setting data.n_train must be an even integer >= 2 (half of it per class, "
                "for balance), got 201 (data.n_train: " + hparams.setting_help("data.n_train") + ")")
    code, out, err = run(["profile", "smoke", "--set", "data.n_train=201"], capsys)
    assert (code, err.strip()) == (2, expected) and out == ""
    code, _, err = run(["tickets", "--profile", "smoke", "--set", "data.n_train=201",
                        "--runs", str(tmp_path / "runs"), "--quiet"], capsys)
    assert (code, err.strip()) == (2, expected)
    assert not (tmp_path / "runs").exists()


def test_errors_name_the_setting_and_end_with_its_help():
    with pytest.raises(ValueError) as info:
        validate.from_profile("smoke", {"train.lr": -1})
    assert str(info.value) == "setting train.lr must be a number > 0, got -1 (train.lr: Adam learning rate)"
    with pytest.raises(ValueError, match=r'must be null or "bfloat16", got .float16. \(train.autocast_dtype: '):
        validate.from_profile("smoke", {"train.autocast_dtype": "float16"})
    with pytest.raises(ValueError, match=r"prune.prune_fraction_per_round must be a number in \(0, 1\)"):
        validate.from_profile("smoke", {"prune.prune_fraction_per_round": 1.0})


def test_a_chapter_parameter_error_names_the_parameter_and_the_setting():
    with pytest.raises(ValueError) as info:
        selection.chapter_settings("smoke", p=1.5)
    message = str(info.value)
    assert message.startswith("parameter 'p' (prune fraction per round) must be a number in (0, 1), got 1.5")
    assert message.endswith(f"(prune.prune_fraction_per_round: "
                            f"{hparams.setting_help('prune.prune_fraction_per_round')})")
    with pytest.raises(ValueError, match="^parameter 'n_train' .* even integer"):
        selection.chapter_settings("smoke", n_train=201)
    with pytest.raises(ValueError, match="^parameter 'overrides': setting train.lr must be a number > 0"):
        selection.chapter_settings("smoke", overrides={"train.lr": 0})
    # 'overrides' wins over a parameter, and then it is the one named
    with pytest.raises(ValueError, match="^parameter 'overrides': setting prune.rounds"):
        selection.chapter_settings("smoke", rounds=2, overrides={"prune.rounds": -2})


# ------------------------------------------------------------------ resolved once, and marked
def test_resolve_is_idempotent_and_marks_its_result():
    raw = config.get_profile("course")
    assert not raw.resolved
    once = validate.resolve(config.override(raw, **{"data.domains": ["B", "Electronics", "dvd", "C", "H"]}))
    assert once.resolved and once.data.domains == config.DEFAULT_DOMAINS
    twice = validate.resolve(once)
    assert twice == once and twice.resolved and once == raw   # the mark is not compared
    assert hash(once) == hash(raw)
    assert validate.ensure_resolved(once) is once
    assert not dataclasses.replace(once, seeds=(0,)).resolved     # changed settings are checked again
    assert not config.override(once, **{"train.lr": 0.1}).resolved
    assert "resolved" not in config.to_dict(once) and config.to_dict(once) == config.to_dict(raw)
    with pytest.raises(ValueError, match="unknown setting 'resolved'"):
        config.override(raw, resolved=True)


def test_marked_settings_are_not_resolved_again_downstream(monkeypatch):
    s = validate.from_profile("smoke")
    calls = []
    real = validate.resolve
    monkeypatch.setattr(validate, "resolve", lambda *a, **k: calls.append(1) or real(*a, **k))
    chosen = validate.select(s, domains=["E"], seeds=[1], pairs=[["Books", "E"]])
    assert (chosen.domains, chosen.seeds, chosen.pairs) == (("electronics",), (1,), (("books", "electronics"),))
    assert runner.ticket_jobs(s, ["books"], [0], s.strategies, 1)
    with pytest.raises(ValueError, match="not among this profile's domains"):   # the selection is still checked
        runner.run_tickets(s, domains=["music"])
    assert calls == []
    with pytest.raises(ValueError, match="train.max_epochs"):     # unmarked settings are checked
        runner.run_tickets(config.override(s, **{"train.max_epochs": 0}))
    assert calls == [1]


def test_the_mark_changes_no_run_directory(monkeypatch):
    """Directory names measured before the mark existed (and before help metadata), at
    the engine version of then (2; issue 27 made it 3, which changes every name)."""
    monkeypatch.setattr(jobs, "ENGINE_VERSION", 2)
    before = {"smoke": ("tickets-df0e8fdea86d", "transfer-2e4928b64bc8"),
              "course": ("tickets-95be10e09dd1", "transfer-c80b1c4f9ceb"),
              "paper": ("tickets-cc298f12d085", "transfer-b1a2fe30bbe3")}
    store = RunStore("/x")
    for name, (tickets, transfer) in before.items():
        profiles = (config.get_profile(name), validate.from_profile(name))
        if name == "course":   # issue 22 changed its lr (3e-3 -> 1e-2): the old runs are the old lr's
            profiles = tuple(validate.apply_overrides(p, {"train.lr": 3e-3}) for p in profiles)
        for s in profiles:
            assert store.path("tickets", ticket_key(s, "books", 0)).name == tickets
            assert store.path("transfer", transfer_key(s, "books", "electronics", 0, "masks_reset")).name \
                == transfer


# ------------------------------------------------------------------ counts belong to the caller
class _StoredJob:
    steps = ["full/round_00"]

    def stored_rows(self, store):
        return [{"strategy": "FULL-MODEL"}]


def test_run_counts_are_the_callers_not_the_modules(tmp_path):
    counts = runner.RunCounts()
    rows = runner.run_jobs([_StoredJob(), _StoredJob()], RunStore(tmp_path), progress=False, counts=counts)
    assert len(rows) == 2 and counts == runner.RunCounts(loaded_jobs=2, run_jobs=0, missing_steps=0)
    runner.run_jobs([_StoredJob()], RunStore(tmp_path), progress=False, counts=counts)
    assert counts.loaded_jobs == 3
    assert not hasattr(runner, "LAST_RUN")


def test_ticket_seeds_select_the_ticket_grid():
    """``ticket_seeds`` gives the ticket grid more seeds than the others; the chapter
    parameter ``seeds`` chooses the seeds of every grid."""
    base = config.get_profile("smoke")
    more = validate.apply_overrides(base, {"ticket_seeds": [0, 1, 2, 3]})
    assert validate.ticket_seeds(more) == (0, 1, 2, 3) and validate.ticket_seeds(base) == tuple(base.seeds)
    run = selection.chapter_settings("smoke", overrides={"ticket_seeds": [0, 1, 2, 3]})
    assert run.ticket_seeds == (0, 1, 2, 3) and run.seeds == tuple(base.seeds)
    assert selection.chapter_settings("smoke", seeds=[1], overrides={"ticket_seeds": [0, 1, 2, 3]}).ticket_seeds == (1,)
    grid, wide = plan.profile_networks(base), plan.profile_networks(more)
    assert wide["tickets"] == 2 * grid["tickets"] and wide["transfer"] == grid["transfer"]
    with pytest.raises(ValueError, match="ticket_seeds"):
        validate.apply_overrides(base, {"ticket_seeds": [-1]})
