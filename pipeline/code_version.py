"""A fingerprint of the code that runs inside the components, for TFX's cache key.

TFX keys its cache on a component's inputs and execution properties; user code
named by a dotted path (`preprocessing_fn`, `run_fn`) or living in a custom
component is not part of either. Every component therefore gets this
fingerprint as an execution property, so a change in that code (or in the
TFDV schema) reruns them instead of serving a stale cached result.
"""

import hashlib
import os
from typing import Iterable

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The packages whose code runs inside the components (the layers below pipeline/).
PACKAGES = ("components", "serving", "models", "data")


def _files(root: str, packages: Iterable[str]) -> Iterable[str]:
    for package in packages:
        for directory, subdirs, names in os.walk(os.path.join(root, package)):
            subdirs[:] = sorted(d for d in subdirs if d != "__pycache__")
            for name in sorted(names):
                if name.endswith((".py", ".pbtxt")):
                    yield os.path.join(directory, name)


def code_version(root: str = _ROOT, packages: Iterable[str] = PACKAGES) -> str:
    """sha256 over the relative paths and contents of those packages' .py and .pbtxt files (first 16 hex digits)."""
    digest = hashlib.sha256()
    for path in _files(root, packages):
        digest.update(os.path.relpath(path, root).encode())
        with open(path, "rb") as handle:
            digest.update(hashlib.sha256(handle.read()).digest())
    return digest.hexdigest()[:16]
