"""ml4l: machine learning for land-surface temperature. The science library; it never imports Prefect."""

__version__ = "0.1.0"


def _use_recent_sqlite() -> None:
    """MLflow's SQLite store needs SQLite >= 3.31.

    ``sqlite3`` is bound here, first: a library imported later (geospatial stacks carry
    their own libsqlite3) otherwise supplied SQLite 3.26 symbols to it on this machine.
    If Python's own SQLite is too old, pysqlite3's bundled one is swapped in.
    """
    import sqlite3
    import sys

    if sqlite3.sqlite_version_info >= (3, 31):
        return
    try:
        import pysqlite3.dbapi2
    except ImportError:
        return
    sys.modules["sqlite3"], sys.modules["sqlite3.dbapi2"] = pysqlite3.dbapi2, pysqlite3.dbapi2


_use_recent_sqlite()

__all__ = ["read_grib", "read_modis"]


def __getattr__(name: str) -> object:
    """The public readers, imported on first use: importing ml4l loads neither ecCodes nor HDF4."""
    if name == "read_grib":
        from ml4l.readers.grib import read_grib

        return read_grib
    if name == "read_modis":
        from ml4l.readers.modis import read_modis

        return read_modis
    raise AttributeError(f"module 'ml4l' has no attribute {name!r}")
