"""One folder per use case: its typed recipe, sample-data generator, dataset, model and flow logic.

The LST pipeline of seed 000 is the platform's core (``ml4l`` top-level modules); the other use
cases (``gapfill``, ``downscale``, ``tiles``, ``assimilation``) build on the shared parts in
``ml4l.ml`` (splits, statistics, metrics, trainer, tracking) and on the lake.
"""
