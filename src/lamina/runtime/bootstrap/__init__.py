"""runtime/bootstrap."""
