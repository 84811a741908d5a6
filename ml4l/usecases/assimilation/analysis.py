"""Assimilation in the VAE's latent space: the MAP estimate and a randomised-maximum-likelihood ensemble.

Each member ``k`` of day ``d`` minimises, over the latent vector ``z``::

    |z - zeta_k|^2 / 2 + sum_j (H g(z) - y_dj - eps_kj)^2 / (2 sigma^2)

with ``zeta_k ~ N(0, I)`` and ``eps_kj ~ N(0, sigma^2)`` (for the MAP estimate both are 0), where
``g`` is the decoder, ``H`` the bilinear interpolation to the stations and ``sigma^2 = sigma_o^2 + (f s)^2``
adds the generator's own error ``s`` times a factor ``f`` chosen on validation days (the error
of nearby stations is correlated, which independent terms undercount). The observations are perturbed
with the same ``sigma`` as the likelihood uses, as randomised maximum likelihood requires. The MAP
comes first; each member then starts from its own point, its exact solution for the generator
linearised at the MAP (a draw of the Laplace posterior ``N(u_map, (I + J'J / sigma^2)^-1)``), and
refines it on the full objective, so few steps converge. The members' deviations from their mean are
then scaled by ``lambda`` (multiplicative inflation, Anderson & Anderson 1999), fitted on validation
days so that the rank histogram is flattest: the raw spread is informative (the error grows in step
with it) but uniformly too small, because the generator's error is correlated in space. All days
and members are optimised together as one batch; each day draws its perturbations from its own
seed. ``sigma`` is in standardised units: each day is divided by its seasonal scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ml4l.usecases.assimilation.recipe import AnalysisConfig

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class LatentPrior:
    """A Gaussian fitted to the VAE's aggregate posterior on the training fields: ``z = mean + factor @ u``, ``u ~ N(0, I)``.

    A trained VAE's encodings are not exactly N(0, I) (unused dimensions, variances off 1), so the
    search runs in the whitened ``u`` where the prior ``|u|^2 / 2`` is right (ex-post density
    estimation, Ghosh et al. 2020). Its covariance is ``Cov(mu) + mean(sigma^2)`` over the training set.
    """

    mean: FloatArray
    factor: FloatArray

    @classmethod
    def fit(cls, mu: FloatArray, log_var: FloatArray) -> LatentPrior:
        covariance = np.cov(mu, rowvar=False) + np.diag(np.exp(log_var).mean(axis=0))
        return cls(mu.mean(axis=0), np.asarray(np.linalg.cholesky(covariance + 1e-9 * np.eye(len(covariance))), dtype=np.float64))

    @property
    def size(self) -> int:
        return len(self.mean)


@dataclass(frozen=True)
class Ensemble:
    """Members ``(days, members, ny, nx)`` in K, their mean and standard deviation (ddof 1)."""

    members: FloatArray

    @property
    def mean(self) -> FloatArray:
        return self.members.mean(axis=1)

    @property
    def spread(self) -> FloatArray:
        return self.members.std(axis=1, ddof=1)


def _at_stations(decoder: Any, prior: LatentPrior, index: npt.NDArray[np.int64], weights: FloatArray) -> Any:
    """``u -> H g(z(u))`` as a TensorFlow function of whitened latent vectors ``(B, latent)``: ``(B, points)``."""
    import tensorflow as tf

    index_t = tf.constant(index, dtype=tf.int32)
    weights_t = tf.constant(weights, dtype=tf.float32)
    centre = tf.constant(prior.mean[None, :], dtype=tf.float32)
    factor = tf.constant(prior.factor.T, dtype=tf.float32)

    def observe(u: Any) -> Any:
        fields = tf.reshape(decoder(centre + tf.matmul(u, factor), training=False), (tf.shape(u)[0], -1))
        return tf.reduce_sum(tf.gather(fields, index_t, axis=1) * weights_t, axis=-1)

    return observe


def fit_latent(
    decoder: Any,
    prior: LatentPrior,
    index: npt.NDArray[np.int64],
    weights: FloatArray,
    targets: FloatArray,
    sigma: float | FloatArray,
    prior_mean: FloatArray,
    iterations: int,
    learning_rate: float,
    start: FloatArray | None = None,
) -> FloatArray:
    """Minimise ``|u - prior_mean|^2 / 2 + |H g(z(u)) - targets|^2 / (2 sigma^2)`` for a batch ``(B, points)``.

    ``u`` is the whitened latent vector of ``prior``; ``index``/``weights`` ``(points, 4)`` are ``H``;
    ``sigma`` (a scalar or one per row) and ``targets`` are in the decoder's units. Adam from ``start``
    (default ``prior_mean``); returns ``u``. Rows are independent (Adam is elementwise), so one batch holds many problems.
    """
    import tensorflow as tf

    observe = _at_stations(decoder, prior, index, weights)
    targets_t = tf.constant(targets, dtype=tf.float32)
    prior_t = tf.constant(prior_mean, dtype=tf.float32)
    z = tf.Variable(tf.constant(prior_mean if start is None else start, dtype=tf.float32))
    optimizer = tf.keras.optimizers.Adam(learning_rate=learning_rate)
    inverse_variance = tf.constant(np.broadcast_to(1.0 / np.square(sigma), (len(targets),))[:, None], dtype=tf.float32)

    @tf.function
    def step() -> Any:
        with tf.GradientTape() as tape:
            value = 0.5 * tf.reduce_sum(tf.square(z - prior_t)) + 0.5 * tf.reduce_sum(inverse_variance * tf.square(observe(z) - targets_t))
        optimizer.apply_gradients([(tape.gradient(value, z), z)])
        return value

    for _ in range(iterations):
        step()
    return z.numpy().astype(np.float64)


def station_jacobian(decoder: Any, prior: LatentPrior, index: npt.NDArray[np.int64], weights: FloatArray, u: FloatArray) -> FloatArray:
    """``d H g(z(u)) / du`` at each row of ``u``: ``(B, points, latent)``."""
    import tensorflow as tf

    observe = _at_stations(decoder, prior, index, weights)
    u_t = tf.constant(u, dtype=tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(u_t)
        values = observe(u_t)
    return np.asarray(tape.batch_jacobian(values, u_t), dtype=np.float64)


def decode(decoder: Any, prior: LatentPrior, u: FloatArray, batch: int = 4096) -> FloatArray:
    """Fields ``(B, ny, nx)`` from whitened latent vectors, in the decoder's units."""
    z = (prior.mean + u @ prior.factor.T).astype(np.float32)
    parts = [np.asarray(decoder(z[i : i + batch], training=False))[..., 0] for i in range(0, len(z), batch)]
    return np.concatenate(parts).astype(np.float64)


