"""Invitations: links that let a person set a password and join, tracked, resent, revoked."""
