"""Self-registration in the portal."""
