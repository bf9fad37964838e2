"""Speed work (issue 5): the benchmark runs, and every adopted or opt-in lever is exact.

Targets (speed-up, % of peak) are measured by ``make bench``, never asserted here.
"""

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from lottery import config
from lottery.config import ModelSettings, TrainSettings
from lottery.engine.masks import full_mask
from lottery.engine.model import init_model
from lottery.engine.stacked import StackedTextCNN
from lottery.engine.store import settings_hash
from lottery.engine.train import accuracy, train_masked, train_models

sys.path.insert(0, str(Path(__file__).parent))
from test_train import sparse_mask, splits  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
COURSE = config.get_profile("course").model


def test_bench_tiny_runs_both_paths(mirror, tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench.py"), "--tiny", "--no-levers",
                           "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    for path in ("naive", "engine"):
        assert r[path]["wall_s"] > 0 and r[path]["examples_per_s"] > 0 and r[path]["peak_rss_mb"] > 0
    assert r["ratio"] > 0 and r["matmul_peak_gflop_per_s"]["used"] > 0
    # the engine executes less than the dense-equivalent work (its sparse backward), the naive path all of it
    assert 0 < r["job"]["engine_executed_flops"] < r["job"]["useful_flops"]
    assert r["naive"]["executed_gflop_per_s"] == pytest.approx(r["naive"]["useful_gflop_per_s"])
    assert r["engine"]["executed_gflop_per_s"] < r["engine"]["useful_gflop_per_s"]
    assert r["exactness"]["eval_same_weights"]["equal"]
    assert r["machine"]["torch"] == torch.__version__
    assert len(r["accuracies"]["naive"]) == len(r["accuracies"]["engine"]) == 3
    b = r["bf16"]
    assert set(b["capability"]) >= {"avx512_bf16", "amx_bf16", "cuda_bf16", "has_bf16_hardware"}
    if b["capability"]["has_bf16_hardware"]:
        assert b["wall_s"] > 0 and b["matmul_peak_gflop_per_s"] > 0 and b["accuracy_effect"]["n_networks"] == 3
    else:
        assert "no bf16 hardware" in b["skipped"]


def test_the_sparse_backward_flop_count_is_one_window_per_filter():
    """A (d=2, C=3, heights 1 and 2, H=4, K=2) model: weight and input gradient of one
    window per filter (2·C·d·h per height) plus the MLP's two gradients per layer."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench import macs, sparse_backward_macs

    m = ModelSettings(embed_dim=2, channels=3, kernel_heights=(1, 2), hidden=4, n_classes=2)
    assert sparse_backward_macs(m) == 2 * 3 * 2 * 1 + 2 * 3 * 2 * 2 + 2 * (6 * 4 + 4 * 2)
    assert macs(10, m) == 3 * 2 * 1 * 10 + 3 * 2 * 2 * 9 + 6 * 4 + 4 * 2


def test_bench_bf16_helpers():
    """The bf16 section's pieces (the forced emulated engine run is too slow for the suite
    on CPUs without bf16 hardware)."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench import matmul_peak_bf16, paired_effect

    assert matmul_peak_bf16(1, n=64, reps=1) > 0
    fp32 = [{"seed": s, "strategy": "TICKET-RESET", "round": 1, "test_acc": a} for s, a in ((0, 0.5), (1, 0.7))]
    half = [{"seed": s, "strategy": "TICKET-RESET", "round": 1, "test_acc": a} for s, a in ((0, 0.52), (1, 0.66))]
    e = paired_effect(fp32, half)
    assert e["n_networks"] == 2 and e["mean_diff_pts"] == pytest.approx(-1.0)
    assert e["sd_diff_pts"] == pytest.approx(((2 - -1) ** 2 + (-4 - -1) ** 2) ** 0.5)


def test_contiguous_conv_input_is_bitwise_the_transposed_view():
    model = init_model(300, COURSE, seed=0)
    tokens = torch.randint(1, 300, (8, 40), generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1] * 4)

    def grads(contiguous):
        model.zero_grad()
        x = F.dropout(model.embedding(tokens), 0.3, True).transpose(1, 2)
        x = x.contiguous() if contiguous else x
        pooled = [F.relu(c(x)).amax(2) for c in model.convs]
        logits = model.out(F.relu(model.hidden(torch.cat(pooled, 1))))
        F.cross_entropy(logits, labels).backward()
        return logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}
    torch.manual_seed(1)
    a, ga = grads(True)
    torch.manual_seed(1)
    b, gb = grads(False)
    assert torch.equal(a, b) and all(torch.equal(ga[n], gb[n]) for n in ga)


