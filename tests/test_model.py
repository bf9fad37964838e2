"""The text CNN: exact architecture, §4.3.1 initialisation, and exact dynamic padding."""

import math

import pytest
import torch

from lottery.config import ModelSettings
from lottery.engine.model import TextCNN, count_parameters, he_uniform_bound, init_model, pad_length

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
