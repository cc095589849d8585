"""Impersonation: an admin, for a reason, briefly signed in as a user, on the record."""
