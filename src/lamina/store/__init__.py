"""Durable state behind small interfaces; `sqlite/` is the embedded implementation."""
