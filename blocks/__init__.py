"""Prefect blocks: configuration and secrets of the platform."""
