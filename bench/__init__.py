"""Benchmarks that print figures. ``python -m bench [name ...]`` runs bench/bench_<name>.py modules."""
