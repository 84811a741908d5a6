"""Prefect flows: compositions of :mod:`tasks`."""
