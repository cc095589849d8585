"""Users: the people an organization manages."""
