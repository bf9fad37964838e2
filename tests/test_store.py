"""Run store: stable hashes, neutral defaults, atomic steps."""

import dataclasses
import json

import pytest
import torch

from lottery import config
from lottery.engine.jobs import ticket_key
from lottery.engine.store import RunStore, canonical, load_tensors, settings_hash


def test_pinned_hash_of_the_paper_ticket_run():
    # If this changes, every existing run directory is orphaned: only change it on purpose.
    key = {"procedure": "tickets", **ticket_key(config.get_profile("paper"), "books", 0)}
    assert settings_hash(key) == PINNED


PINNED = "3b5edaee7612"  # engine version 4 (issue 27); engine 3 was 8d5e296ccd24, engine 2 cc298f12d085, engine 1 b196a753dc23


def test_settings_that_cannot_change_results_are_not_hashed():
    s = config.get_profile("smoke")
    a = ticket_key(s, "books", 0)
    b = ticket_key(config.override(s, **{"prune.rounds": 9, "train.eval_batch_size": 7}), "books", 0)
    c = ticket_key(config.override(s, **{"train.lr": 0.5}), "books", 0)
    assert settings_hash(a) == settings_hash(b) != settings_hash(c)


@pytest.mark.parametrize("setting, value", [
    ("train.lr", 3e-4), ("prune.prune_fraction_per_round", 0.2), ("data.split_seed", 1),
    ("data.n_train", 150), ("vocab.vocab_size", 900), ("vocab.max_len", 150), ("data.dataset", "blitzer"),
    ("data.domains", ("books",)), ("model.he_a", 5 ** 0.5), ("train.threads", 2),
    ("train.autocast_dtype", "bfloat16"), ("train.stack_strategies", True), ("prune.prune_biases", True),
])
def test_every_setting_that_changes_numbers_changes_the_run_directory(setting, value):
    s = config.get_profile("smoke")
    changed = config.override(s, **{setting: value})
    assert settings_hash(ticket_key(changed, "books", 0)) != settings_hash(ticket_key(s, "books", 0))


def test_a_new_setting_with_a_neutral_default_keeps_old_hashes():
    Old = dataclasses.make_dataclass("TrainSettings", [("lr", float, dataclasses.field(default=1e-3))], frozen=True)
    New = dataclasses.make_dataclass(
        "TrainSettings", [("lr", float, dataclasses.field(default=1e-3)),
                          ("label_smoothing", float, dataclasses.field(default=0.0, metadata=config.neutral(0.0)))],
        frozen=True)
    assert settings_hash({"train": Old()}) == settings_hash({"train": New()})
    assert settings_hash({"train": Old()}) != settings_hash({"train": New(label_smoothing=0.1)})


def test_canonical_form_is_plain_json():
    text = json.dumps(canonical(config.get_profile("course")))
    assert "kernel_heights" in text and "eval_batch_size" not in text


def test_steps_are_written_atomically(tmp_path, monkeypatch):
    run = RunStore(tmp_path).run("tickets", {"x": 1})
    run.write_step("reset/round_01", {"acc": 0.5}, {"mask": {"w": torch.ones(3, dtype=torch.bool)}})
    assert run.done("reset/round_01") and run.metrics("reset/round_01") == {"acc": 0.5}
    assert torch.equal(run.tensors("reset/round_01", "mask")["w"], torch.ones(3, dtype=torch.bool))

    def crash(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError):
        run.write_step("reset/round_02", {"acc": 0.6}, {"mask": {"w": torch.ones(3)}})
    assert not run.done("reset/round_02")
    assert not (run.path / "reset" / "round_02").exists()
    assert [p.name for p in (run.path / "reset").iterdir()] == ["round_01"]   # no temp leftovers


def test_tensors_load_with_weights_only(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"w": torch.ones(2)}, path)
    assert torch.equal(load_tensors(path)["w"], torch.ones(2))
    torch.save({"w": object()}, path)       # arbitrary pickles are refused
    with pytest.raises(Exception):
        load_tensors(path)


def test_the_step_seam_is_per_store_and_sees_tensors_before_metrics(tmp_path):
    """``on_step_written`` (the run store's one test seam) is called once with the step's
    tensors written but not its metrics, and once when it is stored; a store made
    without one has none (no process-wide state)."""
    seen = []
    store = RunStore(tmp_path, on_step_written=lambda phase, step: seen.append((phase, step, run.done(step))))
    run = store.run("tickets", {"x": 1})
    run.write_step("full/round_00", {"acc": 0.5}, {"mask": {"w": torch.ones(3, dtype=torch.bool)}})
    run.write_step("reset/round_01", {"acc": 0.6})
    assert seen == [("tensors", "full/round_00", False), ("stored", "full/round_00", True),
                    ("tensors", "reset/round_01", False), ("stored", "reset/round_01", True)]
    assert RunStore(tmp_path).on_step_written is None
    assert RunStore(tmp_path).run("tickets", {"x": 1}).on_step_written is None

    def die(phase, step):   # what a kill in the middle of a step leaves: nothing
        if phase == "tensors":
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        RunStore(tmp_path, on_step_written=die).run("tickets", {"x": 1}).write_step(
            "reset/round_02", {"acc": 0.7}, {"mask": {"w": torch.ones(3)}})
    assert not run.done("reset/round_02")
    assert sorted(p.name for p in (run.path / "reset").iterdir()) == ["round_01"]
