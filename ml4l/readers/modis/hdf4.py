"""HDF4-EOS MOD11A1/MYD11A1 tiles as NASA distributes them, read with pyhdf (this GDAL has no HDF4 driver).

The tile's grid comes from its ``StructMetadata.0``: ``XDim`` x ``YDim`` cells between
``UpperLeftPointMtrs`` and ``LowerRightMtrs`` on the sinusoidal projection of a sphere of
radius ``ProjParams[0]`` (6371007.181 m). Its date is ``RANGEBEGINNINGDATE`` in
``CoreMetadata.0``; its footprint the bounding coordinates in ``ArchiveMetadata.0``.
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import xarray as xr

from ml4l.errors import InputError
from ml4l.readers.modis.day import (
    LST_FILL,
    LST_SCALE,
    VIEW_TIME_FILL,
    VIEW_TIME_SCALE,
    FileFacts,
    Layers,
    check_dates,
    day_dataset,
    platform_of,
)

MAGIC = b"\x0e\x03\x13\x01"
SINUSOIDAL = "GCTP_SNSOID"
EARTH_RADIUS = 6371007.181
"""The MODIS land grid's sphere, metres."""
TILES = (36, 18)
"""Tiles across (h) and down (v) the sinusoidal world."""


def odl_value(text: str, name: str) -> str | None:
    """The ``VALUE`` of ``OBJECT = name`` in ECS ODL metadata, quotes removed; ``None`` if absent."""
    found = re.search(rf"OBJECT\s*=\s*{name}\b.*?VALUE\s*=\s*(.+?)\s*\n", text, re.S)
    return found[1].strip().strip('"') if found else None


def struct_value(text: str, name: str) -> str:
    """``name=value`` of ``StructMetadata.0``."""
    found = re.search(rf"\b{name}=([^\n]+)", text)
    if not found:
        raise KeyError(name)
    return found[1].strip()


def _pair(text: str) -> tuple[float, float]:
    x, y = text.strip("()").split(",")
    return float(x), float(y)


