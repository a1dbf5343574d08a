"""The servable versions of one model, as TF Serving's file-system source sees them.

Version folders follow TF Serving's rule (serving/versions.py). The newest
version is served; a poll thread loads a newly pushed one next to the old and
swaps it in atomically, so requests never see a half-loaded model. When the
served version's folder is deleted the newest remaining one is loaded, and
when none remains the model is unloaded (status END, requests 404), as TF
Serving's latest-version policy does. A version that fails to load is
reported in the status and the old one keeps serving; it is tried again once
its files change (a copy that was still in progress), no sooner than a
back-off that doubles per failure up to MAX_RETRY_SECONDS.
"""

import dataclasses
import logging
import os
import threading
import time
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np

from models.index import SCANN_SUBDIR
from models.serving import ROW_INDEPENDENT_SIGNATURES
from serving.codec import InputSpec
from serving.versions import Version, list_versions

SCANN_SIGNATURES = ("recommend", "recommend_filtered", "recommend_explained", "recommend_explained_filtered", "search")  # served from <version>/scann/ with --scann
MAX_RETRY_SECONDS = 30.0
log = logging.getLogger(__name__)


def files_fingerprint(path: str) -> Tuple[int, int, int]:
    """(files, bytes, newest mtime in ns) under a folder: changes while a copy is still writing it."""
    count = size = newest = 0
    for folder, _, names in os.walk(path):
        for name in names:
            try:
                stat = os.stat(os.path.join(folder, name))
            except FileNotFoundError:  # removed while we looked
                continue
            count, size, newest = count + 1, size + stat.st_size, max(newest, stat.st_mtime_ns)
    return count, size, newest


@dataclasses.dataclass
class FailedLoad:
    """A version that did not load: its files as they were then, the error, and when to try again."""

    fingerprint: Tuple[int, int, int]
    error: str
    failures: int
    retry_after: float  # time.monotonic()


