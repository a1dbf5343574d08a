"""The versions of a pushed model, as TF Serving's file-system source sees them; one resolver for every caller.

TF Serving's rule (file_system_storage_path_source.cc, ParseVersionNumber):
a child of the base path is a version when its whole name parses as an int64
with absl::SimpleAtoi (ASCII digits, an optional sign, surrounding ASCII
whitespace allowed), and the version is loaded from that child, as named:
`01796193999` is version 1796193999, loaded from `<base>/01796193999`. When two
names parse to one number the later name wins, with a warning. Anything else
below the base (hidden staging folders of a push in progress, other files or
folders such as `²`) is not a version; a non-hidden one is ignored with one
warning. Local paths and object stores (gs://, through tf.io.gfile) alike.
"""

import logging
import os
import re
import time
from typing import Callable, List, NamedTuple, Optional

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
# absl::SimpleAtoi: optional ASCII whitespace, an optional sign, ASCII digits, optional ASCII whitespace.
_SIMPLE_ATOI = re.compile(r"[ \t\n\v\f\r]*([+-]?[0-9]+)[ \t\n\v\f\r]*", re.ASCII)
log = logging.getLogger(__name__)
_warned: set = set()  # (base, name) pairs already warned about: one warning each per process


class Version(NamedTuple):
    """A version folder: its number and the name it is loaded from."""

    number: int
    name: str


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


def parse_version(name: str) -> Optional[int]:
    """The version number a child name stands for under TF Serving's rule, or None."""
    match = _SIMPLE_ATOI.fullmatch(name)
    if match is None:
        return None
    number = int(match.group(1))
    return number if _INT64_MIN <= number <= _INT64_MAX else None


def _warn_once(base_path: str, name: str, why: str) -> None:
    if (base_path, name) not in _warned:
        _warned.add((base_path, name))
        log.warning("%s: ignoring %r in the model base: %s", base_path, name, why)


def list_versions(base_path: str) -> List[Version]:
    """The version folders under the base path, oldest first (none for a missing base)."""
    if _is_remote(base_path):
        gfile = _gfile()
        if not gfile.isdir(base_path):
            return []
        names = sorted({name.rstrip("/").split("/", 1)[0] for name in gfile.listdir(base_path)})
        is_dir = lambda name: gfile.isdir(join(base_path, name))
    else:
        try:
            names = sorted(os.listdir(base_path))
        except (FileNotFoundError, NotADirectoryError):
            return []
        is_dir = lambda name: os.path.isdir(os.path.join(base_path, name))
    by_number = {}
    for name in names:
        number = parse_version(name)
        if number is None or not is_dir(name):
            if not name.startswith("."):  # hidden: a push being staged, never a version
                _warn_once(base_path, name, "not a version folder (a folder named by an integer, as TF Serving reads them)")
            continue
        if number in by_number:
            _warn_once(base_path, by_number[number], f"version {number} is loaded from {name!r} instead")
        by_number[number] = name
    return [Version(number, by_number[number]) for number in sorted(by_number)]


def resolve_version_dir(path: str) -> str:
    """`path` itself if it is a SavedModel, else its newest version folder; FileNotFoundError if neither."""
    if is_saved_model(path):
        return path
    versions = list_versions(path)
    if not versions:
        raise FileNotFoundError(f"{path}: no SavedModel and no version folder (expected <model_base>/<version number>/saved_model.pb)")
    return join(path, versions[-1].name)


def model_base_of(path: str) -> str:
    """The model base of a base or of one of its version folders."""
    name = os.path.basename(path.rstrip("/"))
    return os.path.dirname(path.rstrip("/")) if parse_version(name) is not None and is_saved_model(path) else path


def publish_version(base_path: str, fill: Callable[[str], None], clock: Callable[[], float] = time.time) -> Version:
    """A new version under `base_path`, written by `fill(folder)` into a hidden staging folder, then renamed into place.

    A model server polling the base never sees a half-written version: until the rename the folder is
    hidden (not a version, above), and a `fill` that fails leaves no version (its staging folder is removed).
    The number is the clock's second, and newer than every version already there, so it is the one served.
    """
    gfile = _gfile()
    gfile.makedirs(base_path)
    existing = {version.number for version in list_versions(base_path)}
    number = max([int(clock()), *(n + 1 for n in existing)])
    staging = join(base_path, f".{number}.incomplete")
    while gfile.exists(join(base_path, str(number))) or gfile.exists(staging):  # another publisher in the same second
        number += 1
        staging = join(base_path, f".{number}.incomplete")
    try:
        fill(staging)
        gfile.rename(staging, join(base_path, str(number)))
    except BaseException:
        if gfile.exists(staging):
            gfile.rmtree(staging)
        raise
    return Version(number, str(number))
