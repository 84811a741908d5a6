"""Training on an ML-ready set: a Keras MLP (seed 000's), the ERA skt and linear baselines, MLflow tracking.

The model is written against Keras 3's backend-neutral API, so it runs on TensorFlow
(the default here) and on JAX (``KERAS_BACKEND=jax``). Metrics are in K on the test
split: ``test_mae``, ``test_rmse``, ``test_bias`` (prediction minus MODIS) and the
same for the baselines ``baseline_skt_*`` (ERA skt as the prediction) and
``baseline_linear_*`` (least squares on the same features).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ml4l.dataset import BASELINE, TARGET, read_normalisation, read_split
from ml4l.lake import Lake

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
CHAMPION = "champion"
EXPERIMENT = "ml4l-lst"


@dataclass(frozen=True)
class TrainConfig:
    """The MLP and its optimisation; the defaults are seed 000's.

    ``width`` 0 means half the number of features, as in the seed.
    """

    layers: int = 4
    width: int = 0
    dropout: float = 0.0
    batch_norm: bool = False
    learning_rate: float = 3e-4
    schedule: str = "constant"
    batch_size: int = 1024
    epochs: int = 200
    patience: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"schedule must be constant or cosine, got {self.schedule!r}")


def error_metrics(observed: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """MAE, RMSE and bias (predicted minus observed), K."""
    error = np.asarray(predicted, dtype=np.float64) - np.asarray(observed, dtype=np.float64)
    return {"mae": float(np.abs(error).mean()), "rmse": float(np.sqrt((error**2).mean())), "bias": float(error.mean())}


def build_model(n_features: int, config: TrainConfig, target_mean: float = 0.0, target_std: float = 1.0) -> Any:
    """Seed 000's MLP: ``layers`` ReLU layers of ``width`` units and a linear output, rescaled to K.

    The network learns the target standardised by the training split's ``target_mean``
    and ``target_std``; a final fixed rescaling makes the model predict K directly.
    """
    import keras

    keras.utils.set_random_seed(config.seed)
    width = config.width or max(n_features // 2, 1)
    inputs = keras.Input(shape=(n_features,), name="features")
    x = inputs
    for _ in range(config.layers):
        x = keras.layers.Dense(width)(x)
        if config.batch_norm:
            x = keras.layers.BatchNormalization()(x)
        x = keras.layers.Activation("relu")(x)
        if config.dropout:
            x = keras.layers.Dropout(config.dropout)(x)
    standardised = keras.layers.Dense(1)(x)
    outputs = keras.layers.Rescaling(scale=target_std, offset=target_mean, name="lst")(standardised)
    return keras.Model(inputs, outputs, name="ml4l_mlp")


def _optimizer(config: TrainConfig, steps_per_epoch: int) -> Any:
    import keras

    rate: Any = config.learning_rate
    if config.schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(config.learning_rate, decay_steps=max(steps_per_epoch * config.epochs, 1))
    return keras.optimizers.Adam(learning_rate=rate)


def category_of(raw: pd.DataFrame) -> np.ndarray:
    """Surface category of each row from raw (denormalised) V20 fields: lake, glacier, bare ground or vegetation."""
    category = np.full(len(raw), "vegetation", dtype=object)
    bare = (raw["cvh_v20"] + raw["cvl_v20"]).to_numpy() < 0.2
    category[bare] = "bare ground"
    category[raw["si10_v20"].to_numpy() > 0.5] = "glacier"
    category[raw["clake"].to_numpy() > 0.5] = "lake"
    return category


def _denormalised(frame: pd.DataFrame, normalisation: dict[str, Any], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: frame[c].to_numpy(np.float64) * normalisation["std"][c] + normalisation["mean"][c] for c in columns})


@dataclass
class TrainResult:
    """What :func:`train_and_log` did."""

    run_id: str
    model_uri: str
    version: str | None
    champion: bool
    metrics: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def tracking_uri(lake: Lake) -> str:
    """The default MLflow store: SQLite under ``<lake>/mlflow``."""
    directory = Path(lake.root) / "mlflow"
    directory.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{directory / 'mlflow.db'}"


def _experiment(lake: Lake) -> str:
    import mlflow

    found = mlflow.get_experiment_by_name(EXPERIMENT)
    if found is not None:
        return str(found.experiment_id)
    artifacts = (Path(lake.root) / "mlflow" / "artifacts").resolve()
    return str(mlflow.create_experiment(EXPERIMENT, artifact_location=artifacts.as_uri()))


def train_and_log(lake: Lake, name: str = "default", config: TrainConfig = TrainConfig(), model_name: str = "ml4l-lst", uri: str | None = None) -> TrainResult:
    """Train on ``ml/<name>/``, evaluate against the baselines on test, log and register in MLflow.

    The alias ``champion`` moves to the new version only when its test MAE beats the current champion's.
    """
    import keras
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.linear_model import LinearRegression

    normalisation = read_normalisation(lake, name)
    features: list[str] = normalisation["features"]
    splits = {s: read_split(lake, s, name) for s in ("train", "validation", "test")}
    x = {s: f[features].to_numpy(np.float32) for s, f in splits.items()}
    y = {s: f[TARGET].to_numpy(np.float32) for s, f in splits.items()}

    mlflow.set_tracking_uri(uri or tracking_uri(lake))
    experiment = _experiment(lake)
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.log_params({**asdict(config), "features": len(features), "dataset": name,
                           **{f"rows_{s}": len(f) for s, f in splits.items()}, "backend": keras.backend.backend()})
        model = build_model(len(features), config, float(y["train"].mean()), float(y["train"].std()))
        steps = int(np.ceil(len(x["train"]) / config.batch_size))
        model.compile(optimizer=_optimizer(config, steps), loss="mse", metrics=["mae"])

        class _LogEpoch(keras.callbacks.Callback):
            def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
                mlflow.log_metrics({k: float(v) for k, v in (logs or {}).items()}, step=epoch)

        stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience, restore_best_weights=True)
        history = model.fit(x["train"], y["train"], validation_data=(x["validation"], y["validation"]), epochs=config.epochs,
                            batch_size=config.batch_size, callbacks=[stop, _LogEpoch()], verbose=0, shuffle=True)
        predicted = model.predict(x["test"], batch_size=8192, verbose=0)[:, 0]
        linear = LinearRegression().fit(x["train"], y["train"]).predict(x["test"])
        metrics: dict[str, float] = {"epochs_trained": float(len(history.history["loss"]))}
        for prefix, values in (("test", predicted), ("baseline_skt_test", splits["test"][BASELINE].to_numpy()), ("baseline_linear_test", linear)):
            for key, value in error_metrics(y["test"], values).items():
                metrics[f"{prefix}_{key}"] = value
        raw = _denormalised(splits["test"], normalisation, [c for c in ("cvh_v20", "cvl_v20", "si10_v20", "clake") if c in features])
        if len(raw.columns) == 4:
            category = category_of(raw)
            for label in np.unique(category):
                chosen = category == label
                slug = label.replace(" ", "_")
                for key, value in error_metrics(y["test"][chosen], predicted[chosen]).items():
                    metrics[f"test_{slug}_{key}"] = value
                metrics[f"test_{slug}_rows"] = float(chosen.sum())
        mlflow.log_metrics(metrics)

        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch, "normalisation.json")
            path.write_text(json.dumps(normalisation, indent=2))
            Path(scratch, "features.json").write_text(json.dumps(features))
            mlflow.log_artifacts(scratch, artifact_path="dataset")
        example = x["test"][:5]
        info = mlflow.tensorflow.log_model(model, name="model", signature=infer_signature(example, predicted[:5]),
                                      input_example=example, registered_model_name=model_name)
    version = str(info.registered_model_version) if info.registered_model_version is not None else None
    champion = _promote(model_name, version, metrics["test_mae"])
    return TrainResult(run.info.run_id, info.model_uri, version, champion, metrics)


def _promote(model_name: str, version: str | None, test_mae: float) -> bool:
    """Move ``champion`` to ``version`` if it beats the current champion's test MAE."""
    import mlflow
    from mlflow.exceptions import MlflowException

    if version is None:
        return False
    client = mlflow.MlflowClient()
    try:
        current = client.get_model_version_by_alias(model_name, CHAMPION)
        best = client.get_run(current.run_id).data.metrics["test_mae"]
    except MlflowException:
        best = float("inf")
    if test_mae < best:
        client.set_registered_model_alias(model_name, CHAMPION, version)
        return True
    return False
