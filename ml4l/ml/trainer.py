"""The trainer contract: ``fit(build, train, validation, config)`` returns a model.

Only the validation set picks the checkpoint (early stopping restores the weights of the
best validation loss) and the learning-rate schedule; a test set is never an argument, so it
cannot influence training. Every use case trains its Keras models through :func:`fit`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

XY = tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]


def import_keras() -> Any:
    """Keras 3, on ``$KERAS_BACKEND`` when set, else TensorFlow (set here, where Keras is imported)."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    return keras


@dataclass(frozen=True)
class FitConfig:
    """Optimisation settings; every field is logged as an MLflow param by the callers."""

    epochs: int = 100
    batch_size: int = 1024
    learning_rate: float = 3e-4
    patience: int = 20
    seed: int = 0
    loss: str = "mse"
    halve_every: int | None = None
    """Halve the learning rate every this many epochs (seed 002's schedule); ``None`` keeps it constant."""
    verbose: int = 0


@dataclass
class FitResult:
    model: Any
    history: dict[str, list[float]] = field(default_factory=dict)
    best_epoch: int = 0
    """0-based epoch whose validation loss was lowest: the weights returned."""


def fit(build: Callable[[], Any], train: XY, validation: XY, config: FitConfig = FitConfig()) -> FitResult:
    """Build a model with fixed seeds, train it on ``train`` and return the best epoch on ``validation``."""
    keras = import_keras()
    keras.utils.set_random_seed(config.seed)
    model = build()
    if not model.compiled:
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate), loss=config.loss)
    callbacks: list[Any] = [keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience, restore_best_weights=True)]
    if config.halve_every:
        every = config.halve_every
        callbacks.append(keras.callbacks.LearningRateScheduler(lambda epoch, rate: rate / 2 if epoch and epoch % every == 0 else rate))
    history = model.fit(
        train[0],
        train[1],
        validation_data=validation,
        epochs=config.epochs,
        batch_size=config.batch_size,
        shuffle=True,
        callbacks=callbacks,
        verbose=config.verbose,
    )
    losses = {k: [float(v) for v in values] for k, values in history.history.items()}
    best = int(np.argmin(losses["val_loss"])) if losses.get("val_loss") else len(losses.get("loss", [0])) - 1
    return FitResult(model=model, history=losses, best_epoch=best)


def mlp(n_inputs: int, hidden: tuple[int, ...], *, batch_norm: bool = False, dropout: float = 0.0, outputs: int = 1) -> Any:
    """A plain MLP (Dense, optional batch norm before the ReLU, optional dropout) with a linear output."""
    keras = import_keras()
    inputs = keras.Input(shape=(n_inputs,), name="features")
    x = inputs
    for width in hidden:
        x = keras.layers.Dense(width, use_bias=not batch_norm)(x)
        if batch_norm:
            x = keras.layers.BatchNormalization()(x)
        x = keras.layers.Activation("relu")(x)
        if dropout:
            x = keras.layers.Dropout(dropout)(x)
    return keras.Model(inputs, keras.layers.Dense(outputs, name="output")(x))
