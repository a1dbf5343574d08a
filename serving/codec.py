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
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from serving.json_writer import PrettyWriter, json_string, write_decimal

DEFAULT_SIGNATURE = "serving_default"


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


# -- how TF Serving prints JSON in its messages (rapidjson's PrettyWriter, single-line arrays, cut at 256 bytes) --
_DUMP_LIMIT = 256


def json_dump(value: Any) -> str:
    """A JSON value as TF Serving shows it in an error message (JsonWriterWithLimit over rapidjson's PrettyWriter)."""
    writer = PrettyWriter(single_line_arrays=True, limit=_DUMP_LIMIT)
    writer.value(value)
    return writer.text().decode("utf-8", "surrogateescape")


def error_body(message: str) -> bytes:
    """TF Serving's error response body: pretty-printed {"error": message}."""
    return ('{\n    "error": ' + json_string(message) + "\n}").encode("utf-8")


# -- the request document ------------------------------------------------------
_PARSE_REASONS = (
    ("Expecting value", "Invalid value."),
    ("Expecting property name enclosed in double quotes", "Missing a name for object member."),
    ("Expecting ':' delimiter", "Missing a colon after a name of object member."),
    ("Unterminated string", "Missing a closing quotation mark in string."),
    ("Invalid control character", "Invalid encoding in string."),
    ("Invalid \\escape", "Invalid escape character in string."),
)


def _innermost_container(text: str, pos: int) -> str:
    """'{' or '[': the container open at `pos` (outside strings)."""
    stack, in_string, escaped = [], False, False
    for char in text[:pos]:
        if in_string:
            escaped, in_string = (not escaped and char == "\\"), in_string and not (char == '"' and not escaped)
            continue
        if char == '"':
            in_string = True
        elif char in "[{":
            stack.append(char)
        elif char in "]}" and stack:
            stack.pop()
    return stack[-1] if stack else "{"


def parse_body(body: bytes) -> Any:
    """The request document, or TF Serving's "JSON Parse error" (rapidjson's reasons and offsets; trailing data is ignored)."""
    if not body:
        raise RequestError("JSON Parse error: The document is empty")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RequestError(f"JSON Parse error: Invalid encoding in string. at offset: {error.start}") from None
    start = len(text) - len(text.lstrip(" \t\n\r"))
    if start == len(text):
        raise RequestError(f"JSON Parse error: The document is empty. at offset: {len(body)}")
    try:
        value, _ = json.JSONDecoder().raw_decode(text, start)
    except RecursionError:
        raise RequestError("JSON Parse error: the document is nested too deeply") from None
    except json.JSONDecodeError as error:
        reason = next((r for prefix, r in _PARSE_REASONS if error.msg.startswith(prefix)), None)
        if reason is None:  # "Expecting ',' delimiter"
            reason = ("Missing a comma or '}' after an object member." if _innermost_container(text, error.pos) == "{"
                      else "Missing a comma or ']' after an array element.")
        raise RequestError(f"JSON Parse error: {reason} at offset: {len(text[:error.pos].encode('utf-8'))}") from None
    if not isinstance(value, dict):
        raise RequestError(f"JSON Value: {json_dump(value)} Is not object")
    return value


def signature_name(request: Mapping[str, Any]) -> str:
    name = request.get("signature_name", "")
    if "signature_name" in request and not isinstance(name, str):
        raise RequestError(f"JSON Value: {json_dump(request)} not formatted correctly. 'signature_name' key must be a string value.")
    return name or DEFAULT_SIGNATURE


# -- values -> tensors, with json_tensor.cc's checks and texts ------------------
_TYPE_NAMES = {"int64": "int64", "int32": "int32", "float32": "float", "float64": "double", "string": "string", "bool": "bool"}


def _json_type(value: Any) -> str:
    if value is True:
        return "True"
    if value is False:
        return "False"
    return {type(None): "Null", dict: "Object", list: "Array", str: "String"}.get(type(value), "Number")


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _b64decode(text: str) -> bytes:
    """Lenient like abseil's Base64Unescape: whitespace skipped, padding optional."""
    compact = "".join(text.split())
    if len(compact.rstrip("=")) % 4 == 1:
        raise ValueError("a single leftover character")
    return base64.b64decode(compact.rstrip("=") + "=" * (-len(compact.rstrip("=")) % 4), validate=True)


