"""Where the tiles use case keeps its files in the lake (every path of the use case is built here).

::

    raw/tiles/<name>/tiles.geojson                      tile polygons (EPSG:4326) with id, region, date
    raw/tiles/<name>/stacks/<tile>.tif                  the downloaded multi-band stack (float32, NaN = no data)
    raw/tiles/<name>/stacks/<tile>_tile_info.json       its bands, CRS, bounds, date, missing modalities
    raw/tiles/<name>/late/                              downloads that finish after the build (the demo's re-download)
    raw/tiles/<name>/truth/noise_free.parquet           tile mean LST without sensor noise (for the oracle only)
    tiles/<name>/ledger.sqlite                          per-tile state: pending, done, failed (reason, attempts)
    tiles/<name>/parts/<tile>.npz                       a checked tile's arrays, committed before the ledger says done
    tiles/<name>/<name>.h5                              the MMEarth-layout HDF5, and beside it
    tiles/<name>/<name>_band_stats.json, _splits.json, _tile_info.json
    tiles/platform/                                     a small platform lake (ERA store, MODIS), when the lake has none
"""

from __future__ import annotations

from dataclasses import dataclass

from ml4l.lake import Lake


@dataclass(frozen=True)
class RawTiles:
    """The downloaded inputs of a tile set under ``root`` (``raw/tiles/<name>``, or its staging copy)."""

    root: str

    @property
    def geojson(self) -> str:
        return f"{self.root}/tiles.geojson"

    def stack(self, tile: str, late: bool = False) -> str:
        return f"{self.root}/{'late' if late else 'stacks'}/{tile}.tif"

    def tile_info(self, tile: str, late: bool = False) -> str:
        return f"{self.root}/{'late' if late else 'stacks'}/{tile}_tile_info.json"

    def folder(self, late: bool = False) -> str:
        return f"{self.root}/{'late' if late else 'stacks'}"

    @property
    def truth(self) -> str:
        return f"{self.root}/truth/noise_free.parquet"


@dataclass(frozen=True)
class TilesLake:
    """The paths of tile set ``name`` inside ``lake``."""

    lake: Lake
    name: str

    @property
    def raw(self) -> RawTiles:
        return RawTiles(self.lake.usecase_raw("tiles", self.name))

    def product(self, *parts: str) -> str:
        return self.lake.usecase("tiles", self.name, *parts)

    @property
    def ledger(self) -> str:
        return self.product("ledger.sqlite")

    def part(self, tile: str) -> str:
        return self.product("parts", f"{tile}.npz")

    @property
    def hdf5(self) -> str:
        return self.product(f"{self.name}.h5")

    @property
    def band_stats(self) -> str:
        return self.product(f"{self.name}_band_stats.json")

    @property
    def splits(self) -> str:
        return self.product(f"{self.name}_splits.json")

    @property
    def merged_tile_info(self) -> str:
        return self.product(f"{self.name}_tile_info.json")

    @property
    def lock(self) -> str:
        """The lake lock held by whoever builds this tile set."""
        return f"tiles-{self.name}"


def platform_lake(lake: Lake) -> Lake:
    """The small platform lake the use case writes when ``lake`` holds no ERA store of its own."""
    return Lake(lake.usecase("tiles", "platform"))
