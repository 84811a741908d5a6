from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr

from ml4l.config import Recipe
from ml4l.lake import Lake
from ml4l.usecases.lst.sample import ModisGrid, hours_since_epoch
from ml4l.synthetic import SyntheticEarth


def read_geotiff(path: str) -> tuple[np.ndarray, np.ndarray, rasterio.Affine]:
    """LST (K) and local view hour of a sample GeoTIFF, NaN where the band holds its fill 0."""
    with rasterio.open(path) as src:
        assert src.descriptions == ("LST_Day", "Day_view_time")
        lst, view = (np.where(src.read(b) == 0, np.nan, src.read(b) * src.scales[b - 1]).astype(np.float32) for b in (1, 2))
        return lst, view, src.transform


def test_modis_files_decode_to_the_same_observations(sample_lake: Lake, tiny_recipe: Recipe) -> None:
    day = "2019-02-01"
    lst, view, transform = read_geotiff(sample_lake.modis(day, "tif"))
    nc = xr.open_dataset(sample_lake.modis(day, "nc"), engine="h5netcdf")
    assert nc.LST_Day.attrs["units"] == "K"
    np.testing.assert_allclose(nc.LST_Day.values, lst, atol=0.011)
    np.testing.assert_allclose(nc.Day_view_time.values, view, atol=0.051)
    grid = ModisGrid(tiny_recipe.sample.modis_resolution)
    assert lst.shape == grid.shape
    assert (transform.c, transform.f, transform.a) == (-180.0, 90.0, grid.resolution)
    seen = ~np.isnan(lst)
    assert 0.05 < seen.mean() < 0.5, "land, swath and cloud leave a minority of pixels observed"
    assert np.array_equal(seen, ~np.isnan(view))
    assert 200 < np.nanmin(lst) and np.nanmax(lst) < 340
    assert 12.0 < np.nanmin(view) and np.nanmax(view) < 15.0


def test_each_utc_hour_is_a_longitude_strip(sample_lake: Lake) -> None:
    _, view, _ = read_geotiff(sample_lake.modis("2019-01-01", "tif"))
    lon = ModisGrid(2.0).lon
    utc = (view - lon[None, :] / 15.0) % 24
    rows, cols = np.nonzero(~np.isnan(utc))
    hours = np.floor(utc[rows, cols]).astype(int)
    for hour in np.unique(hours):
        span = lon[cols[hours == hour]]
        assert np.ptp(span) < 60 or np.ptp((span + 360) % 360) < 60, f"hour {hour} spans {np.ptp(span)} degrees"


@pytest.fixture(scope="module")
def observed() -> dict[str, np.ndarray]:
    """ERA skt and MODIS truth at observed land pixels of one day, on a 1 degree grid."""
    earth = SyntheticEarth(20190101)
    grid = ModisGrid(1.0)
    lat, lon = (a.ravel() for a in np.meshgrid(grid.lat, grid.lon, indexing="ij"))
    day_start = hours_since_epoch(pd.Timestamp("2019-01-01"))[0]
    t, _ = earth.overpass(lat, lon, day_start)
    seen = ~np.isnan(t) & (earth.land_sea_mask(lat, lon) > 0.5) & (np.abs(lat) < 70)
    seen[seen] = ~earth.cloudy(lat[seen], lon[seen], t[seen])
    lat, lon, t = lat[seen], lon[seen], t[seen]
    v15, v20 = earth.constants(lat, lon, 15), earth.constants(lat, lon, 20)
    era = earth.weather(lat, lon, t, v15)
    lst = earth.lst(lat, lon, t, 1, np.random.default_rng(0))
    constants = {f"{k}_v{version}": v for version, c in ((15, v15), (20, v20)) for k, v in c.items()}
    return {"lst": lst, **era, **constants, "clake": earth.lake_cover(v20["cl"], lat, 1)}


def test_era_skt_is_biased_cold_against_the_truth_except_on_melting_ice(observed: dict[str, np.ndarray]) -> None:
    error = observed["skt"] - observed["lst"]
    ice = observed["si10_v20"] > 0.5
    assert -4.5 < error[~ice].mean() < -2.5
    assert 3.0 < np.abs(error[~ice]).mean() < 4.5
    melting = ice & (observed["skt"] > 280.0)
    assert melting.sum() > 10 and error[melting].mean() > 5.0  # the truth stays at 273.15 K


def test_the_truth_is_learnable_from_era_fields(observed: dict[str, np.ndarray]) -> None:
    from sklearn.ensemble import HistGradientBoostingRegressor

    features = np.column_stack([v for k, v in observed.items() if k != "lst"])
    target = observed["lst"] - observed["skt"]
    order = np.random.default_rng(0).permutation(target.size)  # learnable, not extrapolated across hemispheres
    train, test = order[: target.size // 2], order[target.size // 2 :]
    model = HistGradientBoostingRegressor(max_iter=200, random_state=0).fit(features[train], target[train])
    model_mae = np.abs(model.predict(features[test]) - target[test]).mean()
    skt_mae = np.abs(target[test]).mean()
    # seed 000 reached 2.90 K against skt's 3.86 K on real data, a ratio of 0.75
    assert model_mae < 0.7 * skt_mae, f"model MAE {model_mae:.2f} K vs skt {skt_mae:.2f} K"


def test_the_generator_is_deterministic(tiny_recipe: Recipe) -> None:
    earth = SyntheticEarth(tiny_recipe.sample.seed)
    lat, lon = np.array([10.0, -45.0, 89.9]), np.array([0.0, 359.9, 180.0])
    first = earth.weather(lat, lon, 430000.0)
    again = SyntheticEarth(tiny_recipe.sample.seed).weather(lat, lon, 430000.0)
    for name in first:
        np.testing.assert_array_equal(first[name], again[name])


def test_noise_is_continuous_across_the_seam_and_the_pole() -> None:
    earth = SyntheticEarth(1)
    lat = np.array([30.0, 30.0, 89.999, 89.999])
    lon = np.array([-1e-6, 359.999999, 0.0, 180.0])
    constants = earth.constants(lat, lon, 20)
    for name, values in constants.items():
        assert abs(values[0] - values[1]) < 1e-3 * (1 + abs(values[0])), name