class SinusoidalGrid:
    """Cell centres of an HDF-EOS sinusoidal grid (``GridOrigin=HDFE_GD_UL``, rows north to south)."""

    def __init__(self, upper_left: tuple[float, float], lower_right: tuple[float, float], shape: tuple[int, int], radius: float) -> None:
        self.x0, self.y0 = upper_left
        rows, cols = shape
        self.dx = (lower_right[0] - upper_left[0]) / cols
        self.dy = (upper_left[1] - lower_right[1]) / rows
        self.shape, self.radius = shape, radius

    @classmethod
    def tile(cls, h: int, v: int, cells: int) -> SinusoidalGrid:
        """Tile ``h``/``v`` of the MODIS land grid with ``cells`` x ``cells`` cells (1200 for the 1 km products)."""
        half_width = np.pi * EARTH_RADIUS
        size = 2 * half_width / TILES[0]
        if not (0 <= h < TILES[0] and 0 <= v < TILES[1]):
            raise ValueError(f"no MODIS tile h{h:02d}v{v:02d}")
        upper_left = (-half_width + h * size, half_width / 2 - v * size)
        return cls(upper_left, (upper_left[0] + size, upper_left[1] - size), (cells, cells), EARTH_RADIUS)

    def lat_lon(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Latitude and longitude of cell centres; NaN longitude where the cell is off the Earth."""
        x = self.x0 + (np.asarray(cols, dtype=np.float64) + 0.5) * self.dx
        y = self.y0 - (np.asarray(rows, dtype=np.float64) + 0.5) * self.dy
        lat = np.degrees(y / self.radius)
        with np.errstate(divide="ignore", invalid="ignore"):
            lon = np.degrees(x / (self.radius * np.cos(np.radians(lat))))
        lon[~(np.abs(lon) <= 180.0)] = np.nan
        return lat, lon

    def bounds(self) -> tuple[float, float, float, float]:
        """(south, north, west, east) of the cell centres on the Earth."""
        rows, cols = self.shape
        edge_rows = np.r_[np.zeros(cols), np.full(cols, rows - 1), np.arange(rows), np.arange(rows)]
        edge_cols = np.r_[np.arange(cols), np.arange(cols), np.zeros(rows), np.full(rows, cols - 1)]
        lat, lon = self.lat_lon(edge_rows, edge_cols)
        # the widest row is the one nearest the equator
        widest = int(np.argmin(np.abs(self.y0 - (np.arange(rows) + 0.5) * self.dy)))
        row_lat, row_lon = self.lat_lon(np.full(cols, widest), np.arange(cols))
        lon = np.r_[lon, row_lon]
        return float(lat.min()), float(lat.max()), float(np.nanmin(lon)), float(np.nanmax(lon))


def tile_grid(struct: str, source: str) -> SinusoidalGrid:
    """The grid of a tile's ``StructMetadata.0``; refuses any projection but the sinusoidal."""
    try:
        projection = struct_value(struct, "Projection")
        if projection != SINUSOIDAL:
            raise InputError(source, f"grid projection {projection}, expected {SINUSOIDAL}")
        radius = float(struct_value(struct, "ProjParams").strip("()").split(",")[0])
        return SinusoidalGrid(
            _pair(struct_value(struct, "UpperLeftPointMtrs")),
            _pair(struct_value(struct, "LowerRightMtrs")),
            (int(struct_value(struct, "YDim")), int(struct_value(struct, "XDim"))),
            radius,
        )
    except (KeyError, ValueError) as exc:
        raise InputError(source, f"StructMetadata.0 has no usable grid: {exc}") from exc


def read(path: str, source: str, max_error_k: int | None, night: bool) -> list[xr.Dataset]:
    """The tile's day (or night) as a one-element list of ``read_modis`` datasets."""
    from pyhdf.error import HDF4Error
    from pyhdf.SD import SD, SDC

    half = "Night" if night else "Day"
    names = {"lst": f"LST_{half}_1km", "qc": f"QC_{half}", "view_time": f"{half}_view_time"}
    try:
        hdf = SD(path, SDC.READ)
    except HDF4Error as exc:
        raise InputError(source, f"cannot read HDF4: {exc}") from exc
    try:
        attributes = hdf.attributes()
        missing = [n for n in ("StructMetadata.0", "CoreMetadata.0") if n not in attributes]
        if missing:
            raise InputError(source, f"not an HDF-EOS MODIS granule: no {', '.join(missing)}")
        core = attributes["CoreMetadata.0"]
        product = odl_value(core, "SHORTNAME") or ""
        try:
            platform = platform_of(product)
        except ValueError as exc:
            raise InputError(source, str(exc)) from exc
        begins = odl_value(core, "RANGEBEGINNINGDATE")
        dates, date_source = check_dates(source, [dt.date.fromisoformat(begins)] if begins else [], source)
        grid = tile_grid(attributes["StructMetadata.0"], source)
        present = set(hdf.datasets())
        absent = [n for n in names.values() if n not in present]
        if absent:
            raise InputError(source, f"missing layer(s) {', '.join(absent)}")
        raw = {key: hdf.select(name) for key, name in names.items()}
        scales = {
            key: float(sds.attributes().get("scale_factor", default))
            for (key, sds), default in zip(raw.items(), (LST_SCALE, 1.0, VIEW_TIME_SCALE), strict=True)
        }
        arrays = {key: sds.get() for key, sds in raw.items()}
        lst_fill = int(raw["lst"].attributes().get("_FillValue", LST_FILL))
        view_fill = int(raw["view_time"].attributes().get("_FillValue", VIEW_TIME_FILL))
        archive = attributes.get("ArchiveMetadata.0", "")
    except HDF4Error as exc:
        raise InputError(source, f"cannot read HDF4: {exc}") from exc
    finally:
        hdf.end()
    if arrays["lst"].shape != grid.shape:
        raise InputError(source, f"{names['lst']} is {arrays['lst'].shape}, StructMetadata says {grid.shape}")
    lst = np.where(arrays["lst"] == lst_fill, np.nan, arrays["lst"] * np.float32(scales["lst"])).astype(np.float32)
    view = np.where(arrays["view_time"] == view_fill, np.nan, arrays["view_time"] * scales["view_time"])
    facts = FileFacts(source, product, platform, names["lst"], "hdf4", _footprint(archive, grid), scales["lst"], date_source)
    layers = Layers(lst, arrays["qc"].astype(np.int16), view, grid.lat_lon)
    return [day_dataset(facts, dates[0], layers, max_error_k)]


def _footprint(archive: str, grid: SinusoidalGrid) -> tuple[float, float, float, float]:
    """The granule's bounding coordinates as NASA states them, else as the grid gives them."""
    sides = [odl_value(archive, f"{side}BOUNDINGCOORDINATE") for side in ("SOUTH", "NORTH", "WEST", "EAST")]
    if all(sides):
        south, north, west, east = (float(v) for v in sides)  # type: ignore[arg-type]
        return south, north, west, east
    return grid.bounds()
