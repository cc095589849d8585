"""Audit: the append-only, hash-chained log of every admin action."""
