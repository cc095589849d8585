"""The evaluation metrics agree with hand-computed values and with scikit-learn's."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as sk

from userdesk.churn import metrics


def test_auc_counts_each_pair_and_a_tie_as_half() -> None:
    # positives 0.8, 0.4; negatives 0.4, 0.1: pairs (0.8>0.4), (0.8>0.1), (0.4=0.4), (0.4>0.1)
    assert metrics.roc_auc([1, 1, 0, 0], [0.8, 0.4, 0.4, 0.1]) == pytest.approx(3.5 / 4)
    assert metrics.roc_auc([0, 1], [0.9, 0.1]) == 0.0
    assert metrics.roc_auc([0, 1, 0, 1], [0.5] * 4) == 0.5


def test_log_loss_brier_and_lift_by_hand() -> None:
    y, p = [1, 0, 1, 0], [0.9, 0.2, 0.6, 0.5]
    expected = -(math.log(0.9) + math.log(0.8) + math.log(0.6) + math.log(0.5)) / 4
    assert metrics.log_loss(y, p) == pytest.approx(expected)
    assert metrics.brier(y, p) == pytest.approx((0.01 + 0.04 + 0.16 + 0.25) / 4)
    # a certain wrong answer is clipped, not infinite
    assert math.isfinite(metrics.log_loss([1], [0.0]))
    # 20 users, 5 positives (base 0.25); the top 2 by probability are both positives: lift 4
    outcomes = [1, 1] + [0] * 15 + [1, 1, 1]
    scores = [0.99, 0.98] + [0.5] * 15 + [0.1, 0.1, 0.1]
    assert metrics.top_decile_lift(outcomes, scores) == pytest.approx(4.0)


def test_the_metrics_agree_with_scikit_learn_on_tied_random_data() -> None:
    rng = np.random.default_rng(5)
    p = np.round(rng.uniform(size=2_000), 2)  # many ties
    y = (rng.uniform(size=2_000) < p).astype(float)
    assert metrics.roc_auc(y, p) == pytest.approx(sk.roc_auc_score(y, p))
    assert metrics.log_loss(y, p) == pytest.approx(sk.log_loss(y, np.clip(p, 1e-15, 1 - 1e-15)))
    assert metrics.brier(y, p) == pytest.approx(sk.brier_score_loss(y, p))


def test_bad_input_is_refused_with_the_lengths() -> None:
    with pytest.raises(ValueError, match="not 2 and 3"):
        metrics.brier([1, 0], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="both outcomes"):
        metrics.roc_auc([1, 1], [0.1, 0.2])
