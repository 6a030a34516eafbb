"""Benchmarks (DESIGN §8): run by their own commands, never part of the test suite."""
