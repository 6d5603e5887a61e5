"""Benchmarks of ionet: measurement code behind ``ionet bench ...`` and ``bench/*.py``."""
