"""Mail: the outbox of emails, drained by the worker (webhooks have their own tables)."""
