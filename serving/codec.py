"""TF Serving's REST JSON <-> tensors, checked against a signature's TensorSpecs.

Request forms (as TF Serving's REST API):
- row:      {"signature_name": "...", "instances": [{input: value, ...}, ...]}
            (bare values per instance when the signature has one input)
- columnar: {"signature_name": "...", "inputs": {input: [values...], ...}}
            (a bare list when the signature has one input)
Binary strings may be sent as {"b64": "..."}. Error texts follow TF Serving's
where it has one, so clients see the same messages from both servers.
"""

import base64
import json
import re
from typing import Any, Dict, List, Mapping, Tuple

import numpy as np

DEFAULT_SIGNATURE = "serving_default"
_JSON_TYPE = {bool: "Bool", int: "Number", float: "Number", str: "String", list: "Array", dict: "Object", type(None): "Null"}


class RequestError(ValueError):
    """A bad request: the message goes back to the client with `status`."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class InputSpec:
    """What one signature input accepts: numpy dtype name and shape (None = any size)."""

    def __init__(self, dtype: str, shape: Tuple):
        self.dtype = dtype  # "int64", "int32", "float32", "float64", "string", "bool"
        self.shape = shape

    @classmethod
    def from_tensor_spec(cls, spec) -> "InputSpec":
        shape = tuple(spec.shape.as_list()) if spec.shape.rank is not None else None
        return cls(spec.dtype.name, shape)


def parse_body(body: bytes) -> Dict[str, Any]:
    try:
        request = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise RequestError(f"JSON Parse error: {error}") from None
    except RecursionError:
        raise RequestError("JSON Parse error: the document is nested too deeply") from None
    if not isinstance(request, dict):
        raise RequestError("JSON Parse error: the request body must be a JSON object")
    return request


def signature_name(request: Mapping[str, Any]) -> str:
    name = request.get("signature_name", DEFAULT_SIGNATURE)
    if not isinstance(name, str):
        raise RequestError("'signature_name' must be a string")
    return name or DEFAULT_SIGNATURE


def _json_repr(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _convert(value: Any, spec: InputSpec, where: str) -> np.ndarray:
    """One input's JSON value(s) -> a numpy array of the spec's dtype; RequestError names `where`."""

    def bad(item: Any) -> RequestError:
        return RequestError(
            f"{where}: JSON Value: {_json_repr(item)} Type: {_JSON_TYPE.get(type(item), type(item).__name__)} "
            f"is not of expected type: {spec.dtype}"
        )

    def scalar(item: Any):
        if spec.dtype == "string":
            if isinstance(item, str):
                return item.encode("utf-8")
            if isinstance(item, dict) and set(item) == {"b64"} and isinstance(item["b64"], str):
                try:
                    return base64.b64decode(item["b64"], validate=True)
                except ValueError:
                    raise RequestError(f"{where}: JSON Value: {_json_repr(item)} not formatted correctly for base64 data") from None
            raise bad(item)
        if spec.dtype == "bool":
            if isinstance(item, bool):
                return item
            raise bad(item)
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            raise bad(item)
        if spec.dtype.startswith("int") or spec.dtype.startswith("uint"):
            if not isinstance(item, int):
                raise bad(item)
            info = np.iinfo(spec.dtype)
            if not info.min <= item <= info.max:
                raise RequestError(f"{where}: JSON Value: {item} is out of range for {spec.dtype}")
        return item

    def walk(item: Any):
        return [walk(x) for x in item] if isinstance(item, list) else scalar(item)

    try:
        converted = walk(value)
    except RecursionError:
        raise RequestError(f"{where}: nested too deeply for a tensor") from None
    dtype = object if spec.dtype == "string" else spec.dtype
    try:
        array = np.array(converted, dtype=dtype)
    except ValueError:
        raise RequestError(f"{where}: the lists have different lengths; a tensor must be rectangular (pad it)") from None
    if dtype is object and array.dtype == object and any(isinstance(x, list) for x in array.ravel()):
        raise RequestError(f"{where}: the lists have different lengths; a tensor must be rectangular (pad it)")
    return array


def _check_shape(name: str, array: np.ndarray, spec: InputSpec) -> None:
    if spec.shape is None:
        return
    if array.ndim != len(spec.shape) or any(want is not None and want != got for want, got in zip(spec.shape, array.shape)):
        shape = "[" + ",".join("-1" if d is None else str(d) for d in spec.shape) + "]"
        raise RequestError(f"input {name}: got shape {list(array.shape)}, the signature expects {shape} (-1 = any size)")


def _check_names(sent: List[str], specs: Mapping[str, InputSpec]) -> None:
    if set(sent) != set(specs):
        extra = sorted(set(sent) - set(specs))
        missing = sorted(set(specs) - set(sent))
        raise RequestError(
            f"input size does not match signature: {len(sent)}!={len(specs)} len({{{','.join(sorted(sent))}}}) != "
            f"len({{{','.join(sorted(specs))}}}). Sent extra: {{{','.join(extra)}}}. Missing but required: {{{','.join(missing)}}}."
        )


def decode_request(request: Mapping[str, Any], specs: Mapping[str, InputSpec], max_batch: int = 0) -> Tuple[Dict[str, np.ndarray], bool]:
    """The request's inputs as arrays keyed by signature input; True when it used the row format."""
    has_rows, has_columns = "instances" in request, "inputs" in request
    if has_rows == has_columns:
        raise RequestError(
            "Not both 'instances' and 'inputs' can be specified" if has_rows else "Missing 'inputs' or 'instances' key"
        )
    only = next(iter(specs)) if len(specs) == 1 else None
    if has_rows:
        rows = request["instances"]
        if not isinstance(rows, list):
            raise RequestError("'instances' must be a JSON array (one entry per example)")
        if not rows:
            raise RequestError("'instances' is empty: send at least one instance")
        if max_batch and len(rows) > max_batch:
            raise RequestError(f"batch of {len(rows)} instances exceeds the server's --max-batch {max_batch}")
        named = all(isinstance(row, dict) and not (only and set(row) == {"b64"}) for row in rows)
        if not named:
            if only is None:
                raise RequestError(
                    "instances must be JSON objects keyed by input name, this signature has inputs {" + ",".join(sorted(specs)) + "}"
                )
            rows = [{only: row} for row in rows]
        for number, row in enumerate(rows):
            if not isinstance(row, dict):
                raise RequestError(f"Failed to process element: {number} of 'instances' list: expected a JSON object")
            if set(row) != set(rows[0]):
                raise RequestError(
                    f"Failed to process element: {number} of 'instances' list: its keys {sorted(row)} differ from element 0's {sorted(rows[0])}"
                )
        _check_names(list(rows[0]), specs)
        arrays = {}
        for name, spec in specs.items():
            arrays[name] = _convert([row[name] for row in rows], spec, f"'instances' key {name}")
        for name, array in arrays.items():
            _check_shape(name, array, specs[name])
        return arrays, True
    columns = request["inputs"]
    if not isinstance(columns, dict) or (only is not None and set(columns) == {"b64"}):
        if only is None:
            raise RequestError("'inputs' must be a JSON object keyed by input name: {" + ",".join(sorted(specs)) + "}")
        columns = {only: columns}
    _check_names(list(columns), specs)
    arrays = {name: _convert(columns[name], spec, f"'inputs' key {name}") for name, spec in specs.items()}
    for name, array in arrays.items():
        _check_shape(name, array, specs[name])
        if array.ndim and array.shape[0] == 0:
            raise RequestError(f"input {name} is empty: send at least one example")
        if max_batch and array.ndim and array.shape[0] > max_batch:
            raise RequestError(f"batch of {array.shape[0]} exceeds the server's --max-batch {max_batch}")
    return arrays, False