def day_seeds(seed: int, times: npt.ArrayLike) -> list[np.random.SeedSequence]:
    """One seed per day from ``seed`` and the date, so a day's members do not depend on the other days requested."""
    days = np.asarray(times, dtype="datetime64[D]").astype(np.int64)
    return [np.random.SeedSequence([seed, int(day) + 1_000_000]) for day in days]


def ensemble_fields(
    decoder: Any,
    prior: LatentPrior,
    index: npt.NDArray[np.int64],
    weights: FloatArray,
    observations: FloatArray,
    sigma_o: float,
    error_std: float,
    scale: FloatArray,
    members: int,
    iterations: int,
    learning_rate: float,
    member_iterations: int,
    member_learning_rate: float,
    seeds: Sequence[np.random.SeedSequence],
) -> FloatArray:
    """The members' decoded fields ``(days, members, ny, nx)`` in K, before inflation.

    ``observations`` ``(days, points)`` and ``sigma_o`` are in K, ``scale`` ``(days,)`` converts each day
    from K to decoder units, ``error_std`` (the inflated generator error) is in decoder units; ``seeds``
    has one entry per day (:func:`day_seeds`). The MAP of each day comes
    first (``iterations`` Adam steps from the origin); each member then starts from its RML solution
    for the generator linearised at the MAP (a draw of the Laplace posterior) and takes
    ``member_iterations`` Adam steps on its own objective.
    """
    days, points = observations.shape
    if len(seeds) != days:
        raise ValueError(f"{len(seeds)} seeds for {days} days")
    scale = np.broadcast_to(np.asarray(scale, dtype=np.float64), (days,))
    sigma = np.hypot(sigma_o / scale, error_std)  # (days,)
    y = observations / scale[:, None]
    u_map = fit_latent(decoder, prior, index, weights, y, sigma, np.zeros((days, prior.size)), iterations, learning_rate)
    jacobian = station_jacobian(decoder, prior, index, weights, u_map) / sigma[:, None, None]  # (days, points, latent), whitened
    covariance = np.linalg.inv(np.eye(prior.size) + np.einsum("dpi,dpj->dij", jacobian, jacobian))
    generators = [np.random.default_rng(seed) for seed in seeds]
    zeta = np.stack([rng.standard_normal((members, prior.size)) for rng in generators])
    eps = np.stack([rng.normal(0.0, 1.0, (members, points)) for rng in generators])  # in units of sigma
    starts = u_map[:, None, :] + np.einsum("dij,dmj->dmi", covariance, zeta + np.einsum("dpi,dmp->dmi", jacobian, eps))
    u = fit_latent(
        decoder,
        prior,
        index,
        weights,
        (y[:, None, :] + sigma[:, None, None] * eps).reshape(days * members, points),
        np.repeat(sigma, members),
        zeta.reshape(days * members, prior.size),
        member_iterations,
        member_learning_rate,
        start=starts.reshape(days * members, prior.size),
    )
    return decode(decoder, prior, u).reshape(days, members, *decoder.output_shape[1:3]) * scale[:, None, None, None]


