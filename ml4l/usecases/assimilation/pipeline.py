"""The assimilation use case end to end: inputs, training with scores, and the analysis of a date range.

Lake layout (``da/``)::

    da/fields.zarr                       anomaly(time, lat, lon) K, float32; attrs source, recipe
    da/stations.parquet                  id, lat, lon
    da/observations.parquet              time, id, lat, lon, value (K), sigma_o: validation and test days
    da/<model>/generator/                decoder.keras, prior.npz (latent mean and factor), generator.json
    da/<model>/analysis.zarr             mean, spread (time, lat, lon) and members (time, member, lat, lon)
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ml4l.errors import InputError
from ml4l.lake import Lake
from ml4l.ml import splits
from ml4l.ml.metrics import gap_closed
from ml4l.ml.trainer import FitConfig, fit
from ml4l.usecases.assimilation import analysis, baselines, scores
from ml4l.usecases.assimilation.fields import (
    Grid,
    SeasonalScale,
    interpolation_weights,
    pseudo_observations,
    stations,
    synthetic_fields,
)
from ml4l.usecases.assimilation.recipe import AssimilationRecipe
from ml4l.usecases.assimilation.vae import build_vae, decoder_std, encode

EXPERIMENT = "ml4l-assimilation"


@dataclass(frozen=True)
class Paths:
    fields: str
    stations: str
    observations: str

    @classmethod
    def of(cls, lake: Lake) -> Paths:
        return cls(lake.usecase("da", "fields.zarr"), lake.usecase("da", "stations.parquet"), lake.usecase("da", "observations.parquet"))


def generator_dir(lake: Lake, model: str) -> str:
    return lake.usecase("da", model, "generator")


def analysis_path(lake: Lake, model: str) -> str:
    return lake.usecase("da", model, "analysis.zarr")


def split_labels(times: np.ndarray, recipe: AssimilationRecipe) -> np.ndarray:
    """Contiguous years with ``gap_days`` excluded between the sets; leakage-checked."""
    s = recipe.split
    gap = np.timedelta64(s.gap_days, "D")
    labels = splits.time_split(
        times, (str(s.train[0]), str(s.train[1])), (str(s.validation[0]), str(s.validation[1])), (str(s.test[0]), str(s.test[1])), gap=gap
    )
    splits.check_time_leakage(times, labels, gap=gap)
    return labels


def write_inputs(lake: Lake, recipe: AssimilationRecipe) -> Paths:
    """The synthetic fields, the station network and pseudo-observations on validation and test days."""
    paths = Paths.of(lake)
    fields = synthetic_fields(recipe.fields)
    fields.attrs["recipe"] = recipe.model_dump_json()
    grid = Grid.of(recipe.fields)
    network = stations(grid, recipe.stations)
    labels = split_labels(fields["time"].values, recipe)
    held_out = fields["anomaly"].isel(time=np.flatnonzero((labels == splits.VALIDATION) | (labels == splits.TEST)))
    observations = pseudo_observations(held_out, network, grid, recipe.stations.sigma_o, recipe.stations.seed + 1)
    with lake.replace_whole(paths.fields) as staging:
        fields.to_zarr(staging, mode="w-", zarr_format=3, consolidated=True)
    for frame, target in ((network, paths.stations), (observations, paths.observations)):
        with lake.replace_whole(target) as staging, lake.fs.open(staging, "wb") as handle:
            frame.to_parquet(handle, index=False)
    return paths


def read_fields(lake: Lake) -> xr.Dataset:
    path = Paths.of(lake).fields
    if not lake.fs.exists(path):
        raise InputError(path, "no anomaly fields: run the assimilation inputs step (ml4l demo --usecase assimilation) first")
    return xr.open_zarr(path, consolidated=True)


def read_observations(lake: Lake, path: str | None, grid: Grid) -> pd.DataFrame:
    """An observation table (time, lat, lon, value), checked: NaN values or points outside the grid are an ``InputError``."""
    source = path or Paths.of(lake).observations
    try:
        with lake.fs.open(source, "rb") as handle:
            table = pd.read_parquet(handle)
    except FileNotFoundError as exc:
        raise InputError(source, "observation table not found") from exc
    missing = {"time", "lat", "lon", "value"} - set(table.columns)
    if missing:
        raise InputError(source, f"observation table lacks the columns {sorted(missing)}")
    bad_value = ~np.isfinite(table["value"].to_numpy(np.float64))
    if bad_value.any():
        raise InputError(
            source, f"{bad_value.sum()} observations have NaN or infinite values, e.g. row {int(np.flatnonzero(bad_value)[0])}"
        )
    outside = ~grid.contains(table["lat"], table["lon"])
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        raise InputError(
            source,
            f"{outside.sum()} observations lie outside the grid (lat {grid.lat[0]}..{grid.lat[-1]}, "
            f"lon {grid.lon[0]}..{grid.lon[-1]}) or have NaN coordinates, e.g. row {i} at "
            f"({table['lat'].iloc[i]}, {table['lon'].iloc[i]})",
        )
    return table


@dataclass
class Generator:
    """The trained decoder, its latent prior, the seasonal standardisation scale and the generator error (standardised units)."""

    decoder: Any
    prior: analysis.LatentPrior
    seasonal: SeasonalScale
    generator_std: float
    error_inflation: float = 1.0
    spread_inflation: float = 1.0

    def save(self, lake: Lake, model: str) -> str:
        target = generator_dir(lake, model)
        with lake.replace_whole(target) as staging, tempfile.TemporaryDirectory() as scratch:
            self.decoder.save(f"{scratch}/decoder.keras")
            np.savez(f"{scratch}/prior.npz", mean=self.prior.mean, factor=self.prior.factor)
            Path(scratch, "generator.json").write_text(
                json.dumps(
                    {
                        "seasonal_scale": self.seasonal.coefficients,
                        "generator_std": self.generator_std,
                        "error_inflation": self.error_inflation,
                        "spread_inflation": self.spread_inflation,
                    }
                )
            )
            lake.fs.put(f"{scratch}/", staging, recursive=True)
        return target

    @classmethod
    def load(cls, lake: Lake, model: str) -> Generator:
        from ml4l.ml.trainer import import_keras

        source = generator_dir(lake, model)
        if not lake.fs.exists(source):
            raise InputError(source, f"no trained generator for model {model!r}: run da-train first")
        keras = import_keras()
        with tempfile.TemporaryDirectory() as scratch:
            lake.fs.get(f"{source}/", f"{scratch}/", recursive=True)
            decoder = keras.models.load_model(f"{scratch}/decoder.keras", compile=False)
            prior = np.load(f"{scratch}/prior.npz")
            meta = json.loads(Path(scratch, "generator.json").read_text())
        return cls(
            decoder,
            analysis.LatentPrior(prior["mean"], prior["factor"]),
            SeasonalScale(tuple(meta["seasonal_scale"])),
            meta["generator_std"],
            meta["error_inflation"],
            meta["spread_inflation"],
        )


def train_generator(fields: xr.Dataset, labels: np.ndarray, recipe: AssimilationRecipe) -> tuple[Generator, dict[str, list[float]], int]:
    """Fit the VAE on the training years; the validation years alone pick the checkpoint."""
    anomaly = fields["anomaly"].values.astype(np.float64)
    train, validation = anomaly[labels == splits.TRAIN], anomaly[labels == splits.VALIDATION]
    times = fields["time"].values
    seasonal = SeasonalScale.fit(train, times[labels == splits.TRAIN])
    train = train / seasonal.at(times[labels == splits.TRAIN])[:, None, None]
    validation = validation / seasonal.at(times[labels == splits.VALIDATION])[:, None, None]
    x, v = train[..., None].astype(np.float32), validation[..., None].astype(np.float32)
    built: dict[str, Any] = {}

    def build() -> Any:
        vae, built["decoder"] = build_vae(train.shape[1:], recipe.vae)
        return vae

    c = recipe.vae
    result = fit(
        build,
        (x, x),
        (v, v),
        FitConfig(
            epochs=c.epochs,
            batch_size=c.batch_size,
            learning_rate=c.learning_rate,
            patience=c.patience,
            seed=c.seed,
            loss="mse",
            halve_every=c.halve_every,
        ),
    )
    mu, log_var = encode(result.model, train)
    generator = Generator(built["decoder"], analysis.LatentPrior.fit(mu, log_var), seasonal, decoder_std(result.model))
    return generator, result.history, result.best_epoch


def spaced_days(labels: np.ndarray, label: int, count: int) -> np.ndarray:
    """``count`` days of one set evenly spaced over its years (indices into ``fields.time``)."""
    chosen = np.flatnonzero(labels == label)
    return chosen[np.linspace(0, len(chosen) - 1, min(count, len(chosen))).astype(int)]


@dataclass(frozen=True)
class ScoredDays:
    """Days of one set with what scoring them needs: truth, observations, ``H`` and the cells without a station."""

    times: np.ndarray
    truth: np.ndarray  # (days, ny, nx) K
    observations: np.ndarray  # (days, stations) K, in the network's order
    index: np.ndarray  # H: (stations, 4) flat cell indices
    weights: np.ndarray  # H: (stations, 4) bilinear weights
    unobserved: np.ndarray  # (ny, nx): no station within one grid step
    network: pd.DataFrame

    @classmethod
    def of(
        cls, fields: xr.Dataset, labels: np.ndarray, label: int, count: int, observations: pd.DataFrame, network: pd.DataFrame, grid: Grid
    ) -> ScoredDays:
        """``count`` days of the set ``label``, evenly spaced over its years."""
        days = spaced_days(labels, label, count)
        times = fields["time"].values[days]
        index, weights = interpolation_weights(grid, network["lat"], network["lon"])
        lat, lon = network["lat"].to_numpy(), network["lon"].to_numpy()
        return cls(
            times,
            fields["anomaly"].values[days].astype(np.float64),
            observation_matrix(observations, times, network),
            index,
            weights,
            scores.unobserved_cells(grid.lat, grid.lon, lat, lon, grid.step),
            network,
        )


def calibrate(generator: Generator, days: ScoredDays, recipe: AssimilationRecipe) -> dict[str, float]:
    """Set the generator's ``error_inflation`` and ``spread_inflation`` on ``days`` (validation days, at their unobserved cells).

    For each candidate error inflation ``f``, the spread inflation is the one whose rank histogram over
    every unobserved cell is flattest (:func:`scores.flattest_inflation`, searched from half to twice the
    factor that makes the spread/skill ratio 1); the ``f`` with the lowest CRPS after that wins. Matching
    the spread to the RMSE instead lets the few large errors (fronts) widen every member, which humps the
    histogram. Returns, per candidate, the CRPS, the raw and the inflated spread/skill ratio, the spread
    inflation and the histogram's chi-square statistic (keys ``crps_<c>``, ``spread_skill_raw_<c>``,
    ``spread_skill_<c>``, ``spread_inflation_<c>``, ``rank_chi2_<c>`` with ``<c>`` = ``inflation_<f>``).
    The test days play no part.
    """
    a = recipe.analysis
    truth = days.truth[:, days.unobserved].ravel()
    seeds = analysis.day_seeds(a.seed, days.times)
    scale = generator.seasonal.at(days.times)
    fitted: dict[float, dict[str, float]] = {}
    for inflation in a.error_inflations:
        fields = analysis.ensemble_fields(
            generator.decoder,
            generator.prior,
            days.index,
            days.weights,
            days.observations,
            recipe.stations.sigma_o,
            inflation * generator.generator_std,
            scale,
            a.members,
            a.iterations,
            a.learning_rate,
            a.member_iterations,
            a.member_learning_rate,
            seeds,
        )
        members = _at_cells(fields, days.unobserved)
        raw = scores.spread_skill_ratio(members, truth)
        factor, chi2 = scores.flattest_inflation(members, truth, np.geomspace(0.5, 2.0, 555) / raw)
        inflated = analysis.inflate(members, factor)
        fitted[inflation] = {
            "crps": scores.crps(inflated, truth),
            "spread_skill_raw": raw,
            "spread_skill": scores.spread_skill_ratio(inflated, truth),
            "spread_inflation": factor,
            "rank_chi2": chi2,
        }
    generator.error_inflation = min(fitted, key=lambda f: fitted[f]["crps"])
    generator.spread_inflation = fitted[generator.error_inflation]["spread_inflation"]
    return {f"{name}_inflation_{f:g}".replace(".", "_"): value for f, values in fitted.items() for name, value in values.items()}


def _at_cells(members: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Members ``(days, members, ny, nx)`` at the ``cells`` mask: ``(days * cells, members)``."""
    return np.moveaxis(members[:, :, cells], 1, -1).reshape(-1, members.shape[1])


