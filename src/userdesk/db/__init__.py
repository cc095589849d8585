"""The database: engine, sessions, base classes and migrations."""
