"""Lamina benchmarks: `make bench` (bench/run.py) writes docs/benchmarks.md."""
