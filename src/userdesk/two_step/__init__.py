"""Two-step verification: a time-based one-time password (RFC 6238) after the password."""
