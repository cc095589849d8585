"""Webhooks: an organization's endpoints, the messages its changes make, their delivery."""
