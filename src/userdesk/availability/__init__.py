"""Business hours, and whether a support agent is Online or Away by them."""
