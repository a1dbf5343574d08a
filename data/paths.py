"""Local paths made absolute once, where a run records them or hands them to other processes."""

import os
from typing import Optional


def absolute_path(path: Optional[str]) -> Optional[str]:
    """A local path made absolute and normalized (a bucket URI, an empty path or None as given).

    TFX records artifact URIs under the pipeline root as given, and Beam workers (a Dask worker, a
    DirectRunner subprocess) may start in another folder: a relative path would depend on where each began.
    """
    return path if not path or "://" in path else os.path.abspath(path)
