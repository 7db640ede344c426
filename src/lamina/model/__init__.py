"""Typed records shared by the core: functions, code packages, invocations."""
