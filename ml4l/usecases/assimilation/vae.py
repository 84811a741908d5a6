"""A convolutional variational autoencoder for anomaly fields, in Keras 3.

The decoder has a learned output variance (a "calibrated decoder", Rybkin et al. 2021): the
loss per field is ``npix/2 log s^2 + |x - g(z)|^2 / (2 s^2) + beta KL(q(z|x) || N(0, I))``. The
learned ``s`` is the generator's own error, which the ensemble adds to its members so that
their spread covers what the latent space cannot represent.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ml4l.ml.trainer import import_keras
from ml4l.usecases.assimilation.recipe import VAEConfig

DOWNSAMPLING = 8  # three stride-2 convolutions


def _layers() -> Any:
    keras = import_keras()
    ops = keras.ops
    layer: Any = keras.layers.Layer  # Keras is imported at run time, by import_keras

    class Sampling(layer):
        """z = mu + exp(log_var / 2) * eps, adding beta * KL to the model's loss."""

        def __init__(self, beta: float, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.beta = beta
            self.seed = keras.random.SeedGenerator(0)

        def call(self, inputs: Any) -> Any:
            mu, log_var = inputs
            kl = -0.5 * ops.sum(1 + log_var - ops.square(mu) - ops.exp(log_var), axis=-1)
            self.add_loss(self.beta * ops.mean(kl))
            return mu + ops.exp(0.5 * log_var) * keras.random.normal(ops.shape(mu), seed=self.seed)

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "beta": self.beta}

    class GaussianLikelihood(layer):
        """Adds the negative log-likelihood of ``x`` under N(g(z), s^2) with a learned log s^2."""

        def build(self, input_shape: Any) -> None:
            self.log_var = self.add_weight(name="log_var", shape=(), initializer="zeros")

        def call(self, inputs: Any) -> Any:
            x, reconstruction = inputs
            pixels = float(np.prod(x.shape[1:]))
            squared = ops.sum(ops.square(x - reconstruction), axis=(1, 2, 3))
            self.add_loss(ops.mean(0.5 * pixels * self.log_var + 0.5 * squared * ops.exp(-self.log_var)))
            return reconstruction

    return Sampling, GaussianLikelihood


def build_vae(shape: tuple[int, int], config: VAEConfig) -> tuple[Any, Any]:
    """The trainable VAE (input: standardised fields ``(n, ny, nx, 1)``) and its decoder ``z -> field``."""
    keras = import_keras()
    ny, nx = shape
    if ny % DOWNSAMPLING or nx % DOWNSAMPLING:
        raise ValueError(f"the grid {ny} x {nx} must be a multiple of {DOWNSAMPLING} in each direction")
    Sampling, GaussianLikelihood = _layers()
    fields = keras.Input(shape=(ny, nx, 1), name="field")
    x = fields
    for filters in config.filters:
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", activation="gelu")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(config.dense, activation="gelu")(x)
    mu = keras.layers.Dense(config.latent, name="mu")(x)
    log_var = keras.layers.Dense(
        config.latent, name="log_var", kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(-2.0)
    )(x)
    z = Sampling(config.beta, name="z")([mu, log_var])

    latent = keras.Input(shape=(config.latent,), name="latent")
    y = keras.layers.Dense(config.dense, activation="gelu")(latent)
    deepest = config.filters[-1]
    y = keras.layers.Dense((ny // 8) * (nx // 8) * deepest, activation="gelu")(y)
    y = keras.layers.Reshape((ny // 8, nx // 8, deepest))(y)
    for filters in reversed(config.filters):
        y = keras.layers.Conv2DTranspose(filters, 3, strides=2, padding="same", activation="gelu")(y)
    y = keras.layers.Conv2D(1, 3, padding="same", name="field_out")(y)
    decoder = keras.Model(latent, y, name="decoder")

    reconstruction = GaussianLikelihood(name="likelihood")([fields, decoder(z)])
    vae = keras.Model(fields, reconstruction, name="vae")
    vae.compile(optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate))
    return vae, decoder


def encode(vae: Any, fields: np.ndarray, batch: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means and log-variances ``(n, latent)`` of standardised fields ``(n, ny, nx)``."""
    keras = import_keras()
    encoder = keras.Model(vae.inputs, [vae.get_layer("mu").output, vae.get_layer("log_var").output])
    mu, log_var = encoder.predict(fields[..., None].astype(np.float32), batch_size=batch, verbose=0)
    return np.asarray(mu, dtype=np.float64), np.asarray(log_var, dtype=np.float64)


def decoder_std(vae: Any) -> float:
    """The learned generator error ``s`` (standardised units)."""
    layer = vae.get_layer("likelihood")
    return float(np.exp(0.5 * float(layer.log_var.numpy())))
