"""The versions of a pushed model, as TF Serving's file-system source sees them; one resolver for every caller.

`<base>/<numeric version>/saved_model.pb` is a version; anything else below
the base (hidden staging folders of a push in progress, other files) is not.
Local paths and object stores (gs://, through tf.io.gfile) alike.
"""

import os
from typing import List


def _gfile():
    import tensorflow as tf

    return tf.io.gfile


def _is_remote(path: str) -> bool:
    return "://" in path


def join(path: str, *names: str) -> str:
    return "/".join([path.rstrip("/"), *names]) if _is_remote(path) else os.path.join(path, *names)


def is_saved_model(path: str) -> bool:
    saved_model = join(path, "saved_model.pb")
    return _gfile().exists(saved_model) if _is_remote(path) else os.path.isfile(saved_model)


def list_versions(base_path: str) -> List[int]:
    """The numeric version folders under the base path, oldest first (none for a missing base)."""
    if _is_remote(base_path):
        gfile = _gfile()
        if not gfile.isdir(base_path):
            return []
        names = [name.rstrip("/") for name in gfile.listdir(base_path)]
        return sorted(int(n) for n in names if n.isdigit() and gfile.isdir(join(base_path, n)))
    try:
        names = os.listdir(base_path)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(int(n) for n in names if n.isdigit() and os.path.isdir(os.path.join(base_path, n)))


def resolve_version_dir(path: str) -> str:
    """`path` itself if it is a SavedModel, else its newest numeric version; FileNotFoundError if neither."""
    if is_saved_model(path):
        return path
    versions = list_versions(path)
    if not versions:
        raise FileNotFoundError(f"{path}: no SavedModel and no numeric version folder (expected <model_base>/<version>/saved_model.pb)")
    return join(path, str(versions[-1]))


def model_base_of(path: str) -> str:
    """The model base of a base or of one of its version folders."""
    name = os.path.basename(path.rstrip("/"))
    return os.path.dirname(path.rstrip("/")) if name.isdigit() and is_saved_model(path) else path
