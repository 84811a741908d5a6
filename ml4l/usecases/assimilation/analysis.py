"""Assimilation in the VAE's latent space: the MAP estimate and a randomised-maximum-likelihood ensemble.

Each member ``k`` of day ``d`` minimises, over the latent vector ``z``::

    |z - zeta_k|^2 / 2 + sum_j (H g(z) - y_dj - eps_kj)^2 / (2 sigma^2)

with ``zeta_k ~ N(0, I)`` and ``eps_kj ~ N(0, sigma_o^2)`` (for the MAP estimate both are 0), where
``g`` is the decoder, ``H`` the bilinear interpolation to the stations and ``sigma^2 = sigma_o^2 + s^2``
adds the generator's own error ``s``. Members start from different points (their ``zeta_k``). The
member fields get the generator error ``s`` as independent noise, so the spread includes what the
latent space cannot represent. All days and members are optimised together as one batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

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


def fit_latent(
    decoder: Any,
    prior: LatentPrior,
    index: npt.NDArray[np.int64],
    weights: FloatArray,
    targets: FloatArray,
    sigma: float,
    prior_mean: FloatArray,
    iterations: int,
    learning_rate: float,
) -> FloatArray:
    """Minimise ``|u - prior_mean|^2 / 2 + |H g(z(u)) - targets|^2 / (2 sigma^2)`` for a batch ``(B, points)``.

    ``u`` is the whitened latent vector of ``prior``; ``index``/``weights`` ``(points, 4)`` are ``H``;
    ``sigma`` and ``targets`` are in the decoder's units. Adam from ``u = prior_mean``; returns ``u``.
    """
    import tensorflow as tf

    index_t = tf.constant(index, dtype=tf.int32)
    weights_t = tf.constant(weights, dtype=tf.float32)
    targets_t = tf.constant(targets, dtype=tf.float32)
    prior_t = tf.constant(prior_mean, dtype=tf.float32)
    centre = tf.constant(prior.mean[None, :], dtype=tf.float32)
    factor = tf.constant(prior.factor.T, dtype=tf.float32)
    z = tf.Variable(prior_t)
    optimizer = tf.keras.optimizers.Adam(learning_rate=learning_rate)
    inverse_variance = 1.0 / (sigma * sigma)

    def loss() -> Any:
        fields = tf.reshape(decoder(centre + tf.matmul(z, factor), training=False), (tf.shape(z)[0], -1))
        at_stations = tf.reduce_sum(tf.gather(fields, index_t, axis=1) * weights_t, axis=-1)
        return 0.5 * tf.reduce_sum(tf.square(z - prior_t)) + 0.5 * inverse_variance * tf.reduce_sum(tf.square(at_stations - targets_t))

    @tf.function
    def step() -> Any:
        with tf.GradientTape() as tape:
            value = loss()
        optimizer.apply_gradients([(tape.gradient(value, z), z)])
        return value

    for _ in range(iterations):
        step()
    return z.numpy().astype(np.float64)


def decode(decoder: Any, prior: LatentPrior, u: FloatArray, batch: int = 4096) -> FloatArray:
    """Fields ``(B, ny, nx)`` from whitened latent vectors, in the decoder's units."""
    z = (prior.mean + u @ prior.factor.T).astype(np.float32)
    parts = [np.asarray(decoder(z[i : i + batch], training=False))[..., 0] for i in range(0, len(z), batch)]
    return np.concatenate(parts).astype(np.float64)


def map_estimate(
    decoder: Any,
    prior: LatentPrior,
    index: npt.NDArray[np.int64],
    weights: FloatArray,
    observations: FloatArray,
    sigma_o: float,
    error_std: float,
    scale: float,
    iterations: int,
    learning_rate: float,
) -> FloatArray:
    """The MAP fields ``(days, ny, nx)`` in K for observations ``(days, points)`` in K."""
    sigma = float(np.hypot(sigma_o / scale, error_std))
    u = fit_latent(
        decoder, prior, index, weights, observations / scale, sigma, np.zeros((len(observations), prior.size)), iterations, learning_rate
    )
    return decode(decoder, prior, u) * scale


def assimilate(
    decoder: Any,
    prior: LatentPrior,
    index: npt.NDArray[np.int64],
    weights: FloatArray,
    observations: FloatArray,
    sigma_o: float,
    generator_std: float,
    scale: float,
    members: int,
    iterations: int,
    learning_rate: float,
    seed: int,
    error_inflation: float = 1.0,
) -> Ensemble:
    """The ensemble for days of observations ``(days, points)`` in K; ``scale`` converts K to decoder units.

    ``error_inflation`` scales the generator error in the likelihood only (chosen on validation days);
    the members' added noise stays the generator's own error.
    """
    rng = np.random.default_rng(seed)
    days, points = observations.shape
    zeta = rng.standard_normal((days, members, prior.size))
    eps = rng.normal(0.0, sigma_o, (days, members, points))
    targets = ((observations[:, None, :] + eps) / scale).reshape(days * members, points)
    sigma = float(np.hypot(sigma_o / scale, error_inflation * generator_std))
    u = fit_latent(decoder, prior, index, weights, targets, sigma, zeta.reshape(days * members, prior.size), iterations, learning_rate)
    fields = decode(decoder, prior, u)
    fields = fields + rng.normal(0.0, generator_std, fields.shape)
    return Ensemble(fields.reshape(days, members, *fields.shape[1:]) * scale)


def best_fit(
    decoder: Any, prior: LatentPrior, truth: FloatArray, scale: float, generator_std: float, iterations: int, learning_rate: float
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
        truth.reshape(days, cells) / scale,
        generator_std,
        np.zeros((days, prior.size)),
        iterations,
        learning_rate,
    )
    return decode(decoder, prior, u) * scale
