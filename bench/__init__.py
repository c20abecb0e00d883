"""Benchmarks and quality evaluations; each prints its figures and records them in
docs/benchmarks.md with the machine, date and commit."""
