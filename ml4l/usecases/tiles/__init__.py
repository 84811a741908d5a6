"""Multi-modal tiles (seed 003, MMEarth): per-tile GeoTIFF stacks checked, ledgered and written into one HDF5.

``recipe`` (typed recipe), ``layout`` (every path of the use case), ``platform`` (the modalities the
platform owns: ERA t2m statistics and MODIS LST, read from the lake), ``sample`` (inputs in the seed's
forms), ``ledger`` (per-tile state), ``check`` (the Great Expectations check per tile), ``build``
(parallel per-tile preparation, one HDF5 writer, band statistics, splits) and ``model`` (a small
model on the stack).
"""
