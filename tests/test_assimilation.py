"""Assimilation use case (seed 004): fields, split, scores, baselines, and a tiny end-to-end run with MLflow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.stats import chisquare

from ml4l.config import RecipeError
from ml4l.errors import InputError
from ml4l.lake import Lake
from ml4l.ml import splits
from ml4l.usecases.assimilation import analysis, baselines, pipeline, scores
from ml4l.usecases.assimilation.fields import Grid, front_scale, interpolate, interpolation_weights, synthetic_fields
from ml4l.usecases.assimilation.recipe import AssimilationRecipe, load_recipe

TINY = {
    "fields": {"ny": 16, "nx": 16, "years": 4, "first_year": 2001, "correlation_km": 1500.0},
    "stations": {"dense": 40, "sparse": 10},
    "split": {"train": [2001, 2002], "validation": [2003, 2003], "test": [2004, 2004]},
    "vae": {"latent": 8, "epochs": 3, "batch_size": 128},
    "analysis": {"members": 6, "iterations": 30, "member_iterations": 10, "test_days": 4, "rank_thinning": 2},
}


def test_recipe_errors_name_the_file_and_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("stations: {sigma_o: -1}\nvae: {latnt: 4}\n")
    with pytest.raises(RecipeError) as error:
        load_recipe(path)
    message = str(error.value)
    assert str(path) in message and "stations.sigma_o" in message and "vae.latnt" in message


def test_fields_have_the_documented_seasonal_spread_and_persistence() -> None:
    config = AssimilationRecipe.model_validate(TINY).fields
    anomaly = synthetic_fields(config)["anomaly"]
    months = anomaly["time"].dt.month
    winter = float(anomaly.where(months == 1, drop=True).std())
    summer = float(anomaly.where(months == 7, drop=True).std())
    # std(day of year) runs from 4.5 K (mid January) to 2.5 K (mid July); months average around those
    assert 4.0 < winter < 5.0 and 2.2 < summer < 2.8
    series = anomaly.values[:, 8, 8]
    lag1 = np.corrcoef(series[1:], series[:-1])[0, 1]
    # the AR(1) latent has persistence 0.7; tanh and the seasonal scale move the anomaly's a little
    assert 0.55 < lag1 < 0.8
    z = np.random.default_rng(0).standard_normal(400_000)
    assert front_scale(1.2) == pytest.approx(np.tanh(1.2 * z).std(), rel=5e-3)


def test_split_is_contiguous_years_with_a_gap_and_leak_free() -> None:
    recipe = AssimilationRecipe.model_validate(TINY)
    days = pd.date_range("2001-01-01", "2004-12-31", freq="D").values
    labels = pipeline.split_labels(days, recipe)
    for label in (splits.TRAIN, splits.VALIDATION, splits.TEST):
        chosen = np.flatnonzero(labels == label)
        assert (np.diff(chosen) == 1).all()  # contiguous
    gap = days[labels == splits.VALIDATION].min() - days[labels == splits.TRAIN].max()
    assert gap > np.timedelta64(30, "D")
    assert np.array_equal(labels, pipeline.split_labels(days, recipe))
    shuffled = labels.copy()
    shuffled[5] = splits.TEST
    with pytest.raises(splits.LeakageError):
        splits.check_time_leakage(days, shuffled, gap=np.timedelta64(30, "D"))


def test_scores_of_a_calibrated_ensemble() -> None:
    rng = np.random.default_rng(3)
    n, k = 20_000, 10
    centre = rng.normal(size=n)
    truth = centre + rng.normal(size=n)
    members = centre[:, None] + rng.normal(size=(n, k))
    ratio = scores.spread_skill_ratio(members, truth)
    # sampling error of a ratio of variances over n samples: ~ 1/sqrt(n) each; 5 sigma
    assert abs(ratio - 1) < 5 * np.sqrt(2 / n)
    counts, p_value = scores.rank_histogram(members, truth)
    assert counts.sum() == n and len(counts) == k + 1 and p_value > 1e-4
    _, p_under = scores.rank_histogram(members * 0.5 + centre[:, None] * 0.5, truth)
    assert p_under < 1e-6  # an under-dispersed ensemble is caught
    pairs = np.abs(members[:50, :, None] - members[:50, None, :]).sum(axis=(1, 2)) / (2 * k * (k - 1))
    brute = np.mean(np.abs(members[:50] - truth[:50, None]).mean(axis=1) - pairs)
    assert scores.crps(members[:50], truth[:50]) == pytest.approx(brute, rel=1e-12)
    # inflating the under-dispersed members by the inverse of their ratio restores the ratio, and keeps the mean
    under = (members * 0.5 + centre[:, None] * 0.5)[:, None, :].swapaxes(1, 2)  # (n, members, 1)
    factor = 1 / scores.spread_skill_ratio(under[..., 0], truth)
    restored = analysis.inflate(under, factor)[..., 0]
    assert scores.spread_skill_ratio(restored, truth) == pytest.approx(1.0, rel=1e-9)
    np.testing.assert_allclose(restored.mean(axis=1), under[..., 0].mean(axis=1), atol=1e-12)


def test_flattest_inflation_restores_a_narrow_ensemble_and_ignores_heavy_tails() -> None:
    rng = np.random.default_rng(11)
    n, k = 20_000, 10
    centre = rng.normal(size=n)
    members = centre[:, None] + 0.5 * rng.normal(size=(n, k))  # half the spread of the error below
    truth = centre + rng.normal(size=n)
    factors = np.geomspace(1.0, 4.0, 555)
    factor, statistic = scores.flattest_inflation(members, truth, factors)
    # Gaussian errors: the flattest factor is the one of spread/skill 1, sqrt(1.025 / (0.25 * 11 / 10)) = 1.93 (the
    # ensemble mean's own error, 0.5 / sqrt(k), is not inflated). The spread's estimate over n cases is good to
    # ~1/sqrt(2 n k), the histogram's to a few times that, the grid's step is 0.25%: 0.05 is many of each
    assert factor == pytest.approx(1 / scores.spread_skill_ratio(members, truth), abs=0.05)
    inflated = analysis.inflate(members[:, :, None], factor)[..., 0]
    counts, _ = scores.rank_histogram(inflated, truth)
    assert statistic == pytest.approx(chisquare(counts).statistic)
    # heavy tails: 2% of the errors 10 times larger. Matching the RMSE widens every member (ratio-1 factor
    # sqrt((0.98 + 2 + 0.025) / 0.275) = 3.31) and humps the histogram; the flattest factor stays near 2
    wild = rng.random(n) < 0.02
    heavy = centre + rng.normal(size=n) * np.where(wild, 10.0, 1.0)
    by_rmse = 1 / scores.spread_skill_ratio(members, heavy)
    flat, flat_statistic = scores.flattest_inflation(members, heavy, factors)
    assert flat < 0.75 * by_rmse
    rmse_counts, _ = scores.rank_histogram(analysis.inflate(members[:, :, None], by_rmse)[..., 0], heavy)
    assert flat_statistic < chisquare(rmse_counts).statistic


def test_lattice_samples_are_spaced_and_cover_every_cell_alike() -> None:
    mask = np.ones((32, 32), dtype=bool)
    mask[:5, :5] = False
    every, days = 10, 4000
    chosen = scores.lattice_samples(mask, every, days, seed=1)
    assert not chosen[:, :5, :5].any()
    for day in chosen[:20]:
        rows, columns = np.nonzero(day)
        assert len(set(np.diff(np.unique(rows)))) <= 1 and set(np.diff(np.unique(rows))) <= {every}
        assert set(np.diff(np.unique(columns))) <= {every}
    # each cell is chosen on a day with probability 1 / every^2: binomial counts, 5 sigma
    counts = chosen.sum(axis=0)[mask]
    expected = days / every**2
    np.testing.assert_array_less(np.abs(counts - expected), 5 * np.sqrt(expected))


def test_neighbour_correlation_tells_independent_from_smooth_samples() -> None:
    rng = np.random.default_rng(5)
    noise = rng.normal(size=(50, 32, 32))
    mask = np.ones((32, 32), dtype=bool)
    # 50 * 2 * 32 * 31 pairs: the sample correlation of independent values is ~ 1/sqrt(pairs); 5 sigma
    assert abs(scores.neighbour_correlation(noise, mask, 1)) < 5 / np.sqrt(50 * 2 * 32 * 31)
    smooth = np.cumsum(np.cumsum(noise, axis=1), axis=2)  # a random walk in both directions: strongly correlated neighbours
    assert scores.neighbour_correlation(smooth, mask, 1) > 0.9


def test_optimal_interpolation_and_pca_beat_climatology_on_held_out_days() -> None:
    recipe = AssimilationRecipe.model_validate(TINY)
    fields = synthetic_fields(recipe.fields)["anomaly"].values.astype(np.float64)
    grid = Grid.of(recipe.fields)
    rng = np.random.default_rng(0)
    lat, lon = rng.uniform(grid.lat[0], grid.lat[-1], 60), rng.uniform(grid.lon[0], grid.lon[-1], 60)
    index, weights = interpolation_weights(grid, lat, lon)
    train, test = fields[:730], fields[-50:]
    y = interpolate(test, index, weights) + rng.normal(0, 0.5, (50, 60))
    oi = baselines.optimal_interpolation(baselines.GaussianCovariance.fit(train, grid), grid, lat, lon, y, 0.5).reshape(test.shape)
    pca = baselines.PCAPrior.fit(train, 8).analyse(index, weights, y, 0.5).reshape(test.shape)
    climatology = scores.rmse(test, np.zeros_like(test))
    assert scores.rmse(test, oi) < 0.6 * climatology and scores.rmse(test, pca) < 0.6 * climatology


def test_members_of_a_linear_generator_sample_the_exact_gaussian_posterior() -> None:
    """With g(u) = W u the latent posterior is N(m, C), C = (I + J'J / sigma^2)^-1, m = C J' y / sigma^2, J = H W."""
    from ml4l.ml.trainer import import_keras

    keras = import_keras()
    latent, side, stations, members, sigma, rate = 4, 8, 12, 4000, 0.3, 0.05
    rng = np.random.default_rng(11)
    w = rng.normal(size=(latent, side * side))
    layers = [keras.Input((latent,)), keras.layers.Dense(side * side, use_bias=False), keras.layers.Reshape((side, side, 1))]
    decoder = keras.Sequential(layers)
    decoder.layers[0].set_weights([w.astype(np.float32)])
    grid = Grid(np.arange(side, dtype=np.float64), np.arange(side, dtype=np.float64))
    index, weights = interpolation_weights(grid, rng.uniform(0, side - 1, stations), rng.uniform(0, side - 1, stations))
    jacobian = interpolate(w.reshape(latent, side, side), index, weights)  # (latent, stations) = (H W)'
    y = rng.normal(size=(1, stations))
    covariance = np.linalg.inv(np.eye(latent) + jacobian @ jacobian.T / sigma**2)
    mean = covariance @ jacobian @ y[0] / sigma**2
    prior = analysis.LatentPrior(np.zeros(latent), np.eye(latent))
    fields = analysis.ensemble_fields(
        decoder, prior, index, weights, y, sigma, 0.0, np.ones(1), members, 400, rate, 0, rate, analysis.day_seeds(0, ["2014-01-01"])
    )
    u = np.linalg.lstsq(w.T, fields[0].reshape(members, -1).T, rcond=None)[0].T  # back to the latent vectors
    standard_error = np.sqrt(np.diag(covariance) / members)
    # Adam ends within about one learning rate of the MAP; the rest is Monte Carlo error (5 sigma)
    np.testing.assert_array_less(np.abs(u.mean(axis=0) - mean), rate + 5 * standard_error)
    relative = np.abs(np.diag(np.cov(u, rowvar=False)) / np.diag(covariance) - 1)
    np.testing.assert_array_less(relative, 5 * np.sqrt(2 / members))


def test_observations_outside_the_grid_or_nan_are_refused_and_nothing_is_written(tmp_path: Path) -> None:
    lake = Lake.at(str(tmp_path))
    grid = Grid.of(AssimilationRecipe.model_validate(TINY).fields)
    for name, lat, value, problem in (("outside.parquet", 89.0, 1.0, "outside the grid"), ("nan.parquet", grid.lat[3], np.nan, "NaN")):
        table = pd.DataFrame({"time": [pd.Timestamp("2004-03-01")], "id": ["S1"], "lat": [lat], "lon": [grid.lon[2]], "value": [value],
                              "sigma_o": [0.5]})
        path = tmp_path / name
        table.to_parquet(path)
        with pytest.raises(InputError, match=problem) as error:
            pipeline.assimilate_range(lake, AssimilationRecipe.model_validate(TINY), "2004-03-01", "2004-03-01", str(path))
        assert str(path) in str(error.value)
    assert not Path(pipeline.analysis_path(lake, "ml4l-assimilation-vae")).exists()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Lake, AssimilationRecipe, dict]:
    lake = Lake.at(str(tmp_path_factory.mktemp("da-lake")))
    recipe = AssimilationRecipe.model_validate(TINY)
    pipeline.write_inputs(lake, recipe)
    pipeline.validate_inputs(lake)
    return lake, recipe, pipeline.train_and_score(lake, recipe)


def test_training_logs_the_contract_metrics_to_mlflow(trained: tuple[Lake, AssimilationRecipe, dict]) -> None:
    import mlflow

    lake, _, result = trained
    run = mlflow.MlflowClient().get_run(result["run_id"])
    assert mlflow.get_experiment(run.info.experiment_id).name == "ml4l-assimilation"
    names = {"test_rmse", "oracle_test_rmse", "baseline_climatology_test_rmse", "baseline_pca_test_rmse", "baseline_oi_test_rmse",
             "gap_closed", "spread_skill_ratio", "rank_histogram_chi2_pvalue", "test_crps"}
    assert names <= set(run.data.metrics)
    m = run.data.metrics
    best = min(m[f"baseline_{b}_test_rmse"] for b in ("climatology", "pca", "oi"))
    if best > m["oracle_test_rmse"]:
        assert m["gap_closed"] == pytest.approx((best - m["test_rmse"]) / (best - m["oracle_test_rmse"]))
    else:  # a 3-epoch generator can be worse than a baseline even with the full field: no gap to close
        assert np.isnan(m["gap_closed"])
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(result["run_id"], "plots")}
    assert artifacts == {"plots/test_day_map.png", "plots/rank_histogram.png"}
    assert run.data.params["recipe.kind"] == "assimilation"
    # per candidate error inflation, the spread inflation of the flattest validation rank histogram; the lowest CRPS wins
    a = AssimilationRecipe.model_validate(TINY).analysis

    def per_candidate(name: str) -> dict[str, float]:
        return {k.removeprefix(f"validation_{name}_"): v for k, v in m.items() if k.startswith(f"validation_{name}_inflation_")}

    crps, raw, factor = per_candidate("crps"), per_candidate("spread_skill_raw"), per_candidate("spread_inflation")
    assert crps.keys() == raw.keys() == factor.keys() == per_candidate("rank_chi2").keys() and len(crps) == len(a.error_inflations)
    chosen = min(crps, key=crps.__getitem__)
    assert chosen == f"inflation_{float(run.data.params['error_inflation']):g}".replace(".", "_")
    assert float(run.data.params["spread_inflation"]) == pytest.approx(factor[chosen])
    for c in crps:  # searched from half to twice the factor that makes the spread/skill ratio 1
        assert 0.5 / raw[c] * (1 - 1e-9) <= factor[c] <= 2 / raw[c] * (1 + 1e-9)


def test_analysis_is_written_and_reproducible(trained: tuple[Lake, AssimilationRecipe, dict]) -> None:
    lake, recipe, _ = trained
    start, end = pipeline.first_test_days(recipe, 2)
    first = pipeline.assimilate_range(lake, recipe, start, end)
    a = xr.open_zarr(first).load()
    assert a["members"].shape == (2, recipe.analysis.members, 16, 16)
    np.testing.assert_allclose(a["mean"], a["members"].mean("member"), rtol=1e-6, atol=1e-6)
    second = xr.open_zarr(pipeline.assimilate_range(lake, recipe, start, end)).load()
    np.testing.assert_array_equal(a["members"].values, second["members"].values)
    assert not [p for p in Path(lake.root, "da").rglob("*") if ".tmp" in p.name or ".old" in p.name]
