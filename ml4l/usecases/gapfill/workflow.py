"""The steps the gap-filling flows run, as plain functions on a lake and a recipe (the flows only compose them).

1. :func:`ensure_cube`: the sample cube (generated unless one from the same cube recipe is there) or a cube
   built from the lake's MODIS and ERA.
2. (in ``tasks.gapfill``) validation with the ``gapfill_cube`` suite through the shared quality gate: a failure
   quarantines the cube and stops the flow.
3. :func:`train`: split, baselines and MLP on training rows, evaluation two ways, MLflow run, models saved.
4. :func:`fill`: the chosen model fills every land cell into ``gapfill/<model>/lst_filled.zarr``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import mlflow
import numpy as np
import xarray as xr

from ml4l.lake import Lake
from ml4l.ml import tracking
from ml4l.ml.splits import split_hash
from ml4l.usecases.gapfill import cube as cubes
from ml4l.usecases.gapfill.dataset import FEATURES, artificial_gap_samples, held_out_samples, split_cells
from ml4l.usecases.gapfill.evaluate import BASELINES, MODEL, evaluate, map_figure, map_step
from ml4l.usecases.gapfill.fill import FillReport, fill_steps, write_filled
from ml4l.usecases.gapfill.model import GapFiller, LinearT2m, MlpFiller, PerPixelLinear
from ml4l.usecases.gapfill.recipe import GapfillRecipe
from ml4l.usecases.gapfill.sample import generate_cube

EXPERIMENT = "ml4l-gapfill"


def ensure_cube(lake: Lake, recipe: GapfillRecipe) -> str:
    """The cube's path, writing it first if needed."""
    spec = recipe.cube
    path = cubes.cube_path(lake, spec.name)
    if recipe.source == "lake":
        return cubes.build_from_lake(
            lake,
            spec.north,
            spec.west,
            spec.rows,
            spec.cols,
            recipe.model_dump_json(),
            spec.name,
            recipe.fill.time_chunk,
        )
    if lake.has_zarr(path):
        stored = xr.open_zarr(path, consolidated=False).attrs.get("ml4l_recipe")
        if stored and GapfillRecipe.model_validate_json(stored).cube == spec:
            return path
    return generate_cube(lake, recipe)["cube"]


@dataclass(frozen=True)
class TrainReport:
    run_id: str
    tracking_uri: str
    metrics: dict[str, float]
    models: dict[str, str]
    split_hash: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def train(lake: Lake, recipe: GapfillRecipe, cube_path: str, tracking_uri: str | None = None) -> TrainReport:
    """Fit the baselines and the MLP on the training rows, score them on held-out blocks and artificial gaps,
    log everything to ``ml4l-gapfill`` and save the models under ``gapfill/<model>/model``."""
    cube = cubes.read_cube(lake, cube_path)
    truth = cubes.read_truth(lake, recipe.cube.name) if recipe.source == "sample" else None
    labels = split_cells(cube, recipe.split)
    split = held_out_samples(cube, labels, recipe.features.radius, recipe.split.seed)
    artificial = artificial_gap_samples(cube, labels, recipe.features.radius, recipe.split.seed)
    linear = LinearT2m.fit(split.train)
    network = MlpFiller.fit(split.train, split.validation, recipe.model)
    models: dict[str, GapFiller] = {
        MODEL: network,
        BASELINES[0]: linear,
        BASELINES[1]: PerPixelLinear.fit(split.train, cube.shape[1:], linear),
    }
    metrics = evaluate(split.test, artificial, models, truth)
    metrics.update({"train_rows": float(split.train.y.size), "validation_rows": float(split.validation.y.size)})
    saved = save_models(lake, models, labels, recipe)
    step = map_step(cube)
    filled, _ = fill_steps(cube, network, slice(step, step + 1), recipe.features.radius)
    figure = map_figure(cube, step, filled[0], None if truth is None else truth[step])
    hashed = split_hash(labels)
    with tracking.run(lake, EXPERIMENT, uri=tracking_uri, run_name=f"{recipe.name}-{recipe.cube.name}") as active:
        tracking.log_recipe(recipe)
        mlflow.log_params(
            {
                "kind": recipe.kind,
                "cube": cube_path,
                "split_hash": hashed,
                "features": ",".join(FEATURES),
                "mlp_best_epoch": network.best_epoch,
            }
        )
        mlflow.log_metrics(metrics)
        mlflow.log_figure(figure, "map_observed_filled_truth.png")
        run_id = active.info.run_id
        uri = mlflow.get_tracking_uri()
    return TrainReport(run_id, uri, metrics, saved, hashed)


def save_models(lake: Lake, models: dict[str, GapFiller], labels: np.ndarray, recipe: GapfillRecipe) -> dict[str, str]:
    """Each model under ``gapfill/<name>/model`` with the recipe that built it (and, for the MLP, its statistics and
    the split labels); returns the folders."""
    out = {}
    for name, model in models.items():
        directory = cubes.model_dir(lake, name)
        lake.fs.makedirs(directory, exist_ok=True)
        with lake.fs.open(f"{directory}/recipe.json", "w") as out_file:
            out_file.write(recipe.model_dump_json(indent=2))
        if isinstance(model, MlpFiller):
            model.save(lake, directory)
            with lake.fs.open(f"{directory}/split_labels.npy", "wb") as out_file:
                np.save(out_file, labels)
        elif isinstance(model, LinearT2m):
            with lake.fs.open(f"{directory}/coefficients.json", "w") as out_file:
                json.dump(asdict(model), out_file)
        elif isinstance(model, PerPixelLinear):
            with lake.fs.open(f"{directory}/coefficients.npz", "wb") as out_file:
                np.savez(out_file, intercept=model.intercept, slope=model.slope)
        out[name] = directory
    return out


def load_model(lake: Lake, name: str) -> GapFiller:
    """A model saved by :func:`train`."""
    directory = cubes.model_dir(lake, name)
    if name == MODEL:
        return MlpFiller.load(lake, directory)
    if name == BASELINES[0]:
        with lake.fs.open(f"{directory}/coefficients.json") as source:
            return LinearT2m(**json.load(source))
    with lake.fs.open(f"{directory}/coefficients.npz", "rb") as source:
        saved = np.load(source)
        return PerPixelLinear(saved["intercept"], saved["slope"])


def fill(lake: Lake, recipe: GapfillRecipe, cube_path: str) -> FillReport:
    """Fill every land cell of the cube with the recipe's model into ``gapfill/<model>/lst_filled.zarr``."""
    cube = cubes.read_cube(lake, cube_path)
    model = load_model(lake, recipe.fill.model)
    return write_filled(lake, cube, model, recipe.fill.model, recipe.model_dump_json(), recipe.features.radius, recipe.fill.time_chunk)
