"""The console: the back office admins work in."""
