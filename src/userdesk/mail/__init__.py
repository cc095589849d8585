"""Mail: the outbox of emails and webhooks, drained by the worker."""
