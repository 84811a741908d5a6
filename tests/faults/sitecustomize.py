"""Test-only: a flaky mount for the platform's worker (tests/test_platform.py puts this folder on its PYTHONPATH).

While the file ``$ML4L_EIO_SWITCH`` exists, the ERA ingest's (``ml4l/era_store.py``) opens of files
under ``$ML4L_EIO_UNDER`` fail with ``EIO``; the test removes the file to end the fault.
Does nothing unless both variables are set.
"""

import builtins
import errno
import os
import sys

_switch = os.environ.get("ML4L_EIO_SWITCH")
_under = os.environ.get("ML4L_EIO_UNDER")

if _switch and _under:
    _open = builtins.open
    _prefix = os.path.abspath(_under) + os.sep

    def _from_era_ingest() -> bool:
        frame = sys._getframe(2)
        while frame is not None:
            if frame.f_code.co_filename.endswith(os.path.join("ml4l", "era_store.py")):
                return True
            frame = frame.f_back
        return False

    def _flaky_open(file, *args, **kwargs):  # type: ignore[no-untyped-def]
        if (isinstance(file, (str, os.PathLike)) and os.path.abspath(os.fspath(file)).startswith(_prefix)
                and os.path.exists(_switch) and _from_era_ingest()):
            raise OSError(errno.EIO, os.strerror(errno.EIO), os.fspath(file))
        return _open(file, *args, **kwargs)

    builtins.open = _flaky_open
