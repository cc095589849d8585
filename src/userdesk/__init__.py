"""Userdesk: a self-hostable back office for managing the users of a product."""

__version__ = "0.1.0"
