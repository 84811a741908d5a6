"""Prefect tasks: thin wrappers over :mod:`ml4l` that add retries, tags and artifacts."""
