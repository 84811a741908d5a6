"""Seed 000, ML4L: ERA5 features and MODIS Aqua LST joined into monthly Parquet, ML-ready sets, a model that beats
ERA's skin temperature, MLflow tracking and predictions. The ERA store, the join and the quality suites it runs on are
shared platform parts (``ml4l.era_store``, ``ml4l.join``, ``ml4l.quality``)."""