def _type_error(value: Any, spec: InputSpec) -> RequestError:
    return RequestError(f"JSON Value: {json_dump(value)} Type: {_json_type(value)} is not of expected type: {_TYPE_NAMES.get(spec.dtype, spec.dtype)}")


def _scalar(value: Any, spec: InputSpec) -> Any:
    if isinstance(value, dict):
        if spec.dtype != "string":
            raise _type_error(value, spec)
        if not _is_b64(value):
            raise RequestError(f"JSON Value: {json_dump(value)} not formatted correctly for base64 data")
        try:
            return _b64decode(value["b64"])
        except ValueError:
            raise RequestError("Unable to base64 decode") from None
    if spec.dtype == "string":
        if not isinstance(value, str):
            raise _type_error(value, spec)
        return value.encode("utf-8")
    if spec.dtype == "bool":
        if not isinstance(value, bool):
            raise _type_error(value, spec)
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _type_error(value, spec)
    if spec.dtype.startswith(("int", "uint")):
        info = np.iinfo(spec.dtype)
        if not isinstance(value, int) or not info.min <= value <= info.max:
            raise _type_error(value, spec)
    return value


def _shape(value: Any) -> List[int]:
    """The tensor's shape from its first elements, as json_tensor.cc's GetDenseTensorShape reads it."""
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def _fill(value: Any, spec: InputSpec, shape: List[int], level: int, out: List[Any]) -> None:
    if not isinstance(value, list):
        if level != len(shape):
            raise RequestError(f"JSON Value: {json_dump(value)} found at incorrect level: {level + 1} in the JSON DOM. Expected at level: {len(shape)}")
        out.append(_scalar(value, spec))
        return
    if level >= len(shape):
        raise RequestError(f"Encountered list at unexpected level: {level} expected < {len(shape)}")
    if len(value) != shape[level]:
        raise RequestError(f"Encountered list at unexpected size: {len(value)} at level: {level} expected size: {shape[level]}")
    for item in value:
        _fill(item, spec, shape, level + 1, out)


_MAX_RANK = 32  # numpy's limit; no signature input of these models is near it


def _tensor(value: Any, spec: InputSpec, name: str, rows: Optional[int] = None) -> np.ndarray:
    """One JSON value as json_tensor.cc reads it: its shape from the first elements, every element checked.

    TF Serving builds a tensor of any rank and lets the model refuse it; a rank past what numpy holds
    is refused here as the model refuses a wrong rank, with a 400 naming the input (`rows`: the value
    is one of that many instances, stacked later).
    """
    shape, flat = _shape(value), []
    full = shape if rows is None else [rows, *shape]
    if len(full) > _MAX_RANK:
        _check_shape(name, full, spec)
        raise RequestError(f"input {name}: got a tensor of rank {len(full)}, more than this server takes ({_MAX_RANK})")
    try:
        _fill(value, spec, shape, 0, flat)
    except RecursionError:
        raise RequestError("Encountered list at unexpected level: nested too deeply for a tensor") from None
    dtype = object if spec.dtype == "string" else spec.dtype
    return np.array(flat, dtype=dtype).reshape(shape)


def _check_shape(name: str, shape: Sequence[int], spec: InputSpec) -> None:
    """What the graph would refuse (TF Serving passes such tensors on and the model's own error comes back)."""
    if spec.shape is None:
        return
    if len(shape) != len(spec.shape) or any(want is not None and want != got for want, got in zip(spec.shape, shape)):
        expected = "[" + ",".join("-1" if d is None else str(d) for d in spec.shape) + "]"
        raise RequestError(f"input {name}: got shape {list(shape)}, the signature expects {expected} (-1 = any size)")


