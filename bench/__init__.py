"""Lamina benchmarks: `./dev bench` (bench/run.py) writes docs/benchmarks.md."""