def evaluate(
    generator: Generator, days: ScoredDays, train: np.ndarray, grid: Grid, recipe: AssimilationRecipe
) -> tuple[dict[str, float], dict[str, Any]]:
    """Scores of ``days`` at cells without observations: the VAE ensemble, the baselines fitted on ``train`` and the oracle.

    The flow scores the test days; the metric names say ``test`` for that reason.
    """
    a, sigma_o = recipe.analysis, recipe.stations.sigma_o
    truth, y, network = days.truth, days.observations, days.network
    ensemble = analysis.assimilate(
        generator.decoder,
        generator.prior,
        days.index,
        days.weights,
        y,
        sigma_o,
        generator.generator_std,
        generator.seasonal.at(days.times),
        a,
        analysis.day_seeds(a.seed, days.times),
        generator.error_inflation,
        generator.spread_inflation,
    )
    estimates = {
        "climatology": np.zeros_like(truth),
        "pca": baselines.PCAPrior.fit(train, recipe.vae.latent).analyse(days.index, days.weights, y, sigma_o).reshape(truth.shape),
        "oi": baselines.optimal_interpolation(
            baselines.GaussianCovariance.fit(train, grid), grid, network["lat"].to_numpy(), network["lon"].to_numpy(), y, sigma_o
        ).reshape(truth.shape),
    }
    oracle = analysis.best_fit(
        generator.decoder,
        generator.prior,
        truth,
        generator.seasonal.at(days.times),
        generator.generator_std,
        a.iterations,
        a.learning_rate,
    )
    unobserved = days.unobserved
    at = (slice(None), unobserved)
    metrics = {"test_rmse": scores.rmse(truth[at], ensemble.mean[at]), "oracle_test_rmse": scores.rmse(truth[at], oracle[at])}
    for name, estimate in estimates.items():
        metrics[f"baseline_{name}_test_rmse"] = scores.rmse(truth[at], estimate[at])
    metrics["gap_closed"] = gap_closed(
        metrics["test_rmse"], {n: metrics[f"baseline_{n}_test_rmse"] for n in estimates}, metrics["oracle_test_rmse"]
    )
    at_cells, truth_at_cells = _at_cells(ensemble.members, unobserved), truth[at].ravel()
    metrics["spread_skill_ratio"] = scores.spread_skill_ratio(at_cells, truth_at_cells)
    metrics["test_crps"] = scores.crps(at_cells, truth_at_cells)
    members = np.moveaxis(ensemble.members, 1, -1)  # (days, ny, nx, members)
    ranks = scores.ranks(members, truth)  # (days, ny, nx)
    sparse = scores.lattice_samples(unobserved, a.rank_thinning, len(truth), a.seed)
    counts, p_value = scores.rank_histogram(members[sparse], truth[sparse])
    metrics["rank_histogram_chi2_pvalue"] = p_value
    metrics["rank_samples"] = float(counts.sum())
    # over every unobserved cell (correlated, so no p-value): the truth outside all members, 2 / (K + 1) if calibrated
    metrics["rank_outside_share"] = float(np.isin(ranks[at], (0, a.members)).mean())
    metrics["rank_sample_correlation"] = scores.neighbour_correlation(ranks, unobserved, a.rank_thinning)
    metrics.update({"test_days": float(len(truth)), "scored_cells": float(unobserved.sum())})
    detail = {
        "days": days.times,
        "truth": truth,
        "ensemble": ensemble,
        "oracle": oracle,
        "estimates": estimates,
        "rank_counts": counts,
        "unobserved": unobserved,
        "network": network,
        "observations": y,
    }
    return metrics, detail