def _shape_text(shape: Sequence[int]) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def _rows(rows: List[Any], specs: Mapping[str, InputSpec]) -> Dict[str, np.ndarray]:
    """json_tensor.cc's FillTensorMapFromInstancesList: one tensor per input, the rows stacked."""
    names = sorted(specs)
    if not isinstance(rows[0], dict) and len(specs) > 1:
        raise RequestError("instances is a plain list, but expecting list of objects as multiple input tensors required as per tensorinfo_map")
    named = isinstance(rows[0], dict) and not _is_b64(rows[0])
    values: Dict[str, List[np.ndarray]] = {name: [] for name in names}
    first: Dict[str, Tuple[int, Tuple[int, ...]]] = {}

    def add(name: str, item: Any) -> None:
        array = _tensor(item, specs[name], name, rows=len(rows))
        size, shape = array.size, array.shape
        if name not in first:
            first[name] = (size, shape)
        elif first[name][0] != size:
            raise RequestError(f"Expecting tensor size: {first[name][0]} but got: {size}")
        elif first[name][1] != shape:
            raise RequestError(f"Expecting shape {_shape_text(first[name][1])} but got: {_shape_text(shape)}")
        values[name].append(array)

    for number, row in enumerate(rows):
        if named:
            if not (isinstance(row, dict) and not _is_b64(row)):
                raise RequestError(f"Expecting object but got list at item {number} of input list")
            for key, item in row.items():
                try:
                    if key not in specs:
                        raise RequestError(f"JSON object: does not have named input: {key}")
                    add(key, item)
                except RequestError as error:
                    raise RequestError(f"Failed to process element: {number} key: {key} of 'instances' list. Error: INVALID_ARGUMENT: {error}") from None
            if set(row) != set(names):
                raise RequestError(
                    f"Failed to process element: {number} of 'instances' list. JSON object: {json_dump(row)} keys must be equal to: {','.join(names)}"
                )
        else:
            if isinstance(row, dict) and not _is_b64(row):
                raise RequestError(f"Expecting value/list but got object at item {number} of input list")
            try:
                add(names[0], row)
            except RequestError as error:
                raise RequestError(f"Failed to process element: {number} of 'instances' list. Error: INVALID_ARGUMENT: {error}") from None
    return {name: np.stack(parts) if parts else np.zeros([0]) for name, parts in values.items()}


def _columns(columns: Any, specs: Mapping[str, InputSpec]) -> Dict[str, np.ndarray]:
    """json_tensor.cc's FillTensorMapFromInputsMap: a named object of tensors (keys it does not need are ignored)."""
    names = sorted(specs)
    if not isinstance(columns, dict) or _is_b64(columns):
        if len(specs) > 1:
            raise RequestError("inputs is a plain value/list, but expecting an object as multiple input tensors required as per tensorinfo_map")
        return {names[0]: _tensor(columns, specs[names[0]], names[0])}
    arrays = {}
    for name in names:
        if name not in columns:
            raise RequestError(f"Missing named input: {name} in 'inputs' object.")
        arrays[name] = _tensor(columns[name], specs[name], name)
    return arrays


def decode_request(request: Mapping[str, Any], specs: Mapping[str, InputSpec], max_batch: int = 0) -> Tuple[Dict[str, np.ndarray], bool]:
    """The request's inputs as arrays keyed by signature input; True when it used the row format.

    Checks and texts follow tensorflow_serving/util/json_tensor.cc (FillPredictRequestFromJson);
    --max-batch is the stand-in's own limit.
    """
    has_rows, has_columns = "instances" in request, "inputs" in request
    if has_rows and has_columns:
        raise RequestError(f"JSON Value: {json_dump(request)} Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist ")
    if not (has_rows or has_columns):
        raise RequestError("Missing 'inputs' or 'instances' key")
    if has_rows:
        rows = request["instances"]
        if not isinstance(rows, list):
            raise RequestError(f"JSON Value: {json_dump(request)} Expecting 'instances' to be an list/array")
        if not rows:
            raise RequestError(f"JSON Value: {json_dump(request)} No values in 'instances' array")
        if max_batch and len(rows) > max_batch:
            raise RequestError(f"batch of {len(rows)} instances exceeds the server's --max-batch {max_batch}")
        arrays = _rows(rows, specs)
    else:
        arrays = _columns(request["inputs"], specs)
        for name, array in arrays.items():
            if max_batch and array.ndim and array.shape[0] > max_batch:
                raise RequestError(f"batch of {array.shape[0]} exceeds the server's --max-batch {max_batch}")
    for name, array in arrays.items():
        _check_shape(name, array.shape, specs[name])
    return arrays, has_rows


