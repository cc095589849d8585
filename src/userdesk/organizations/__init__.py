"""Organizations: the tenants every row belongs to."""
