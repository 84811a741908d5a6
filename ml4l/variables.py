"""The ERA variables ml4l reads: GRIB parameter ids, store names, units and physical ranges."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Group = Literal["sfc", "skin", "constant"]


@dataclass(frozen=True)
class Variable:
    """One ERA field.

    ``name`` is the ERA short name used in stores and tables (``t2m``), ``param_id``
    the GRIB parameter (ECMWF table 128 / 228), ``valid_range`` a loose physical range.
    """

    name: str
    param_id: int
    units: str
    long_name: str
    group: Group
    valid_range: tuple[float, float]


TIME_VARIABLE: tuple[Variable, ...] = (
    Variable("sp", 134, "Pa", "Surface pressure", "sfc", (4.0e4, 1.1e5)),
    Variable("msl", 151, "Pa", "Mean sea level pressure", "sfc", (8.5e4, 1.1e5)),
    Variable("u10", 165, "m s**-1", "10 metre U wind component", "sfc", (-80.0, 80.0)),
    Variable("v10", 166, "m s**-1", "10 metre V wind component", "sfc", (-80.0, 80.0)),
    Variable("t2m", 167, "K", "2 metre temperature", "sfc", (180.0, 340.0)),
    Variable("d2m", 168, "K", "2 metre dewpoint temperature", "sfc", (160.0, 320.0)),
    Variable("skt", 235, "K", "Skin temperature", "sfc", (180.0, 360.0)),
    Variable("aluvp", 15, "(0 - 1)", "UV visible albedo for direct radiation", "skin", (0.0, 1.0)),
    Variable("aluvd", 16, "(0 - 1)", "UV visible albedo for diffuse radiation", "skin", (0.0, 1.0)),
    Variable("alnip", 17, "(0 - 1)", "Near IR albedo for direct radiation", "skin", (0.0, 1.0)),
    Variable("alnid", 18, "(0 - 1)", "Near IR albedo for diffuse radiation", "skin", (0.0, 1.0)),
    Variable("istl1", 35, "K", "Ice temperature layer 1", "skin", (180.0, 280.0)),
    Variable("istl2", 36, "K", "Ice temperature layer 2", "skin", (180.0, 280.0)),
    Variable("sd", 141, "m of water equivalent", "Snow depth", "skin", (0.0, 20.0)),
    Variable("fal", 243, "(0 - 1)", "Forecast albedo", "skin", (0.0, 1.0)),
)

CONSTANT: tuple[Variable, ...] = (
    Variable("slt", 43, "~", "Soil type", "constant", (0.0, 7.0)),
    Variable("sdfor", 74, "m", "Standard deviation of filtered subgrid orography", "constant", (0.0, 2000.0)),
    Variable("sdor", 160, "m", "Standard deviation of orography", "constant", (0.0, 2000.0)),
    Variable("lsrh", 234, "~", "Logarithm of surface roughness length for heat", "constant", (-30.0, 5.0)),
    Variable("cvl", 27, "(0 - 1)", "Low vegetation cover", "constant", (0.0, 1.0)),
    Variable("sr", 173, "m", "Surface roughness", "constant", (0.0, 20.0)),
    Variable("lsm", 172, "(0 - 1)", "Land-sea mask", "constant", (0.0, 1.0)),
    Variable("isor", 161, "~", "Anisotropy of sub-gridscale orography", "constant", (0.0, 1.0)),
    Variable("tvl", 29, "~", "Type of low vegetation", "constant", (0.0, 20.0)),
    Variable("tvh", 30, "~", "Type of high vegetation", "constant", (0.0, 20.0)),
    Variable("cvh", 28, "(0 - 1)", "High vegetation cover", "constant", (0.0, 1.0)),
    Variable("si10", 207, "(0 - 1)", "Glacier mask (stored in the 10 m wind speed parameter)", "constant", (0.0, 1.0)),
    Variable("anor", 162, "radians", "Angle of sub-gridscale orography", "constant", (-1.6, 1.6)),
    Variable("cl", 26, "(0 - 1)", "Lake cover", "constant", (0.0, 1.0)),
    Variable("dl", 228007, "m", "Lake total depth", "constant", (0.0, 2000.0)),
    Variable("z", 129, "m**2 s**-2", "Geopotential", "constant", (-5.0e3, 9.0e4)),
    Variable("slor", 163, "~", "Slope of sub-gridscale orography", "constant", (0.0, 1.0)),
)

LAKE_COVER = Variable("clake", 26, "(0 - 1)", "Monthly lake cover", "constant", (0.0, 1.0))
SALINE_LAKE = Variable("cl_saline", 26, "(0 - 1)", "Saline lake fraction", "constant", (0.0, 1.0))

BY_NAME: dict[str, Variable] = {v.name: v for v in TIME_VARIABLE + CONSTANT}
BY_PARAM_ID: dict[int, Variable] = {v.param_id: v for v in TIME_VARIABLE + CONSTANT}
GROUPS: dict[Group, tuple[Variable, ...]] = {
    "sfc": tuple(v for v in TIME_VARIABLE if v.group == "sfc"),
    "skin": tuple(v for v in TIME_VARIABLE if v.group == "skin"),
    "constant": CONSTANT,
}