def _write_value(writer: PrettyWriter, value: Any, dtype: np.dtype, as_bytes: bool) -> None:
    """json_tensor.cc's AddSingleValueAndAdvance."""
    if dtype.kind == "f":
        writer.raw(write_decimal(float(value), dtype))
    elif dtype.kind == "b":
        writer.raw("true" if value else "false")
    elif dtype.kind in "iu":
        writer.raw(str(int(value)))
    else:
        data = value if isinstance(value, bytes) else str(value).encode("utf-8")
        if as_bytes:
            writer.start(False)
            writer.string("b64")
            writer.string(base64.b64encode(data).decode("ascii"))
            writer.end()
        else:  # written as they are, as rapidjson's writer does (it does not check the encoding)
            writer.string(data.decode("utf-8", "surrogateescape"))


def _write_tensor(writer: PrettyWriter, array: np.ndarray, as_bytes: bool) -> None:
    """json_tensor.cc's AddTensorValues: nested arrays, a scalar as its bare value."""
    if array.ndim == 0:
        _write_value(writer, array.item() if array.dtype != object else array[()], array.dtype, as_bytes)
        return
    writer.start(True)
    for part in array:
        _write_tensor(writer, np.asarray(part, dtype=array.dtype), as_bytes)
    writer.end()


def _is_bytes_output(name: str, array: np.ndarray) -> bool:
    """IsNamedTensorBytes: a string tensor whose name ends in "_bytes" is written as {"b64": ...}."""
    return (array.dtype == object or array.dtype.kind in "SU") and name.endswith("_bytes")


def encode_response(outputs: Mapping[str, np.ndarray], row_format: bool) -> bytes:
    """The predict response body as TF Serving writes it (MakeRowFormatJsonFromTensors / MakeColumnarFormatJsonFromTensors)."""
    names = sorted(outputs)
    arrays = {name: np.asarray(outputs[name]) for name in names}
    writer = PrettyWriter()
    writer.start(False)
    if not row_format:
        writer.string("outputs")
        if len(names) > 1:
            writer.start(False)
        for name in names:
            if len(names) > 1:
                writer.string(name)
            _write_tensor(writer, arrays[name], _is_bytes_output(name, arrays[name]))
        if len(names) > 1:
            writer.end()
        writer.end()
        return writer.text()
    batch = None
    for name in names:
        if arrays[name].ndim == 0:
            raise RequestError(f"Tensor name: {name} has no shape information ")
        if batch is not None and arrays[name].shape[0] != batch:
            raise RequestError(f"Tensor name: {name} has inconsistent batch size: {arrays[name].shape[0]} expecting: {batch}")
        batch = arrays[name].shape[0]
    writer.string("predictions")
    writer.start(True)
    for row in range(batch):
        if len(names) > 1:
            writer.start(False)
        writer.single_line_arrays = True  # switched here, as json_tensor.cc does: each row's values on one line
        for name in names:
            if len(names) > 1:
                writer.string(name)
            _write_tensor(writer, np.asarray(arrays[name][row], dtype=arrays[name].dtype), _is_bytes_output(name, arrays[name]))
        writer.single_line_arrays = False
        if len(names) > 1:
            writer.end()
    writer.end()
    writer.end()
    return writer.text()


_NOISE = re.compile(r"^(Graph execution error:|Detected at node|<stack traces unavailable>|\s*$)")


def clean_tf_error(error: Exception) -> str:
    """A TF op error's message without TF's node/stack noise (an in-graph check's own text when it has one)."""
    text = getattr(error, "message", None) or str(error)
    match = re.search(r"assertion failed: \[([^\]]*)\]", text)
    if match:
        return match.group(1).replace("\\'", "'")  # TF escapes quotes in the message it prints
    lines = [line.strip() for line in text.splitlines() if not _NOISE.match(line)]
    return lines[0] if lines else type(error).__name__
