"""How the tab figures are shown, and how the estimate's sample spreads over the ids."""

from userdesk.users.schemas import Count, UserCounts
from userdesk.users.service import _stride


def test_a_figure_says_whether_it_is_exact_at_least_or_an_estimate() -> None:
    assert Count(count=1234).label == "1,234"
    assert Count(count=10_000, capped=True).label == "10,000+"
    assert Count(count=61_000, estimated=True).label == "≈ 61,000"


def test_estimates_are_scaled_by_the_share_read_and_rounded_to_two_digits() -> None:
    counts = UserCounts.scaled(612, {"active": 600, "banned": 12}, 17, share=0.01)
    assert counts.all == Count(count=61_000, estimated=True)
    assert counts.statuses["banned"] == Count(count=1_200, estimated=True)
    assert counts.without_login == Count(count=1_700, estimated=True)
    # Never below what was found.
    assert UserCounts.scaled(30, {}, 0, share=0.99).all.count == 30


def test_a_figure_found_too_rarely_to_scale_says_at_least() -> None:
    """One user found in 1 % of the ids is not "about 100"."""
    counts = UserCounts.scaled(1, {"active": 1, "banned": 0}, 0, share=0.01)
    assert counts.all == Count(count=1, capped=True)
    assert counts.all.label == "1+"
    assert counts.statuses["banned"].label == "0+"
    assert UserCounts.exact(1, {"active": 1}, 0).all.label == "1"


def test_the_sample_visits_every_block_once_spreading_the_first_ones() -> None:
    for blocks in (1, 2, 3, 7, 8, 1000, 1024):
        stride = _stride(blocks)
        order = [n * stride % blocks for n in range(blocks)]
        assert sorted(order) == list(range(blocks))
    stride = _stride(1024)
    first = sorted(n * stride % 1024 for n in range(8))
    assert max(b - a for a, b in zip([0, *first], [*first, 1024], strict=True)) <= 256
