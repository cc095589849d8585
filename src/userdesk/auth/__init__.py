"""Authentication: passwords, sign-in sessions, CSRF tokens and API keys."""
