"""Downscaling (seed 002): 1 km LST anomalies from topography in 9 x 9 patches.

``recipe`` (typed recipe, ``kind: downscale``), ``sample`` (inputs in the seed's forms from a
documented truth), ``inputs`` (read and check), ``patches`` (vectorised extraction), ``dataset``
(shards, leak-free splits, train-only scaling), ``model`` (the seed's MLP, baselines, oracle, MLflow),
``layout`` (its lake paths). Flows: ``flows/downscale.py``.
"""
