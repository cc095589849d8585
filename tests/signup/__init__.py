"""Tests of self-registration."""
