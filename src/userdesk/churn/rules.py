"""What a churn level is, and where an organization's levels start: the rules the console,
the API and the dashboard read without loading the model's libraries (numpy, the trees),
which only scoring needs."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from userdesk.organizations.models import Organization

HORIZON_DAYS = 30  # "churned": no sign-in and no event in the next 30 days
LEVELS = ("low", "medium", "high")
DEFAULT_CUTOFFS = (0.3, 0.6)  # probability from which a user is medium, high


def cutoffs_of(organization: Organization) -> tuple[float, float]:
    """The probabilities from which a user is at medium, and at high, risk."""
    medium, high = organization.settings.get("churn_cutoffs", DEFAULT_CUTOFFS)
    return float(medium), float(high)