def observation_matrix(observations: pd.DataFrame, days: np.ndarray, network: pd.DataFrame) -> np.ndarray:
    """Observations ``(days, stations)`` in the network's order; every station must report every day."""
    table = observations.assign(time=pd.to_datetime(observations["time"])).set_index(["time", "id"])["value"]
    index = pd.MultiIndex.from_product([pd.DatetimeIndex(days), network["id"]])
    matrix = table.reindex(index).to_numpy(np.float64).reshape(len(days), len(network))
    if np.isnan(matrix).any():
        raise InputError("observations", f"{np.isnan(matrix).sum()} (day, station) observations are missing for the requested days")
    return matrix


def map_figure(detail: dict[str, Any], grid: Grid) -> Any:
    """Truth, observations, analysis and spread of the first scored test day."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(14, 3.6))
    axes = figure.subplots(1, 4)
    truth, ensemble, network = detail["truth"][0], detail["ensemble"], detail["network"]
    limit = float(np.abs(truth).max())
    extent = (grid.lon[0], grid.lon[-1], grid.lat[0], grid.lat[-1])
    style = {"origin": "lower", "extent": extent, "cmap": "RdBu_r", "vmin": -limit, "vmax": limit}
    axes[0].imshow(truth, **style)
    axes[0].set_title(f"truth {str(detail['days'][0])[:10]}")
    points = axes[1].scatter(network["lon"], network["lat"], c=detail["observations"][0], cmap="RdBu_r", vmin=-limit, vmax=limit, s=12)
    axes[1].set_xlim(extent[:2])
    axes[1].set_ylim(extent[2:])
    axes[1].set_title("observations")
    axes[2].imshow(ensemble.mean[0], **style)
    axes[2].set_title("analysis (ensemble mean)")
    spread = axes[3].imshow(ensemble.spread[0], origin="lower", extent=extent, cmap="viridis")
    axes[3].set_title("ensemble spread")
    figure.colorbar(points, ax=axes[:3], label="T2m anomaly (K)", shrink=0.8)
    figure.colorbar(spread, ax=axes[3], label="K", shrink=0.8)
    return figure


def rank_figure(counts: np.ndarray, p_value: float) -> Any:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 3.5))
    axis = figure.subplots()
    axis.bar(np.arange(len(counts)), counts)
    axis.axhline(counts.mean(), color="k", lw=1)
    axis.set_xlabel("rank of the truth among the members")
    axis.set_title(f"rank histogram (chi-square p = {p_value:.3g})")
    return figure


def train_and_score(lake: Lake, recipe: AssimilationRecipe, uri: str | None = None) -> dict[str, Any]:
    """Train the VAE, score it against the baselines on the test days, log everything to ``ml4l-assimilation``."""
    import mlflow

    from ml4l.ml import tracking

    fields = read_fields(lake)
    labels = split_labels(fields["time"].values, recipe)
    grid = Grid.of(recipe.fields)
    paths = Paths.of(lake)
    with lake.fs.open(paths.stations, "rb") as handle:
        network = pd.read_parquet(handle)
    observations = read_observations(lake, paths.observations, grid)
    generator, history, best_epoch = train_generator(fields, labels, recipe)
    a = recipe.analysis
    validation_days = ScoredDays.of(fields, labels, splits.VALIDATION, a.validation_days, observations, network, grid)
    calibration = calibrate(generator, validation_days, recipe)
    saved = generator.save(lake, recipe.model_name)
    test_days = ScoredDays.of(fields, labels, splits.TEST, a.test_days, observations, network, grid)
    train = fields["anomaly"].values[labels == splits.TRAIN].astype(np.float64)
    metrics, detail = evaluate(generator, test_days, train, grid, recipe)
    with tracking.run(lake, EXPERIMENT, uri, run_name=f"vae-{recipe.model_name}") as run:
        tracking.log_recipe(recipe)
        mlflow.log_params(
            {
                "split_hash": splits.split_hash(labels),
                "best_epoch": best_epoch,
                "generator_std": generator.generator_std,
                "seasonal_scale": json.dumps(generator.seasonal.coefficients),
                "error_inflation": generator.error_inflation,
                "spread_inflation": generator.spread_inflation,
            }
        )
        mlflow.log_metrics({f"validation_{name}": value for name, value in calibration.items()})
        for epoch in range(len(history.get("loss", []))):
            mlflow.log_metrics({k: v[epoch] for k, v in history.items() if len(v) > epoch}, step=epoch)
        mlflow.log_metrics(metrics)
        mlflow.log_figure(map_figure(detail, grid), "plots/test_day_map.png")
        mlflow.log_figure(rank_figure(detail["rank_counts"], metrics["rank_histogram_chi2_pvalue"]), "plots/rank_histogram.png")
        mlflow.log_dict({"rank_counts": detail["rank_counts"].tolist()}, "rank_histogram.json")
        mlflow.log_artifacts(_local(lake, saved), artifact_path="generator")
    return {"run_id": run.info.run_id, "metrics": metrics, "generator": saved}


def _local(lake: Lake, path: str) -> str:
    if lake.is_local:
        return path
    scratch = tempfile.mkdtemp(prefix="ml4l-da-")
    lake.fs.get(f"{path}/", f"{scratch}/", recursive=True)
    return scratch


def assimilate_range(lake: Lake, recipe: AssimilationRecipe, start: str, end: str, observations: str | None = None) -> str:
    """The analysis (mean, spread, members) of every day from ``start`` to ``end`` with observations, to ``analysis.zarr``.

    Bad observations (NaN, outside the grid) raise an :class:`InputError` before anything is written.
    """
    grid = Grid.of(recipe.fields)
    table = read_observations(lake, observations, grid)
    times = pd.to_datetime(table["time"])
    chosen = table[(times >= pd.Timestamp(start)) & (times <= pd.Timestamp(end))]
    if chosen.empty:
        raise InputError(observations or Paths.of(lake).observations, f"no observations between {start} and {end}")
    generator = Generator.load(lake, recipe.model_name)
    chosen = chosen.assign(time=pd.to_datetime(chosen["time"]))
    if "sigma_o" not in chosen:
        chosen = chosen.assign(sigma_o=recipe.stations.sigma_o)
    a = recipe.analysis
    analysed: dict[np.datetime64, np.ndarray] = {}
    # days observed by the same stations with the same error are one batch (one graph, one optimisation)
    for network, group in _same_network_days(chosen):
        index, weights = interpolation_weights(grid, network["lat"], network["lon"])
        times = group["time"].unique()
        ensemble = analysis.assimilate(
            generator.decoder,
            generator.prior,
            index,
            weights,
            group["value"].to_numpy(np.float64).reshape(len(times), len(network)),
            float(group["sigma_o"].iloc[0]),
            generator.generator_std,
            generator.seasonal.at(times),
            a,
            analysis.day_seeds(a.seed, times),
            generator.error_inflation,
            generator.spread_inflation,
        )
        analysed.update(zip(times, ensemble.members, strict=True))
    days = np.sort(np.array(list(analysed), dtype="datetime64[ns]"))
    stack = np.stack([analysed[day] for day in days]).astype(np.float32)
    result = xr.Dataset(
        {
            "mean": (("time", "lat", "lon"), stack.mean(axis=1), {"units": "K"}),
            "spread": (("time", "lat", "lon"), stack.std(axis=1, ddof=1), {"units": "K"}),
            "members": (("time", "member", "lat", "lon"), stack, {"units": "K"}),
        },
        coords={"time": days, "member": np.arange(a.members), "lat": grid.lat, "lon": grid.lon},
        attrs={"recipe": recipe.model_dump_json(), "model": recipe.model_name, "observations": observations or Paths.of(lake).observations},
    )
    target = analysis_path(lake, recipe.model_name)
    with lake.replace_whole(target) as staging:
        result.to_zarr(staging, mode="w-", zarr_format=3, consolidated=True)
    return target


def _same_network_days(table: pd.DataFrame) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """Groups of days with identical stations (same order) and ``sigma_o``: ``(network lat/lon, rows sorted by day)``."""
    table = table.sort_values("time", kind="stable")
    keys = {
        time: (tuple(rows["lat"]), tuple(rows["lon"]), float(rows["sigma_o"].iloc[0])) for time, rows in table.groupby("time", sort=True)
    }
    groups = []
    for key in dict.fromkeys(keys.values()):
        rows = table[table["time"].isin([t for t, k in keys.items() if k == key])]
        groups.append((pd.DataFrame({"lat": key[0], "lon": key[1]}), rows))
    return groups


def fields_table(fields: xr.Dataset) -> pd.DataFrame:
    """One row per day for the ``da_fields`` suite."""
    values = fields["anomaly"].values.reshape(fields.sizes["time"], -1).astype(np.float64)
    with np.errstate(invalid="ignore"):
        return pd.DataFrame(
            {
                "time": fields["time"].values,
                "mean": np.nanmean(values, axis=1),
                "std": np.nanstd(values, axis=1),
                "min": np.nanmin(values, axis=1),
                "max": np.nanmax(values, axis=1),
                "nan_share": np.isnan(values).mean(axis=1),
            }
        )


def validate_inputs(lake: Lake, observations: str | None = None, fields: bool = True) -> list[Any]:
    """The ``da_observations`` suite, and ``da_fields`` unless ``fields`` is false (the analysis alone reads no fields).

    A failure quarantines the dataset and raises ``InputError``.
    """
    from ml4l.quality import validate

    table_path = observations or Paths.of(lake).observations
    with lake.fs.open(table_path, "rb") as handle:
        table = pd.read_parquet(handle)
    outcomes = [validate(lake, "da_fields", "fields", fields_table(read_fields(lake)))] if fields else []
    outcomes.append(validate(lake, "da_observations", Path(table_path).stem, table))
    failed = [o for o in outcomes if not o.success]
    if failed:
        raise InputError(Paths.of(lake).fields if failed[0].dataset == "da_fields" else table_path, failed[0].summary())
    return outcomes


def first_test_days(recipe: AssimilationRecipe, count: int = 3) -> tuple[str, str]:
    """The first ``count`` days of the test set (after the gap), as ``YYYY-MM-DD`` bounds."""
    f = recipe.fields
    days = pd.date_range(f"{f.first_year}-01-01", f"{f.first_year + f.years - 1}-12-31", freq="D")
    test = days[split_labels(days.values, recipe) == splits.TEST]
    return str(test[0].date()), str(test[min(count, len(test)) - 1].date())
