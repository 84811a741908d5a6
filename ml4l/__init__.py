"""ml4l: machine learning for land-surface temperature. The science library; it never imports Prefect."""

__version__ = "0.1.0"
