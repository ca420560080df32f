"""Helpers shared by tests, benchmarks and demos: namespaces, impairment, captures."""
