"""api/protocols."""
