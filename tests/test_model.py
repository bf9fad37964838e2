"""The text CNN: exact architecture, §4.3.1 initialisation, and exact dynamic padding."""

import math

import pytest
import torch
import torch.nn.functional as F
import torch.nn.utils.prune

from lottery.config import ModelSettings
from lottery.engine.model import TextCNN, conv_input, count_parameters, sparse_product, he_uniform_bound, init_model, pad_length, pooled_convolutions

PAPER = ModelSettings()


def test_paper_parameter_count_with_vocab_8000():
    model = TextCNN(8000, PAPER)
    embedding = 8000 * 417
    convs = sum(127 * 417 * h + 127 for h in (3, 4, 5))
    mlp = (381 * 117 + 117) + (117 * 2 + 2)
    assert count_parameters(model) == embedding + convs + mlp == 4_016_819


def test_architecture_matches_the_paper():
    model = TextCNN(8000, PAPER)
    assert model.embedding.weight.shape == (8000, 417)
    assert [c.kernel_size[0] for c in model.convs] == [3, 4, 5]
    for conv in model.convs:
        assert conv.out_channels == 127 and conv.stride == (1,) and conv.padding == (0,) and conv.dilation == (1,)
    assert (model.hidden.in_features, model.hidden.out_features) == (381, 117)
    assert (model.out.in_features, model.out.out_features) == (117, 2)
    assert model(torch.randint(0, 8000, (3, 20))).shape == (3, 2)


def test_initial_distributions():
    model = init_model(8000, PAPER, seed=0)
    emb = model.embedding.weight.detach()
    assert torch.all(emb[0] == 0)                                 # padding row
    rest = emb[1:]
    assert abs(rest.mean().item()) < 0.01 and abs(rest.std().item() - 1.0) < 0.01   # N(0, 1)
    for layer in [*model.convs, model.hidden, model.out]:
        w = layer.weight.detach()
        fan_in = w[0].numel()
        b = math.sqrt(6.0 / fan_in)                               # Eq. 4 with a = 0
        assert b == pytest.approx(he_uniform_bound(fan_in, 0.0))
        assert w.abs().max().item() <= b
        assert w.abs().max().item() > 0.95 * b                     # fills the interval
        assert w.var().item() == pytest.approx(b * b / 3, rel=0.1 if w.numel() > 1000 else 0.5)


def test_init_depends_only_on_seed():
    a, b, c = (init_model(500, ModelSettings(embed_dim=8, channels=4, hidden=4), s) for s in (1, 1, 2))
    for (n, pa), pb, pc in zip(a.named_parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb), n
        assert not torch.equal(pa, pc), n


def _padded(lengths, width, vocab=8000, seed=0):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.zeros(len(lengths), width, dtype=torch.long)
    for i, n in enumerate(lengths):
        tokens[i, :n] = torch.randint(1, vocab, (n,), generator=g)
    return tokens


@pytest.mark.parametrize("lengths", [[10, 57, 3, 120], [1, 2], [499, 40], [500, 7]])
def test_dynamic_padding_gives_the_same_logits_as_fixed_500(lengths):
    model = init_model(8000, PAPER, seed=0).eval()
    fixed = _padded(lengths, 500)
    short = fixed[:, : pad_length(max(lengths), 500, PAPER)]
    assert torch.allclose(model(fixed), model(short), atol=1e-5)


def test_padding_only_to_the_longest_review_is_not_exact():
    # Guards the test above: without the all-padding window the logits change.
    model = init_model(8000, PAPER, seed=0).eval()
    fixed = _padded([10, 57, 3, 120], 500)
    assert not torch.allclose(model(fixed), model(fixed[:, :120]), atol=1e-5)


