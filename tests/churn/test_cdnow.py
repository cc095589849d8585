"""The CDNOW evaluation on the real data file (the eval extra, which `make test`
installs): the BG/NBD baseline finds the published parameters, and our cross-fitted
model beats it and the issue's figures, for several fold splits."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from userdesk.churn import cdnow
from userdesk.cli import app


@pytest.fixture(scope="module")
def evaluation() -> cdnow.Evaluation:
    try:
        cdnow.data_file()
    except cdnow.DatasetMissing as exc:  # make test installs it: a missing file is a failure
        pytest.fail(f"{exc} (make test installs the eval extra)")
    return cdnow.evaluate()


def test_the_data_is_read_one_transaction_per_customer_and_day() -> None:
    transactions = cdnow.load()
    pairs = set(zip(transactions.customer.tolist(), transactions.day.tolist(), strict=True))
    assert len(pairs) == len(transactions.day)  # several lines on one day became one
    assert len(set(transactions.customer.tolist())) == 2_357
    assert len(transactions.day) < 6_919  # the file's lines: some days had several


def test_bgnbd_finds_the_published_parameters(evaluation: cdnow.Evaluation) -> None:
    found = evaluation.params  # Fader, Hardie & Lee (2005): 0.243, 4.414, 0.793, 2.426
    assert (found.r, found.alpha, found.a, found.b) == pytest.approx(
        (0.243, 4.414, 0.793, 2.426), abs=0.01
    )
    assert evaluation.baseline["base_rate"] == pytest.approx(0.29, abs=0.01)
    assert 0.7 < evaluation.baseline["auc"] < 0.8
    assert evaluation.baseline["log_loss"] < 0.55


def test_our_model_beats_the_baseline_and_the_figures(evaluation: cdnow.Evaluation) -> None:
    ours, baseline = evaluation.ours, evaluation.baseline
    assert ours["auc"] > baseline["auc"] + 0.02
    assert ours["log_loss"] < baseline["log_loss"] - 0.02
    assert ours["brier"] < baseline["brier"] - 0.005
    # the figures; measured 0.7822, 0.4794, 0.1540, 2.760 (seeds 1-5)
    assert ours["auc"] > 0.78
    assert ours["log_loss"] < 0.483
    assert ours["brier"] < 0.155
    assert ours["lift"] > 2.74
    assert "cross-fitted" in evaluation.note


@pytest.mark.parametrize("seeds", [(6, 7, 8, 9, 10), (11, 12, 13, 14, 15), (16, 17, 18, 19, 20)])
def test_the_figures_hold_for_other_fold_splits(seeds: tuple[int, ...]) -> None:
    """The figures are not one lucky set of splits': other seeds beat them too (measured
    over seeds 1-25 in groups of five: AUC 0.7817-0.7826, log loss 0.4791-0.4799, Brier
    0.1539-0.1542, lift 2.760-2.774)."""
    ours = cdnow.evaluate(seeds=seeds).ours
    assert ours["auc"] > 0.78
    assert ours["log_loss"] < 0.483
    assert ours["brier"] < 0.155
    assert ours["lift"] > 2.74


def test_the_command_prints_both_models() -> None:
    result = CliRunner().invoke(app, ["churn", "evaluate", "--dataset", "cdnow"])
    assert result.exit_code == 0, result.output
    assert "BG/NBD (baseline)" in result.output
    assert "cross-fitted" in result.output
    refused = CliRunner().invoke(app, ["churn", "evaluate", "--dataset", "nope"])
    assert refused.exit_code == 2