def _to_json(array: np.ndarray) -> Any:
    if array.dtype == object or array.dtype.kind == "S":
        def text(item):
            if isinstance(item, bytes):
                try:
                    return item.decode("utf-8")
                except UnicodeDecodeError:
                    return {"b64": base64.b64encode(item).decode("ascii")}
            return item

        return np.vectorize(text, otypes=[object])(array).tolist() if array.size else array.tolist()
    return array.tolist()


def encode_response(outputs: Mapping[str, np.ndarray], row_format: bool) -> Dict[str, Any]:
    """Outputs -> {"predictions": [...]} (row) or {"outputs": ...} (columnar), as TF Serving writes them."""
    names = sorted(outputs)
    if not row_format:
        if len(names) == 1:
            return {"outputs": _to_json(outputs[names[0]])}
        return {"outputs": {name: _to_json(outputs[name]) for name in names}}
    sizes = {name: (outputs[name].shape[0] if outputs[name].ndim else None) for name in names}
    if len(set(sizes.values())) != 1 or None in sizes.values():
        raise RequestError(
            "Tensors in the output have different batch sizes " + json.dumps(sizes) + "; use the columnar 'inputs' format", status=400
        )
    columns = {name: _to_json(outputs[name]) for name in names}
    if len(names) == 1:
        return {"predictions": columns[names[0]]}
    return {"predictions": [{name: columns[name][row] for name in names} for row in range(sizes[names[0]])]}


_NOISE = re.compile(r"^(Graph execution error:|Detected at node|<stack traces unavailable>|\s*$)")


def clean_tf_error(error: Exception) -> str:
    """A TF op error's message without TF's node/stack noise (an in-graph check's own text when it has one)."""
    text = getattr(error, "message", None) or str(error)
    match = re.search(r"assertion failed: \[([^\]]*)\]", text)
    if match:
        return match.group(1)
    lines = [line.strip() for line in text.splitlines() if not _NOISE.match(line)]
    return lines[0] if lines else type(error).__name__
