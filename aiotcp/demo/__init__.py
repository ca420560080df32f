"""Demos: what aiotcp shows about TCP, runnable from ``python -m aiotcp demo``."""