class _Session:
    """One SavedModel's serve MetaGraph in a TF1 Session, run by SignatureDef tensor names, as tensorflow_model_server runs it.

    Not eager signature calls: in TF 2.15 every eager call that fails (an
    in-graph check refusing a request) leaks 0.4 to 1.7 KB in TFE_Py_Execute's
    error path, so a server answering bad requests would grow without bound;
    Session.run does not, and costs the same per call.
    """

    def __init__(self, path: str):
        import tensorflow as tf

        self.graph = tf.Graph()
        self.session = tf.compat.v1.Session(graph=self.graph)
        with self.graph.as_default():
            meta_graph = tf.compat.v1.saved_model.loader.load(self.session, [tf.saved_model.SERVING], path)
        self.signature_defs: Dict[str, Any] = dict(meta_graph.signature_def)
        self._calls: Dict[str, Tuple[Any, List[str], List[str]]] = {}
        for name, proto in self.signature_defs.items():
            if name.startswith("__"):  # __saved_model_init_op: listed in the metadata, not callable
                continue
            inputs, outputs = sorted(proto.inputs), sorted(proto.outputs)
            call = self.session.make_callable([proto.outputs[o].name for o in outputs], [proto.inputs[i].name for i in inputs])
            self._calls[name] = (call, inputs, outputs)

    @property
    def signatures(self) -> List[str]:
        return sorted(self._calls)

    def input_specs(self, signature: str) -> Dict[str, InputSpec]:
        import tensorflow as tf

        specs = {}
        for name, info in sorted(self.signature_defs[signature].inputs.items()):
            shape = None if info.tensor_shape.unknown_rank else tuple(None if d.size < 0 else d.size for d in info.tensor_shape.dim)
            specs[name] = InputSpec(tf.as_dtype(info.dtype).name, shape)
        return specs

    def run(self, signature: str, arrays: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        call, inputs, outputs = self._calls[signature]
        return dict(zip(outputs, call(*[arrays[name] for name in inputs])))


class Servable:
    """One loaded version: its signatures, their input specs and SignatureDefs."""

    def __init__(self, version: int, path: str, scann: bool = False):
        self.version = version
        self.path = path
        stock = _Session(path)
        self._session_of = {name: stock for name in stock.signatures}
        self.signature_defs = dict(stock.signature_defs)
        if scann:
            import scann  # noqa: F401  Registers the Scann ops the index needs.

            index = _Session(os.path.join(path, SCANN_SUBDIR))
            for name in SCANN_SIGNATURES:
                if name in index.signatures:
                    self._session_of[name] = index
                    self.signature_defs[name] = index.signature_defs[name]
        self.signatures = frozenset(self._session_of)
        # What a batcher may combine: the stock model's row-independent signatures, not the ScaNN ones.
        self.batchable = frozenset(ROW_INDEPENDENT_SIGNATURES - (set(SCANN_SIGNATURES) if scann else set()))
        self.input_specs: Dict[str, Dict[str, InputSpec]] = {name: session.input_specs(name) for name, session in self._session_of.items()}

    def method_name(self, signature: str) -> str:
        return self.signature_defs[signature].method_name

    def run(self, signature: str, arrays: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Runs a signature on arrays of its input dtypes; TF errors propagate (the app turns them into 400s)."""
        specs = self.input_specs[signature]
        feeds = {name: np.asarray(array, dtype=object if specs[name].dtype == "string" else specs[name].dtype) for name, array in arrays.items()}
        return self._session_of[signature].run(signature, feeds)

    def signature_def_json(self) -> Dict[str, Any]:
        """SignatureDefs as TF Serving's metadata endpoint writes them (proto field names, defaults included)."""
        from google.protobuf import json_format

        return {
            name: json_format.MessageToDict(proto, preserving_proto_field_name=True, including_default_value_fields=True)
            for name, proto in sorted(self.signature_defs.items())
        }


class ModelRegistry:
    """The newest loadable version of `name` under `base_path`, hot-swapped when a newer one is pushed."""

    def __init__(self, base_path: str, name: str, scann: bool = False, poll_seconds: float = 1.0):
        self.base_path = os.path.abspath(base_path)
        self.name = name
        self.scann = scann
        self.poll_seconds = poll_seconds
        self._current: Optional[Servable] = None
        self._ended: Optional[int] = None  # the version unloaded because its folder went away
        self._failed: Dict[int, FailedLoad] = {}
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._refresh_lock = threading.Lock()  # one load at a time (poll thread, callers)
        self.refresh()
        if self._current is None:
            detail = "; ".join(f"version {v}: {failed.error}" for v, failed in sorted(self._failed.items()))
            raise FileNotFoundError(
                f"{self.base_path}: no loadable model version (expected <base>/<numeric version>/saved_model.pb)" + (f" - {detail}" if detail else "")
            )

    @property
    def current(self) -> Optional[Servable]:
        """The served version; None once every version folder is gone (one attribute read: a request keeps what it started with)."""
        return self._current

    def refresh(self) -> None:
        """Loads the newest version if it is not the one served (and did not already fail as it is)."""
        with self._refresh_lock:
            self._refresh()

    def _refresh(self) -> None:
        versions = list_versions(self.base_path)
        current = self._current
        if current is not None and not os.path.isdir(current.path):
            current = None  # its folder was deleted: serve the newest remaining version, or nothing
        if current is not None and current.version == (versions[-1].number if versions else None):
            return
        # Without a usable current version fall back to older ones when the newest is broken; otherwise only a newer one replaces.
        candidates = [v for v in versions if current is None or v.number > current.version]
        for candidate in reversed(candidates if current is None else candidates[-1:]):
            if self._load(candidate):
                return
        if current is None and self._current is not None:
            log.warning("no version of %s is left under %s: version %s unloaded", self.name, self.base_path, self._current.version)
            self._ended, self._current = self._current.version, None

    def _load(self, version: Version) -> bool:
        path = os.path.join(self.base_path, version.name)
        fingerprint = files_fingerprint(path)
        failed = self._failed.get(version.number)
        if failed is not None and (failed.fingerprint == fingerprint or time.monotonic() < failed.retry_after):
            return False
        started = time.monotonic()
        try:
            servable = Servable(version.number, path, scann=self.scann)
        except Exception as error:  # a broken push must not take the served version down
            message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            failures = 1 if failed is None else failed.failures + 1
            backoff = min(MAX_RETRY_SECONDS, max(self.poll_seconds, 0.1) * 2 ** (failures - 1))
            self._failed[version.number] = FailedLoad(fingerprint, message, failures, time.monotonic() + backoff)
            log.warning("version %s of %s failed to load, still serving %s: %s", version.number, self.name, self._current and self._current.version, message)
            return False
        self._failed.pop(version.number, None)
        old, self._current, self._ended = self._current, servable, None
        log.info("serving version %s of %s from %s (loaded in %.1f s)%s", version.number, self.name, path, time.monotonic() - started,
                 f", replaced {old.version}" if old else "")
        return True

    def start_polling(self) -> None:
        if self.poll_seconds <= 0 or self._thread is not None:
            return

        def loop():
            while not self._stop.wait(self.poll_seconds):
                try:
                    self.refresh()
                except Exception:  # keep polling whatever the file system does
                    log.exception("polling %s failed", self.base_path)

        self._thread = threading.Thread(target=loop, name=f"poll-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def version_status(self, version: Optional[int] = None) -> List[Dict[str, Any]]:
        """TF Serving's model_version_status entries (all versions, or one)."""
        entries = []
        current = self._current
        for version_number, failed in sorted(self._failed.items(), reverse=True):
            entries.append({"version": str(version_number), "state": "END", "status": {"error_code": "UNKNOWN", "error_message": failed.error}})
        if current is not None:
            entries.append({"version": str(current.version), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}})
        elif self._ended is not None:  # unloaded cleanly: TF Serving's ServableState kEnd with an OK status
            entries.append({"version": str(self._ended), "state": "END", "status": {"error_code": "OK", "error_message": ""}})
        entries.sort(key=lambda e: -int(e["version"]))
        if version is not None:
            entries = [e for e in entries if int(e["version"]) == version]
        return entries
