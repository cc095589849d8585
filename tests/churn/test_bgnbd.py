"""Our BG/NBD fit recovers the parameters of data simulated from the BG/NBD process, and
its probabilities behave as the model says."""

from __future__ import annotations

import numpy as np
import pytest

from userdesk.churn import bgnbd


def simulate(
    n: int, r: float, alpha: float, a: float, b: float, age: float, seed: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Customers observed for AGE after their first purchase: (x, t_x, T)."""
    rng = np.random.default_rng(seed)
    rates = rng.gamma(r, 1 / alpha, size=n)
    drops = rng.beta(a, b, size=n)
    x, t_x = np.zeros(n), np.zeros(n)
    for i in range(n):
        now, bought = 0.0, 0
        while True:
            now += rng.exponential(1 / rates[i])
            if now > age:
                break
            bought, t_x[i] = bought + 1, now
            if rng.uniform() < drops[i]:
                break
        x[i] = bought
    return x, t_x, np.full(n, age)


def test_the_fit_recovers_known_parameters() -> None:
    truth = {"r": 0.5, "alpha": 4.0, "a": 0.8, "b": 2.5}
    x, t_x, age = simulate(20_000, 0.5, 4.0, 0.8, 2.5, age=40.0)
    found = bgnbd.fit(x, t_x, age)
    assert found.r == pytest.approx(truth["r"], rel=0.12)
    assert found.alpha == pytest.approx(truth["alpha"], rel=0.2)
    assert found.a == pytest.approx(truth["a"], rel=0.3)
    assert found.b == pytest.approx(truth["b"], rel=0.35)


def test_probabilities_follow_the_model() -> None:
    model = bgnbd.BGNBD(r=0.243, alpha=4.414, a=0.793, b=2.426)  # FHL 2005's CDNOW fit
    # no repeat purchase: certainly alive (dropout happens only after a purchase)
    assert model.p_alive(0, 0, 30)[()] == 1.0
    # the same purchases, the last one longer ago: less likely alive, and to buy again
    recent, old = model.p_alive([5, 5], [30, 10], [32, 32])
    assert 0 < old < recent < 1
    soon, later = model.p_any(39, [5, 5], [30, 10], [32, 32])
    assert later < soon
    # at least one purchase is at most P(alive), and grows with the period
    assert model.p_any(10, 5, 30, 32)[()] < model.p_any(39, 5, 30, 32)[()] < recent
    # the closed form agrees with a simulation of the next 39 weeks of alive customers
    rng = np.random.default_rng(2)
    rates = rng.gamma(model.r + 5, 1 / (model.alpha + 32), size=200_000)
    bought = rng.exponential(1 / rates) <= 39
    assert model.p_any(39, 5, 30, 32)[()] == pytest.approx(recent * bought.mean(), rel=0.01)


def test_impossible_data_is_refused() -> None:
    with pytest.raises(ValueError, match="t_x <= age"):
        bgnbd.fit([1], [5.0], [3.0])
