"""CloudWatch Logs: groups, streams, events, filter patterns, retention (served by api/services/logs.py)."""
