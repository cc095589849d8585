"""Exports: the users of a view, as CSV."""
