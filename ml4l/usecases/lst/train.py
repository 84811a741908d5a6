"""Training on an ML-ready set: a Keras MLP (seed 000's), the ERA skt and linear baselines, MLflow tracking.

The model is written against Keras 3's backend-neutral API, so it runs on TensorFlow
(the default here) and on JAX (``KERAS_BACKEND=jax``). Training reads a split whole
("greedy") or streams it shard by shard through ``tf.data`` ("streaming"); evaluation
always streams the test split. Metrics are in K on the test split: ``test_mae``,
``test_rmse``, ``test_bias`` (prediction minus MODIS) and the same for the baselines
``baseline_skt_*`` (ERA skt as the prediction) and ``baseline_linear_*`` (ordinary
least squares on the same features).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ml4l.config import JoinConfig, TrainConfig
from ml4l.lake import Lake
from ml4l.ml.tracking import prepare_store, tracking_uri, use_store
from ml4l.ml.trainer import import_keras
from ml4l.usecases.lst import evaluation
from ml4l.usecases.lst.dataset import BASELINE, KEY_COLUMNS, SHARD_ROWS, TARGET, read_normalisation, read_split, split_rows, split_shards
from ml4l.usecases.lst.oracle import oracle_rows

CHAMPION = "champion"
CLAIM_TAG = "ml4l.claim"
TEST_SPLIT_TAG = "ml4l.test_split"
"""Tag of a run: SHA-256 of its test rows' keys (:func:`test_split_hash`); champions are compared on equal ones only."""
EXPERIMENT = "ml4l-lst"
IMPORTANCE_ROWS = 20_000


@dataclass(frozen=True)
class LinearFit:
    """Ordinary least squares: ``y = x @ coef + intercept``."""

    coef: np.ndarray
    intercept: float

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float64) @ self.coef + self.intercept


def least_squares(batches: Iterable[tuple[np.ndarray, np.ndarray]]) -> LinearFit:
    """Least squares accumulated batch by batch through the normal equations (float64)."""
    gram: np.ndarray | None = None
    moment: np.ndarray | None = None
    for x, y in batches:
        augmented = np.column_stack([np.asarray(x, dtype=np.float64), np.ones(len(x))])
        gram = augmented.T @ augmented if gram is None else gram + augmented.T @ augmented
        product = augmented.T @ np.asarray(y, dtype=np.float64)
        moment = product if moment is None else moment + product
    if gram is None or moment is None:
        raise ValueError("least squares on no rows")
    solution = np.linalg.lstsq(gram, moment, rcond=None)[0]
    return LinearFit(solution[:-1], float(solution[-1]))


def build_model(
    n_features: int, config: TrainConfig, target_mean: float = 0.0, target_std: float = 1.0, anchor: LinearFit | None = None
) -> Any:
    """Seed 000's MLP: ``layers`` ReLU layers of ``width`` units and a linear output, rescaled to K.

    The network learns the target standardised by the training split's ``target_mean``
    and ``target_std``; a final fixed rescaling makes the model predict K directly.
    With ``config.linear_anchor`` a linear path initialised from ``anchor`` is added.
    """
    keras = import_keras()

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
    if config.linear_anchor:
        if anchor is None:
            raise ValueError("linear_anchor needs the least-squares fit")
        linear = keras.layers.Dense(1, name="linear_anchor")
        standardised = keras.layers.Add()([keras.layers.Dense(1, kernel_initializer="zeros")(x), linear(inputs)])
        linear.set_weights(
            [
                (anchor.coef / target_std).reshape(-1, 1).astype(np.float32),
                np.array([(anchor.intercept - target_mean) / target_std], dtype=np.float32),
            ]
        )
    else:
        standardised = keras.layers.Dense(1)(x)
    outputs = keras.layers.Rescaling(scale=target_std, offset=target_mean, name="lst")(standardised)
    return keras.Model(inputs, outputs, name="ml4l_mlp")


def _optimizer(config: TrainConfig, steps_per_epoch: int) -> Any:
    keras = import_keras()

    rate: Any = config.learning_rate
    if config.schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(config.learning_rate, decay_steps=max(steps_per_epoch * config.epochs, 1))
    return keras.optimizers.Adam(learning_rate=rate)