def inflate(fields: FloatArray, factor: float) -> FloatArray:
    """Members ``(cases, members, ...)`` with their deviations from the ensemble mean scaled by ``factor``."""
    mean = fields.mean(axis=1, keepdims=True)
    return mean + factor * (fields - mean)


def assimilate(
    decoder: Any,
    prior: LatentPrior,
    index: npt.NDArray[np.int64],
    weights: FloatArray,
    observations: FloatArray,
    sigma_o: float,
    generator_std: float,
    scale: FloatArray,
    config: AnalysisConfig,
    seeds: Sequence[np.random.SeedSequence],
    error_inflation: float = 1.0,
    spread_inflation: float = 1.0,
) -> Ensemble:
    """The ensemble for days of observations ``(days, points)`` in K; ``scale`` ``(days,)`` converts K to decoder units.

    ``error_inflation`` scales the generator error ``s`` in the likelihood (and so in the observation
    perturbations); ``spread_inflation`` scales the members' deviations from their mean. Both are
    chosen on validation days (``pipeline.calibrate``).
    """
    fields = ensemble_fields(
        decoder,
        prior,
        index,
        weights,
        observations,
        sigma_o,
        error_inflation * generator_std,
        scale,
        config.members,
        config.iterations,
        config.learning_rate,
        config.member_iterations,
        config.member_learning_rate,
        seeds,
    )
    return Ensemble(inflate(fields, spread_inflation))


def best_fit(
    decoder: Any, prior: LatentPrior, truth: FloatArray, scale: FloatArray, generator_std: float, iterations: int, learning_rate: float
) -> FloatArray:
    """The oracle: the generator's best latent fit (MAP with the prior) to the full true fields ``(days, ny, nx)``, in K."""
    days, ny, nx = truth.shape
    cells = ny * nx
    index = np.repeat(np.arange(cells)[:, None], 4, axis=1)
    weights = np.tile([1.0, 0.0, 0.0, 0.0], (cells, 1))
    u = fit_latent(
        decoder,
        prior,
        index,
        weights,
        truth.reshape(days, cells) / scale[:, None],
        generator_std,
        np.zeros((days, prior.size)),
        iterations,
        learning_rate,
    )
    return decode(decoder, prior, u) * scale[:, None, None]
