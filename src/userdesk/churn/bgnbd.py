"""The BG/NBD model of repeat buying (Fader, Hardie & Lee 2005), our own implementation.

While alive, a customer buys at a Poisson rate lambda ~ Gamma(r, alpha); right after each
purchase they drop out with probability p ~ Beta(a, b). From each customer's frequency x
(repeat purchases), recency t_x (time of the last purchase since the first) and age T
(time since the first purchase) we fit r, alpha, a and b by maximum likelihood, then give
P(alive) and the chance of at least one purchase in the next t periods.

That chance: a customer alive at T has lambda ~ Gamma(r + x, alpha + T) and buys nothing
in (T, T + t] with probability E[exp(-lambda t)] = ((alpha + T) / (alpha + T + t))^(r + x);
a dead one buys nothing; and since dropout happens only right after a purchase, nobody
dies in (T, T + t] without buying first. So
P(at least one) = P(alive) * (1 - ((alpha + T) / (alpha + T + t))^(r + x)).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, hyp2f1

from userdesk.churn.features import Floats


@dataclass(frozen=True)
class BGNBD:
    r: float
    alpha: float
    a: float
    b: float

    def p_alive(self, x: Any, t_x: Any, age: Any) -> Floats:
        """The chance that each customer is still alive at AGE (its age)."""
        x, t_x, age = _arrays(x, t_x, age)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            log_ratio = (self.r + x) * (np.log(self.alpha + age) - np.log(self.alpha + t_x))
            odds = np.where(
                x > 0,
                np.exp(np.log(self.a) - np.log(np.fmax(self.b + x - 1, 1e-300)) + log_ratio),
                0.0,
            )
        result: Floats = 1.0 / (1.0 + odds)
        return result

    def p_any(self, t: float, x: Any, t_x: Any, age: Any) -> Floats:
        """The chance of at least one purchase in the t periods after AGE (the paper's T)."""
        x, t_x, age = _arrays(x, t_x, age)
        none_if_alive = np.exp(
            (self.r + x) * (np.log(self.alpha + age) - np.log(self.alpha + age + t))
        )
        result: Floats = self.p_alive(x, t_x, age) * (1.0 - none_if_alive)
        return result

    def expected(self, t: float, x: Any, t_x: Any, age: Any) -> Floats:
        """The expected number of purchases in the t periods after AGE (FHL eq. 10)."""

        x, t_x, age = _arrays(x, t_x, age)
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        z = t / (alpha + age + t)
        head = (a + b + x - 1) / (a - 1)
        tail = 1 - ((alpha + age) / (alpha + age + t)) ** (r + x) * hyp2f1(
            r + x, b + x, a + b + x - 1, z
        )
        result: Floats = head * tail * self.p_alive(x, t_x, age)
        return result


def _arrays(*columns: Any) -> list[Floats]:
    return [np.asarray(c, dtype=np.float64) for c in columns]


def log_likelihood(params: Any, x: Any, t_x: Any, age: Any) -> Floats:
    """Each customer's log-likelihood under PARAMS = (r, alpha, a, b)."""
    r, alpha, a, b = (float(v) for v in params)
    x, t_x, age = _arrays(x, t_x, age)
    head = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    alive = betaln(a, b + x) - betaln(a, b) - (r + x) * np.log(alpha + age)
    with np.errstate(divide="ignore", invalid="ignore"):
        gone = np.where(
            x > 0,
            betaln(a + 1, np.fmax(b + x - 1, 1e-12)) - betaln(a, b) - (r + x) * np.log(alpha + t_x),
            -np.inf,
        )
    result: Floats = head + np.logaddexp(alive, gone)
    return result


def fit(x: Any, t_x: Any, age: Any, penalty: float = 0.0) -> BGNBD:
    """The maximum-likelihood r, alpha, a, b, found in log space (all positive) by
    L-BFGS-B from a few starts (PENALTY: an optional small L2 pull on the logs).

    Raises:
        ValueError: no customers, or columns of different lengths or impossible values.
    """
    x, t_x, age = _arrays(x, t_x, age)
    if not len(x) or not (len(x) == len(t_x) == len(age)):
        raise ValueError(f"need customers, got {len(x)}, {len(t_x)}, {len(age)} values")
    if (x < 0).any() or (t_x < 0).any() or (t_x > age + 1e-9).any():
        raise ValueError("need 0 <= x and 0 <= t_x <= age")
    scale = max(float(np.mean(age)), 1e-9)  # fit in units of the mean age: better conditioned

    def loss(logs: Floats) -> float:
        params = np.exp(np.clip(logs, -30, 30))
        total = -float(np.sum(log_likelihood(params, x, t_x / scale, age / scale))) / len(x)
        return total + penalty * float(np.sum(logs**2))

    best: Any = None
    for start in ([0.0, 0.0, 0.0, 0.0], [-1.0, -2.0, -0.5, 0.5], [1.0, 1.0, 1.0, 1.0]):
        found = minimize(loss, np.array(start), method="L-BFGS-B")
        if best is None or found.fun < best.fun:
            best = found
    r, alpha, a, b = np.exp(best.x)
    return BGNBD(float(r), float(alpha * scale), float(a), float(b))
