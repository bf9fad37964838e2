"""JSD (Eq. 1-2) by hand against scipy, unigram distributions, the matrix and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon

from lottery import config
from lottery.cli import app as cli
from lottery.stats.divergence import (extreme_pairs, jsd, jsd_matrix, kl, to_square,
                                      unigram_distributions)
from lottery.data.vocab import shared_vocab

DATA = config.DataSettings(domains=("books", "dvd", "electronics"), n_train=200, n_val=100,
                           n_test=100)
VOCAB = config.VocabSettings(vocab_size=600)


def _random_distributions(rng, n, zeros=True):
    p, q = rng.random(n), rng.random(n)
    if zeros:
        p[rng.random(n) < 0.3] = 0
        q[rng.random(n) < 0.3] = 0
    return p / p.sum(), q / q.sum()


@pytest.mark.parametrize("seed", range(5))
def test_jsd_matches_scipy_and_is_a_divergence(seed):
    rng = np.random.default_rng(seed)
    p, q = _random_distributions(rng, 50)
    value = jsd(p, q)
    assert value == pytest.approx(jensenshannon(p, q, base=2) ** 2, rel=1e-9, abs=1e-12)
    assert jsd(p, q, base=np.e) == pytest.approx(jensenshannon(p, q) ** 2, rel=1e-9)
    assert value == pytest.approx(jsd(q, p), abs=1e-15)
    assert 0 < value <= 1
    assert jsd(p, p) == 0.0


def test_jsd_extremes_and_kl_by_hand():
    assert jsd([1, 0], [0, 1]) == pytest.approx(1.0)  # disjoint supports: 1 bit
    assert kl(np.array([1.0, 0.0]), np.array([0.5, 0.5])) == pytest.approx(1.0)
    assert jsd([2, 2], [1, 1]) == 0.0  # inputs are normalised
    with pytest.raises(ValueError):
        jsd([0.5, 0.5], [1.0])
    with pytest.raises(ValueError):
        jsd([-0.1, 1.1], [0.5, 0.5])


def test_unigram_distributions(mirror):
    v = shared_vocab(DATA, VOCAB)
    dist = unigram_distributions(v, {"a": ["great book , great read"], "b": ["bad", "bad bad"]})
    assert dist.shape == (2, v.size) and list(dist.index) == ["a", "b"]
    assert np.allclose(dist.sum(axis=1), 1.0) and (dist[0] == 0).all()
    great = v.encode("great", 10)[0]
    assert len(great) == 1 and dist.loc["a", great[0]] == pytest.approx(2 / len(
        v.encode("great book , great read", 100)[0]))


def test_jsd_matrix_properties(mirror):
    table = jsd_matrix(DATA, VOCAB)
    assert list(table.columns) == ["domain_a", "domain_b", "jsd", "jsd_x1e5"]
    square = to_square(table)
    assert list(square.index) == list(square.columns) == ["books", "dvd", "electronics"]
    values = square.to_numpy()
    assert np.allclose(values, values.T) and np.all(np.diag(values) == 0)
    assert np.all(values[~np.eye(3, dtype=bool)] > 0) and np.all(values < 1)
    assert np.allclose(table["jsd_x1e5"], table["jsd"] * 1e5)
    (lo_a, lo_b, lo), (hi_a, hi_b, hi) = extreme_pairs(table)
    assert {lo_a, lo_b} == {"books", "dvd"}  # books and movies share the most subwords
    assert lo < hi and "electronics" in (hi_a, hi_b)


def test_cli_divergence_json(mirror, capsys):
    rc = cli.main(["divergence", "--profile", "smoke", "--set", "vocab.vocab_size=600", "--json"])
    out, err = capsys.readouterr()
    assert rc == 0
    matrix = json.loads(out)
    assert set(matrix) == {"books", "electronics"}
    assert matrix["books"]["books"] == 0 and matrix["books"]["electronics"] == matrix[
        "electronics"]["books"] > 0
    assert "1e5" in err


def test_cli_divergence_table(mirror, capsys):
    assert cli.main(["divergence", "--profile", "smoke", "--set", "vocab.vocab_size=600"]) == 0
    out = capsys.readouterr().out
    assert "Books" in out and "most similar:" in out and "least similar:" in out


def test_cli_data_error_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LOTTERY_DATA_MIRROR", str(tmp_path))
    rc = cli.main(["divergence", "--profile", "smoke"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("lottery: ") and err.count("\n") == 1
    assert "Traceback" not in err and "books.task.train" in err
