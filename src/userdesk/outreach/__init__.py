"""Outreach: a support agent asked to contact a user at risk of churning."""
