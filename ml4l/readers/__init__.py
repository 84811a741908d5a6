"""Readers of the input formats, one package per source (GRIB, MODIS), each format recognised by its content."""