@pytest.mark.parametrize("settings", [COURSE, ModelSettings(embed_dim=16, channels=8, hidden=8)])
def test_stacked_model_matches_separate_models(settings):
    models = [init_model(200, settings, seed=s) for s in range(3)]
    stacked = StackedTextCNN(models)
    tokens = torch.randint(0, 200, (16, 30), generator=torch.Generator().manual_seed(0))
    tokens[:, 25:] = 0                                                  # padding tail
    labels = torch.randint(0, 2, (16,), generator=torch.Generator().manual_seed(1))
    torch.manual_seed(5)
    logits = stacked(tokens)
    sum(F.cross_entropy(logits[i], labels) for i in range(3)).backward()
    for i, m in enumerate(models):
        torch.manual_seed(5)                                             # same dropout draws
        ref = m(tokens)
        F.cross_entropy(ref, labels).backward()
        torch.testing.assert_close(logits[i], ref, rtol=1e-5, atol=1e-5)   # float order of the grouped conv
        c = settings.channels
        torch.testing.assert_close(stacked.embedding.grad[i], m.embedding.weight.grad, rtol=1e-5, atol=1e-6)
        for j, conv in enumerate(m.convs):
            torch.testing.assert_close(stacked.conv_weight[j].grad[i * c:(i + 1) * c], conv.weight.grad,
                                       rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(stacked.hidden_weight.grad[i], m.hidden.weight.grad, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(stacked.out_bias.grad[i], m.out.bias.grad, rtol=1e-5, atol=1e-6)
    assert all(torch.equal(a, b) for sd, m in zip(stacked.state_dicts(), models)
               for a, b in zip(sd.values(), m.state_dict().values()))


def test_training_k_models_stacked_gives_the_results_of_separate_runs():
    train, val, test = splits()
    ms = COURSE
    ts = TrainSettings(max_epochs=3, lr=1e-2, patience=1)
    masks = [full_mask(init_model(200, ms, seed=0)), sparse_mask(init_model(200, ms, seed=1)),
             sparse_mask(init_model(200, ms, seed=2), 2)]
    together = train_models([init_model(200, ms, seed=s) for s in range(3)], masks, train, val, test, ts, 60, seed=7)
    for s, res in enumerate(together):
        alone = train_masked(init_model(200, ms, seed=s), masks[s], train, val, test, ts, 60, seed=7)
        assert res.history == pytest.approx(alone.history, abs=1 / 128) and res.epochs_run == alone.epochs_run
        assert abs(res.test_acc - alone.test_acc) <= 2 / 128
        for k in alone.state:
            torch.testing.assert_close(res.state[k], alone.state[k], rtol=1e-4, atol=1e-4)
            if k in masks[s]:
                assert torch.all(res.state[k][~masks[s][k]] == 0)


def test_autocast_setting_is_neutral_and_runs_on_cpu():
    s = config.get_profile("smoke")
    assert settings_hash({"train": s.train}) == settings_hash({"train": replace(s.train, autocast_dtype=None)})
    assert settings_hash({"train": s.train}) != settings_hash({"train": replace(s.train, autocast_dtype="bfloat16")})
    train, val, test = splits()
    model = init_model(200, ModelSettings(embed_dim=16, channels=8, hidden=8), seed=0)
    res = train_masked(model, full_mask(model), train, val, test,
                       TrainSettings(max_epochs=2, lr=1e-2, autocast_dtype="bfloat16"), 60, seed=0)
    assert all(v.dtype == torch.float32 for v in res.state.values())     # master weights stay fp32
    assert 0 <= res.test_acc <= 1
    with pytest.raises(ValueError, match="autocast_dtype"):
        train_masked(model, full_mask(model), train, val, test, TrainSettings(max_epochs=1, autocast_dtype="float16"),
                     60, seed=0)


def test_device_plumbing_returns_cpu_state():
    train, val, test = splits()
    model = init_model(200, ModelSettings(embed_dim=16, channels=8, hidden=8), seed=0)
    res = train_masked(model, full_mask(model), train, val, test, TrainSettings(max_epochs=1, device="cpu"), 60, seed=0)
    assert all(v.device.type == "cpu" for v in res.state.values())
    assert accuracy(model, val, 60, device="cpu") == res.val_acc


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")
def test_cuda_training_end_to_end():
    train, val, test = splits()
    model = init_model(200, ModelSettings(embed_dim=16, channels=8, hidden=8), seed=0)
    res = train_masked(model, full_mask(model), train, val, test,
                       TrainSettings(max_epochs=2, lr=1e-2, device="cuda", autocast_dtype="bfloat16"), 60, seed=0)
    assert all(v.device.type == "cpu" for v in res.state.values()) and res.test_acc > 0.5


def test_finer_jobs_on_two_workers_give_the_same_rows(mirror, tmp_path):
    from lottery.engine import runner
    from lottery.engine.store import RunStore

    s = config.override(config.get_profile("smoke"), **{"prune.rounds": 1, "train.max_epochs": 1})
    frames = [runner.run_tickets(s, ["books"], [0], ["reset", "random"], progress=False, workers=w,
                                 store=RunStore(tmp_path / str(w))).drop(columns="seconds")
              for w in (1, 2)]                                    # 2 workers: round 0, then 2 chains
    assert frames[0].equals(frames[1]) and len(frames[0]) == 4


def test_engine_forward_is_the_papers_forward():
    """ReLU after max-pooling and max with indices compute the same logits and gradients
    as the paper's ReLU-then-max (dropout off; float ties aside, which random weights lack)."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench import kim_forward

    model = init_model(300, COURSE, seed=0)
    tokens = torch.randint(1, 300, (8, 40), generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1] * 4)
    model.eval()
    out = []
    for forward in (model.forward, kim_forward.__get__(model)):
        model.zero_grad()
        logits = forward(tokens)
        F.cross_entropy(logits, labels).backward()
        out.append((logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}))
    (a, ga), (b, gb) = out
    assert torch.equal(a, b)
    for n in ga:
        torch.testing.assert_close(ga[n], gb[n], rtol=0, atol=1e-7)


def test_dropout_noise_has_the_dropout_distribution():
    from lottery.engine.model import dropout_noise

    torch.manual_seed(0)
    noise = dropout_noise((200, 50, 40), 0.285, "cpu", torch.float32)
    values = noise.unique().tolist()
    assert len(values) == 2 and values[0] == 0.0 and values[1] == pytest.approx(1 / 0.715)
    assert abs(float((noise == 0).float().mean()) - 0.285) < 0.005
    assert abs(float(noise.mean()) - 1.0) < 0.01
    torch.manual_seed(0)
    assert torch.equal(noise, dropout_noise((200, 50, 40), 0.285, "cpu", torch.float32))   # seeded


def test_the_course_benchmarks_engine_2_is_engine_2():
    """benchmarks/course.py rebuilds engine 2 to time it: its batches must be the current engine's
    batches and its convolutions the same pooled values (only the backward differs)."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import course
    from lottery.engine import model as model_module, train as train_module

    train, _, _ = splits()
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        index = torch.randperm(len(train.labels), generator=g)[:32]
        new, old = train_module.collate(train, index, 256, COURSE, 0), course.collate_v2(train, index, 256, COURSE, 0)
        assert torch.equal(new[0], old[0]) and torch.equal(new[1], old[1])
    net = init_model(200, COURSE, seed=0)
    x = torch.randn(4, 30, COURSE.embed_dim, requires_grad=True)
    assert torch.equal(model_module.pooled_convolutions(x, net.convs), course.plain_pooled(x, net.convs))
    noise = course.dropout_noise_v2((1000, 100), 0.285, "cpu", torch.float32)
    assert abs((noise == 0).float().mean().item() - 0.285) < 0.005
    pairs = course.paired([0.5, 0.6, 0.7], [0.6, 0.6, 0.9])
    assert pairs["n"] == 3 and pairs["mean"] == pytest.approx(0.1) and pairs["low"] < 0.1 < pairs["high"]


def test_the_course_projection_counts_every_training_of_the_plan(monkeypatch):
    sys.path.insert(0, str(REPO / "benchmarks"))
    import course
    from lottery.book import plan
    from lottery.experiment import validate

    s = validate.resolve(config.get_profile("course"))
    monkeypatch.setattr(plan, "review_lengths", lambda: (lambda s: 131.0))   # no data needed
    got = course.projection(s, 2.0, 131.0)
    assert {c: v["trainings"] for c, v in got["chapters"].items()} == plan.profile_networks(s)
    assert got["total_s"] > 0


def test_the_stacking_benchmark_times_the_same_training_both_ways(tmp_path):
    """benchmarks/stacking.py compares K separate steps with one stacked step: both must be
    the same training (each model its own mean-loss gradient), and the reported upper bound
    must follow from the measured numbers it prints."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import stacking

    settings = replace(COURSE, embed_dropout=0.0)          # one noise draw per model vs shared: not the point here
    separate = [init_model(300, settings, seed) for seed in range(3)]
    stacked_nets = [init_model(300, settings, seed) for seed in range(3)]
    train = TrainSettings(lr=1e-2, weight_decay=1e-5)
    step_a = stacking.separate_step(separate, train)
    step_b, stacked = stacking.stacked_step(stacked_nets, train)
    g = torch.Generator().manual_seed(1)
    for _ in range(3):
        x, y = torch.randint(1, 300, (8, 20), generator=g), torch.randint(0, 2, (8,), generator=g)
        step_a(x, y)
        step_b(x, y)
    for net, state in zip(separate, stacked.state_dicts()):
        for name, value in net.state_dict().items():
            assert torch.allclose(value, state[name], atol=1e-5), name
    assert not torch.allclose(separate[0].hidden.weight, separate[1].hidden.weight)   # K different networks

    r = stacking.main(["--reps", "1", "--out", str(tmp_path / "s.json")])
    assert json.loads((tmp_path / "s.json").read_text())["k"] == r["k"] == 3
    step, fixed = r["ms_per_network_step"]["separate"], r["fixed_ms_per_network_step"]
    conv = r["conv_forward_ms"]
    saving = 2 / 3 * fixed + max(conv["separate"] - conv["grouped"], 0.0) / 3
    assert r["upper_bound_speedup_any_stacked_engine"] == pytest.approx(step / (step - saving))
    assert r["upper_bound_speedup_any_stacked_engine"] >= 1.0
