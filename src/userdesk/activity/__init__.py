"""Activity: what users did in the product (sign-ins and events posted by the host)."""