def test_padding_embedding_stays_zero_under_training():
    model = init_model(50, ModelSettings(embed_dim=8, channels=4, hidden=4), seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=0.1, weight_decay=1e-2)
    for _ in range(5):
        tokens = _padded([3, 9], 12, vocab=50)
        loss = torch.nn.functional.cross_entropy(model(tokens), torch.tensor([0, 1]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert torch.all(model.embedding.weight[0] == 0)


# ------------------------------------------------- the sparse backward of 1-max pooling

def _plain_pooled(x, convs):
    """The textbook path: full convolution, max over time, autograd's backward."""
    xt = x.transpose(1, 2).contiguous()
    return torch.cat([conv(xt).max(dim=2).values for conv in convs], dim=1)


@pytest.mark.parametrize("length", [5, 9, 40, 257])
def test_the_sparse_backward_gives_autograd_s_gradients(length):
    """ConvMax (the engine's path) against the plain convolution: identical values, and
    the gradients of the input, the weights and the biases of every height equal to float
    tolerance (only the order of the sums differs). Mutations P1-P3 break it."""
    model = init_model(60, ModelSettings(embed_dim=16, channels=7, hidden=5), seed=3)
    with torch.no_grad():
        model.convs[1].weight[2] = 0.0                       # a pruned filter
    g = torch.Generator().manual_seed(length)
    x = torch.randn(4, length, 16, generator=g)
    probe = torch.randn(4, 21, generator=g)
    grads = []
    for path in (pooled_convolutions, _plain_pooled):
        xi = x.clone().requires_grad_()
        model.zero_grad()
        out = path(xi, model.convs)
        (out * probe).sum().backward()
        grads.append((out.detach(), xi.grad, [p.grad.clone() for c in model.convs for p in c.parameters()]))
    (fast, gx, gp), (plain, gx0, gp0) = grads
    assert torch.equal(fast, plain)
    torch.testing.assert_close(gx, gx0, rtol=1e-5, atol=1e-6)
    for a, b in zip(gp, gp0):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert gx.abs().sum() > 0 and all(p.abs().sum() > 0 for p in gp)


def test_the_sparse_backward_is_bitwise_repeatable_and_matches_a_direct_sum():
    """Engine 4's two sparse products (MKL on x86) give the same bits on every call, and
    the weight gradient of each tap is the direct sum over the batch of g[b, c] times the
    input row that tap read at the winning position."""
    model = init_model(60, ModelSettings(embed_dim=16, channels=7, hidden=5), seed=5)
    g = torch.Generator().manual_seed(0)
    x, probe = torch.randn(6, 33, 16, generator=g), torch.randn(6, 21, generator=g)
    runs = []
    for _ in range(2):
        xi = x.clone().requires_grad_()
        model.zero_grad()
        (pooled_convolutions(xi, model.convs) * probe).sum().backward()
        runs.append([xi.grad] + [c.weight.grad.clone() for c in model.convs])
    assert all(torch.equal(a, b) for a, b in zip(*runs))
    conv = model.convs[2]                                    # height 5
    winners = F.conv1d(x.transpose(1, 2), conv.weight, conv.bias).max(dim=2).indices   # (B, C)
    c, j = 4, 3
    direct = sum(probe[b, 14 + c] * x[b, winners[b, c] + j] for b in range(6))
    torch.testing.assert_close(runs[0][3][c, :, j], direct, rtol=1e-5, atol=1e-6)


def test_the_engine_uses_the_sparse_backward_in_training_and_plain_convolution_in_evaluation():
    model = init_model(60, ModelSettings(embed_dim=8, channels=3, hidden=4), seed=0)
    tokens = torch.randint(1, 60, (2, 12))
    model.train()
    assert type(model(tokens).grad_fn).__name__ == "AddmmBackward0"
    graph, seen = [model(tokens).grad_fn], set()
    while graph:
        fn = graph.pop()
        if fn is not None and fn not in seen:
            seen.add(fn)
            graph += [f for f, _ in fn.next_functions]
    names = {type(f).__name__ for f in seen}
    assert "ConvMaxBackward" in names and "ConvolutionBackward0" not in names
    with torch.no_grad():
        model.eval()
        assert torch.equal(model(tokens), model(tokens))


def test_the_sparse_backward_under_bfloat16_autocast_sums_in_float32():
    model = init_model(60, ModelSettings(embed_dim=16, channels=7, hidden=5), seed=1)
    x = torch.randn(3, 30, 16, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = pooled_convolutions(x, model.convs)
    out.float().sum().backward()
    assert x.grad.dtype == torch.float32 and model.convs[0].weight.grad.dtype == torch.float32
    x2 = x.detach().clone().requires_grad_()
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        _plain_pooled(x2, model.convs).float().sum().backward()
    torch.testing.assert_close(x.grad, x2.grad, rtol=0.05, atol=0.05)


def test_the_sparse_product_gives_torch_sparse_mm_s_bits_and_never_reads_its_buffer():
    g = torch.Generator().manual_seed(3)
    columns = torch.randperm(64 * 9, generator=g)[:40 * 8].view(40, 8).sort(dim=1).values.reshape(-1)
    a = torch.sparse_csr_tensor(torch.arange(0, 40 * 8 + 1, 8), columns, torch.randn(40 * 8, generator=g),
                                (40, 64 * 9), check_invariants=True)
    dense, taps = torch.randn(64 * 9, 17, generator=g), torch.randn(40, 17, generator=g)
    assert torch.equal(sparse_product(a, dense), torch.sparse.mm(a, dense))
    at = a.t().to_sparse_csr()
    assert torch.equal(sparse_product(at, taps), torch.sparse.mm(a.t(), taps))
    buffer = torch.full((64 * 9, 17), float("nan"))    # what sparse_product relies on: beta = 0
    torch.addmm(buffer, at, taps, beta=0, out=buffer)   # never reads the uninitialised buffer
    assert torch.equal(buffer, torch.sparse.mm(a.t(), taps))


def test_one_bfloat16_cast_of_the_input_gives_autocast_s_bits():
    """Under bf16 autocast the engine casts the (B, d, L) input once; autocast itself
    would cast the float32 input once per kernel height. Same bits, both paths."""
    model = init_model(60, ModelSettings(embed_dim=16, channels=7, hidden=5), seed=2)
    x = torch.randn(3, 30, 16)
    assert conv_input(x).dtype == torch.float32 and torch.equal(conv_input(x), x.transpose(1, 2).contiguous())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert conv_input(x).dtype == torch.bfloat16
        expected = _plain_pooled(x, model.convs)           # autocast's own casts
        sparse = pooled_convolutions(x.clone().requires_grad_(), model.convs)
        with torch.no_grad():
            plain = pooled_convolutions(x, model.convs)
    assert expected.dtype == sparse.dtype == plain.dtype == torch.bfloat16
    assert torch.equal(sparse, expected) and torch.equal(plain, expected)


def test_convolutions_pruned_with_torch_hooks_train_through_their_masked_weights():
    """``torch.nn.utils.prune`` recomputes ``conv.weight`` in a forward pre-hook, which
    the sparse path (it reads the weights without calling the module) would skip: such
    convolutions take the plain path, step after step, with the mask in force."""
    # Wide enough that no filter or hidden unit is dead for any batch (a 3-filter, 4-unit
    # model failed the non-zero gradient check for 6 of 200 random batches).
    model = init_model(60, ModelSettings(embed_dim=8, channels=6, hidden=16), seed=0)
    for conv in model.convs:
        torch.nn.utils.prune.l1_unstructured(conv, "weight", amount=0.5)
    tokens = torch.randint(1, 60, (4, 12), generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1, 0, 1])
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):                         # a stale weight fails the second backward
        opt.zero_grad()
        F.cross_entropy(model(tokens), labels).backward()
        opt.step()
    for conv in model.convs:
        assert conv.weight_orig.grad is not None and conv.weight_orig.grad.abs().sum() > 0
        assert (conv.weight_orig.grad[conv.weight_mask == 0] == 0).all()