def _xy(frame: pd.DataFrame, features: list[str]) -> tuple[np.ndarray, np.ndarray]:
    return frame[features].to_numpy(np.float32), frame[TARGET].to_numpy(np.float32)


def _shard_arrays(source: Any, index: int, features: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Row group ``index`` of an open ``ParquetFile`` as float32 ``(rows, features)`` and ``(rows,)`` arrays, from Arrow (no pandas).

    One Arrow call lays the features out row-major, not a NumPy copy per column: this runs on a
    thread beside the trainer's Python loop, and each call that gives up the GIL has to win it back.
    """
    table = source.read_row_group(index, columns=[*features, TARGET], use_threads=False)
    x = np.asarray(table.select(features).to_tensor(null_to_nan=True, row_major=True)).astype(np.float32, copy=False)
    return x, table.column(TARGET).to_numpy().astype(np.float32, copy=False)


def shuffled_batches(
    lake: Lake, split: str, name: str, features: list[str], batch_size: int, block_rows: int = 0, rng: np.random.Generator | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(features, lst)`` batches of one pass over a split, read one row group at a time.

    With ``block_rows`` > 0 and ``rng``, the row groups come in a random order and are
    gathered into blocks of at least ``block_rows`` rows, each permuted whole by one
    NumPy gather: no per-row Python work. Batches have ``batch_size`` rows, the last may be short.
    """
    import pyarrow.parquet as pq

    shuffle = block_rows > 0 and rng is not None
    held: list[tuple[np.ndarray, np.ndarray]] = []
    with lake.fs.open(lake.ml_split(name, split), "rb") as stream:
        source = pq.ParquetFile(stream)  # the footer parsed once per pass
        count = source.num_row_groups
        order = rng.permutation(count) if shuffle else range(count)  # type: ignore[union-attr]
        for position, index in enumerate(order):
            held.append(_shard_arrays(source, int(index), features))
            last = position == count - 1
            if not last and sum(len(y) for _, y in held) < max(block_rows, batch_size):
                continue
            x, y = (np.concatenate(part) for part in zip(*held, strict=True)) if len(held) > 1 else held[0]
            if shuffle:
                permutation = rng.permutation(len(y))  # type: ignore[union-attr]
                x, y = x[permutation], y[permutation]
            whole = len(y) if last else len(y) - len(y) % batch_size
            for start in range(0, whole, batch_size):
                yield x[start : start + batch_size], y[start : start + batch_size]
            held = [(x[whole:], y[whole:])] if whole < len(y) else []  # a partial batch goes on with the next block


def prefetched(batches: Iterator[Any], depth: int = 2) -> Iterator[Any]:
    """``batches`` made on a background thread, up to ``depth`` ahead (Parquet reads and NumPy gathers release the GIL)."""
    import queue
    import threading

    ahead: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for item in batches:
                while not stop.is_set():
                    try:
                        ahead.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            ahead.put(done)
        except BaseException as exc:  # handed to the consumer, raised there
            ahead.put(exc)

    worker = threading.Thread(target=produce, name="ml4l-prefetch", daemon=True)
    worker.start()
    try:
        while (item := ahead.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


def stream_split(lake: Lake, split: str, name: str, features: list[str], batch_size: int, shuffle_rows: int = 0, seed: int = 0) -> Any:
    """A ``tf.data.Dataset`` of ``(features, lst)`` batches streamed from the split's row groups.

    A background thread reads and shuffles the next block of row groups while the current one
    trains (:func:`prefetched`, :func:`shuffled_batches`). ``tf.data`` takes one block per
    Python call, a whole number of batches (the remainder goes on with the next block), cuts
    it into batches in C++ and keeps up to a block of them ready: Python runs a few times per
    pass, not per batch. With ``shuffle_rows`` > 0 each pass visits the row groups in a new
    order and permutes blocks of at least ``shuffle_rows`` rows. Memory holds a few blocks.
    """
    import tensorflow as tf

    passes = itertools.count()
    rows_total = split_rows(lake, split, name)
    block_batches = max(-(-max(shuffle_rows, SHARD_ROWS) // batch_size), 1)

    def blocks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        rng = np.random.default_rng([seed, next(passes)]) if shuffle_rows else None
        return prefetched(shuffled_batches(lake, split, name, features, batch_size * block_batches, shuffle_rows, rng), depth=1)

    signature = (tf.TensorSpec(shape=(None, len(features)), dtype=tf.float32), tf.TensorSpec(shape=(None,), dtype=tf.float32))
    dataset = tf.data.Dataset.from_generator(blocks, output_signature=signature).rebatch(batch_size)
    count = -(-rows_total // batch_size)  # a known length lets Keras plan epochs without probing
    options = tf.data.Options()
    options.experimental_optimization.apply_default_optimizations = False  # as Keras's own array feed: no rewrite per pass
    return dataset.apply(tf.data.experimental.assert_cardinality(count)).prefetch(block_batches).with_options(options)


def evaluate(lake: Lake, name: str, predict: Any, linear: LinearFit, normalisation: dict[str, Any]) -> pd.DataFrame:
    """Predictions on the test split, shard by shard, beside MODIS, skt, the linear baseline and the category.

    Columns: ``time, cell, latitude, longitude, observed, predicted, skt, linear, category``.
    """
    features: list[str] = normalisation["features"]
    parts = []
    for shard in split_shards(lake, "test", name):
        x = shard[features].to_numpy(np.float32)
        part = shard[list(KEY_COLUMNS)].assign(
            observed=shard[TARGET].to_numpy(np.float64),
            predicted=np.asarray(predict(x), dtype=np.float64).ravel(),
            skt=shard[BASELINE].to_numpy(np.float64),
            linear=linear.predict(x),
        )
        if all(c in features for c in evaluation.CATEGORY_COLUMNS):
            raw = pd.DataFrame(
                {c: shard[c].to_numpy(np.float64) * normalisation["std"][c] + normalisation["mean"][c] for c in evaluation.CATEGORY_COLUMNS}
            )
            part["category"] = evaluation.category_of(raw)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


@dataclass
class TrainResult:
    """What :func:`train_and_log` did."""

    run_id: str
    model_uri: str
    version: str | None
    champion: bool
    metrics: dict[str, float]
    tracking_uri: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _experiment(lake: Lake, local_store: bool) -> str:
    import mlflow

    found = mlflow.get_experiment_by_name(EXPERIMENT)
    if found is not None:
        return str(found.experiment_id)
    artifacts = lake.mlflow_artifacts if local_store else None
    return str(mlflow.create_experiment(EXPERIMENT, artifact_location=artifacts))


def _fit(model: Any, lake: Lake, name: str, features: list[str], config: TrainConfig, callbacks: list[Any]) -> Any:
    if config.streaming:
        train = stream_split(lake, "train", name, features, config.batch_size, config.shuffle_rows, config.seed)
        validation = stream_split(lake, "validation", name, features, 8192)
        return model.fit(train, validation_data=validation, epochs=config.epochs, callbacks=callbacks, verbose=0, shuffle=False)
    x_train, y_train = _xy(read_split(lake, "train", name), features)
    validation = _xy(read_split(lake, "validation", name), features)
    return model.fit(
        x_train,
        y_train,
        validation_data=validation,
        epochs=config.epochs,
        batch_size=config.batch_size,
        callbacks=callbacks,
        verbose=0,
        shuffle=True,
    )


def train_and_log(
    lake: Lake,
    name: str = "default",
    config: TrainConfig = TrainConfig(),
    model_name: str = "ml4l-lst",
    uri: str | None = None,
    join: JoinConfig | None = None,
) -> TrainResult:
    """Train on ``ml/<name>/``, evaluate against the baselines on test, log and register in MLflow.

    ``uri`` is the MLflow tracking server; by default a SQLite store under the lake.
    ``join`` is the join configuration the lake's months were joined with: on a synthetic
    lake it gives the oracle (:mod:`ml4l.usecases.lst.oracle`), logged as ``oracle_test_*`` and ``gap_closed``.
    The model registered is :func:`serving_model`: raw features in, K out. The alias
    ``champion`` moves to the new version only when its test MAE beats the current
    champion's, measured on the same test rows (:data:`TEST_SPLIT_TAG`).
    """
    keras = import_keras()
    import mlflow
    from mlflow.models import infer_signature

    normalisation = read_normalisation(lake, name)
    features: list[str] = normalisation["features"]
    linear = least_squares(_xy(shard, features) for shard in split_shards(lake, "train", name, columns=[*features, TARGET]))
    target = pd.concat(list(split_shards(lake, "train", name, columns=[TARGET])))[TARGET].to_numpy(np.float64)

    uri = uri or tracking_uri(lake)
    use_store(uri)
    experiment = _experiment(lake, uri.startswith("sqlite:"))
    kill_dead_runs(lake, experiment)
    with lake.claim(uuid.uuid4().hex[:12]) as claim, mlflow.start_run(experiment_id=experiment, tags={CLAIM_TAG: claim}) as run:
        mlflow.log_params(
            {
                **asdict(config),
                "features": len(features),
                "dataset": name,
                "backend": keras.backend.backend(),
                **{f"rows_{s}": n for s, n in normalisation["rows"].items()},
                **{f"months_{s}": ",".join(m) for s, m in normalisation["months"].items()},
            }
        )
        model = build_model(len(features), config, float(target.mean()), float(target.std()), linear)
        steps = int(np.ceil(target.size / config.batch_size))
        model.compile(optimizer=_optimizer(config, steps), loss=config.loss, metrics=["mae"])

        log_epoch = keras.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: mlflow.log_metrics({k: float(v) for k, v in (logs or {}).items()}, step=epoch)
        )
        stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience, restore_best_weights=True)
        history = _fit(model, lake, name, features, config, [stop, log_epoch])

        def predict(x: np.ndarray) -> np.ndarray:
            return np.asarray(model.predict(x, batch_size=8192, verbose=0))[:, 0]

        scored = evaluate(lake, name, predict, linear, normalisation)
        split = test_split_hash(scored)
        mlflow.set_tag(TEST_SPLIT_TAG, split)
        truth = oracle_rows(lake, normalisation["months"]["test"], join) if join is not None else None
        if truth is not None:
            scored = scored.merge(truth, on=["time", "cell"], how="left", validate="one_to_one")
        metrics = {"epochs_trained": float(len(history.history["loss"])), **evaluation.named_metrics(scored)}
        mlflow.log_metrics(metrics)

        sample = next(split_shards(lake, "test", name, columns=[*features, TARGET])).head(IMPORTANCE_ROWS)
        importance = evaluation.permutation_importance(predict, *_xy(sample, features), features, seed=config.seed)
        for file_name, figure in (
            ("learning_curve.png", evaluation.learning_curve_figure(history.history, config.loss)),
            ("error_map.png", evaluation.error_map_figure(scored)),
            ("predicted_vs_observed.png", evaluation.predicted_vs_observed_figure(scored)),
            ("permutation_importance.png", evaluation.importance_figure(importance)),
        ):
            mlflow.log_figure(figure, f"plots/{file_name}")
        with tempfile.TemporaryDirectory() as scratch:
            Path(scratch, "normalisation.json").write_text(json.dumps(normalisation, indent=2))
            Path(scratch, "features.json").write_text(json.dumps(features))
            importance.to_csv(Path(scratch, "permutation_importance.csv"), index=False)
            mlflow.log_artifacts(scratch, artifact_path="dataset")
        served = serving_model(model, normalisation)
        example = raw_features(sample.head(5), normalisation)
        info = mlflow.tensorflow.log_model(
            served,
            name="model",
            signature=infer_signature(example, predict(sample[features].to_numpy(np.float32)[:5])),
            registered_model_name=model_name,
            pip_requirements=serving_requirements(keras.backend.backend()),
        )
    version = str(info.registered_model_version) if info.registered_model_version is not None else None
    champion = _promote(model_name, version, metrics["test_mae"], split)
    return TrainResult(run.info.run_id, info.model_uri, version, champion, metrics, uri)


def test_split_hash(scored: pd.DataFrame) -> str:
    """SHA-256 of the test rows' keys (``time``, ``cell``) in their order: equal for the same test split."""
    digest = hashlib.sha256(scored["time"].to_numpy().astype("datetime64[ns]").view(np.int64).tobytes())
    digest.update(scored["cell"].to_numpy().astype(np.int64).tobytes())
    return digest.hexdigest()


def raw_features(frame: pd.DataFrame, normalisation: dict[str, Any]) -> dict[str, np.ndarray]:
    """The raw (denormalised) feature columns of normalised ``frame``, float32, as the served model takes them."""
    return {
        name: (frame[name].to_numpy(np.float64) * normalisation["std"][name] + normalisation["mean"][name]).astype(np.float32)
        for name in normalisation["features"]
    }


def serving_model(model: Any, normalisation: dict[str, Any]) -> Any:
    """``model`` behind a fixed normalisation: one input per raw feature, named, and the training split's mean and std.

    ``mlflow.pyfunc.load_model(uri).predict(frame)`` of a frame of raw features (any column
    order) then needs Keras alone, no ml4l code.
    """
    keras = import_keras()
    features: list[str] = normalisation["features"]
    inputs = {name: keras.Input(shape=(1,), name=name) for name in features}
    raw = keras.layers.Concatenate(name="raw_features")([inputs[name] for name in features])
    std = np.array([normalisation["std"][name] for name in features])
    # in float64, as build_ml_ready normalised the training rows: the model sees the same float32 values
    normalised = keras.layers.Normalization(
        mean=[normalisation["mean"][name] for name in features], variance=(std**2).tolist(), dtype="float64", name="normalisation"
    )(raw)
    return keras.Model(inputs, model(normalised), name="ml4l_lst_served")


def kill_dead_runs(lake: Lake, experiment_id: str) -> list[str]:
    """Mark ``KILLED`` the runs of the experiment left ``RUNNING`` by a training process that died; returns their ids.

    A training run holds a claim on this lake (:meth:`~ml4l.lake.Lake.claim`) named by its
    ``ml4l.claim`` tag; a run whose claim is no longer held has no live process behind it.
    Runs without the tag (started by other tools) are left alone.
    """
    import mlflow

    client = mlflow.MlflowClient()
    killed = []
    for found in client.search_runs([experiment_id], filter_string="attributes.status = 'RUNNING'"):
        token = found.data.tags.get(CLAIM_TAG)
        if token is not None and not lake.is_live(token):
            client.set_terminated(found.info.run_id, status="KILLED")
            killed.append(found.info.run_id)
    return killed


def serving_requirements(backend: str) -> list[str]:
    """The served model's pip requirements, pinned to what trained it.

    Given, not inferred: MLflow's inference loads the model again in a subprocess (about 30 s a model).
    """
    from importlib.metadata import packages_distributions, version

    modules = ["mlflow", "keras", "numpy", "pandas", "tensorflow", *(["jax", "jaxlib"] if backend == "jax" else [])]
    providers = packages_distributions()  # e.g. tensorflow comes from tensorflow-cpu
    dists = [module if module in providers.get(module, [module]) else providers[module][0] for module in modules]
    return [f"{dist}=={version(dist)}" for dist in dists]


def champion_version(model_name: str, uri: str | None = None) -> Any | None:
    """The registered version that ``champion`` points to, or None; ``uri`` defaults to the current tracking URI."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        if uri is not None:
            prepare_store(uri)
        return mlflow.MlflowClient(tracking_uri=uri).get_model_version_by_alias(model_name, CHAMPION)
    except MlflowException:
        return None


def _promote(model_name: str, version: str | None, test_mae: float, test_split: str) -> bool:
    """Move ``champion`` to ``version`` if it beats the current champion's test MAE on the same test split.

    A champion measured on other test rows (another :data:`TEST_SPLIT_TAG`, or none) is not
    comparable: it stays, and the new version is not promoted over it.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    if version is None:
        return False
    client = mlflow.MlflowClient()
    current = champion_version(model_name)
    try:
        champion_run = client.get_run(current.run_id).data if current is not None else None
    except MlflowException:  # the champion's run is gone
        champion_run = None
    if champion_run is None:
        best = float("inf")
    elif champion_run.tags.get(TEST_SPLIT_TAG) != test_split:
        return False
    else:
        best = champion_run.metrics["test_mae"]
    if test_mae < best:
        client.set_registered_model_alias(model_name, CHAMPION, version)
        return True
    return False
