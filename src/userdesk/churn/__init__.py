"""Churn prediction per user: features, a score with its reasons, levels, history."""
