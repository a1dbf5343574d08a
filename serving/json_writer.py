"""JSON as TF Serving writes it: rapidjson's PrettyWriter (4-space indent, optional single-line arrays) and
json_tensor.cc's WriteDecimal for floats, so the stand-in's bodies are byte for byte what tensorflow_model_server sends.

`PrettyWriter` follows rapidjson/prettywriter.h's PrettyPrefix / EndArray / EndObject; the format
option is read when a token is written, as there (json_tensor.cc switches it mid-document).
`limit` is JsonWriterWithLimit's: each token is written only while the buffer is under that many bytes.
"""

import decimal
import math
from typing import Any, List, Optional

import numpy as np

_INT64 = (-(2**63), 2**63 - 1)
_UINT64_MAX = 2**64 - 1
_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def json_string(text: str) -> str:
    """rapidjson's string escaping: quotes, backslash and control characters; '/' and non-ASCII as they are."""
    return '"' + "".join(_SHORT_ESCAPES.get(c) or (f"\\u{ord(c):04X}" if ord(c) < 0x20 else c) for c in text) + '"'


def rapidjson_double(value: float) -> str:
    """rapidjson's Writer::Double: shortest digits, '.0' on whole numbers, exponent only outside 1e-6..1e21; '' for NaN/inf."""
    if value != value or value in (float("inf"), float("-inf")):
        return ""
    sign, digit_tuple, exponent = decimal.Decimal(repr(abs(float(value)))).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    sign = "-" if value < 0 else ""
    if digits == "0":
        return sign + "0.0"
    point = len(digits) + exponent  # the decimal point sits after this many digits
    if 0 < point <= 21:
        padded = digits + "0" * max(0, point - len(digits))
        return f"{sign}{padded[:point]}.{padded[point:] or '0'}"
    if -6 < point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    return f"{sign}{digits[0]}{'.' + digits[1:] if len(digits) > 1 else ''}e{point - 1}"


def write_decimal(value: float, dtype: Any) -> str:
    """json_tensor.cc's WriteDecimal: absl::StrCat's six significant digits, the full max_digits10 only when those
    do not read back as the same value, '.0' on numbers with neither a point nor an exponent; NaN, Infinity."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "-Infinity" if value < 0 else "Infinity"
    kind = np.dtype(dtype).type
    text = "%g" % value
    if kind(float(text)) != kind(value):
        text = "%.*g" % (np.finfo(kind).precision + (3 if kind is np.float32 else 2), value)  # max_digits10: 9 and 17
    return text if "." in text or "e" in text else text + ".0"


class PrettyWriter:
    """A token stream in rapidjson PrettyWriter's layout."""

    def __init__(self, single_line_arrays: bool = False, limit: Optional[int] = None):
        self.single_line_arrays = single_line_arrays
        self._limit = limit
        self._out: List[bytes] = []
        self._size = 0
        self._levels: List[List] = []  # [in array, values written so far]

    def text(self) -> bytes:
        return b"".join(self._out)

    def _put(self, text: str) -> None:
        data = text.encode("utf-8", "surrogateescape")
        self._out.append(data)
        self._size += len(data)

    def _open(self) -> bool:
        return self._limit is None or self._size < self._limit

    def _indent(self) -> None:
        self._put(" " * 4 * len(self._levels))

    def _prefix(self) -> None:
        if not self._levels:
            return
        level = self._levels[-1]
        if level[0]:
            if level[1] > 0:
                self._put(", " if self.single_line_arrays else ",")
            if not self.single_line_arrays:
                self._put("\n")
                self._indent()
        else:
            if level[1] > 0:
                self._put(",\n" if level[1] % 2 == 0 else ": ")
            else:
                self._put("\n")
            if level[1] % 2 == 0:
                self._indent()
        level[1] += 1

    def raw(self, text: str) -> bool:
        if not self._open():
            return False
        self._prefix()
        self._put(text)
        return True

    def string(self, value: str) -> bool:
        return self.raw(json_string(value))

    def start(self, array: bool) -> bool:
        if not self.raw("[" if array else "{"):
            return False
        self._levels.append([array, 0])
        return True

    def end(self) -> bool:
        if not self._open():
            return False
        array, count = self._levels.pop()
        if count and (not array or not self.single_line_arrays):
            self._put("\n")
            self._indent()
        self._put("]" if array else "}")
        return True

    def value(self, item: Any) -> bool:
        """A plain Python value (dicts, lists, strings, numbers, booleans, None), as rapidjson writes each kind."""
        if isinstance(item, dict):
            return self.start(False) and all(self.string(str(k)) and self.value(v) for k, v in item.items()) and self.end()
        if isinstance(item, list):
            return self.start(True) and all(self.value(v) for v in item) and self.end()
        if item is True or item is False:
            return self.raw("true" if item else "false")
        if item is None:
            return self.raw("null")
        if isinstance(item, str):
            return self.string(item)
        if isinstance(item, int) and _INT64[0] <= item <= _UINT64_MAX:
            return self.raw(str(item))
        return self.raw(rapidjson_double(float(item)))
