"""Segments: saved views of the Users list (a query and a sort), private or shared."""
