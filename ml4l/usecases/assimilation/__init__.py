"""Use case ``assimilation`` (seed 004): a VAE prior for daily T2m anomaly fields, fitted to sparse observations.

Modules: ``recipe`` (typed recipe), ``fields`` (synthetic fields, fields from the ERA store,
stations and pseudo-observations), ``vae`` (the convolutional VAE), ``analysis`` (MAP and
randomised-maximum-likelihood ensembles in latent space), ``baselines`` (climatology, PCA,
optimal interpolation), ``scores`` (RMSE, spread-skill, rank histogram, CRPS), ``pipeline``
(train, assimilate, write the analysis).
"""
