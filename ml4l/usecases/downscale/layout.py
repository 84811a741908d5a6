"""Where the downscaling use case keeps its files in the lake (every path of the use case is built here).

::

    raw/downscale/lst_israel_YYYY.nc                  yearly LST, the seed's NetCDF form (0.02 K, 4 bands)
    raw/downscale/srtm_israel.tif                     int16 SRTM-like elevation on the same grid
    raw/downscale/truth/lst_noise_free_YYYY.nc        the synthetic truth without noise, K (for the oracle)
    downscale/datasets/<name>/                        patches, splits and scalers (see ``dataset.py``)
"""

from __future__ import annotations

from dataclasses import dataclass

from ml4l.lake import Lake


@dataclass(frozen=True)
class DownscaleLake:
    """The use case's paths inside ``lake``."""

    lake: Lake

    def lst(self, year: int) -> str:
        return self.lake.usecase_raw("downscale", f"lst_israel_{year}.nc")

    def dem(self) -> str:
        return self.lake.usecase_raw("downscale", "srtm_israel.tif")

    def truth(self, year: int) -> str:
        return self.lake.usecase_raw("downscale", "truth", f"lst_noise_free_{year}.nc")

    def dataset(self, name: str) -> str:
        return self.lake.usecase("downscale", "datasets", name)

    @staticmethod
    def shard_name(day: int) -> str:
        """A day's shard, relative to its data set."""
        return f"shards/day-{day:03d}.npz"

    def split_dir(self, dataset: str, kind: str) -> str:
        return f"{dataset}/splits/{kind}"

    def manifest(self, dataset: str) -> str:
        return f"{dataset}/manifest.json"
