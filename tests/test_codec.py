"""TF Serving's REST JSON <-> arrays (serving/codec.py), without a model or a server."""

import base64

import json

import numpy as np
import pytest

from serving import codec

SPECS = {"owner_id": codec.InputSpec("int64", (None,)), "platform": codec.InputSpec("string", (None,))}
ONE = {"owner_id": codec.InputSpec("int64", (None,))}


def test_row_and_columnar_forms_decode_to_the_same_arrays():
    rows, row_format = codec.decode_request({"instances": [{"owner_id": 3, "platform": "tiktok"}, {"owner_id": 4, "platform": ""}]}, SPECS)
    columns, columnar = codec.decode_request({"inputs": {"owner_id": [3, 4], "platform": ["tiktok", ""]}}, SPECS)
    assert row_format and not columnar
    for name in SPECS:
        np.testing.assert_array_equal(rows[name], columns[name])
    assert rows["owner_id"].dtype == np.int64 and rows["platform"].tolist() == [b"tiktok", b""]


def test_a_single_input_signature_takes_bare_values_in_both_forms():
    bare, _ = codec.decode_request({"instances": [1, 2, 3]}, ONE)
    columnar, _ = codec.decode_request({"inputs": [1, 2, 3]}, ONE)
    assert bare["owner_id"].tolist() == columnar["owner_id"].tolist() == [1, 2, 3]


def test_binary_strings_come_as_b64_objects():
    arrays, _ = codec.decode_request({"inputs": {"owner_id": [1], "platform": [{"b64": base64.b64encode(b"\xff\x00").decode()}]}}, SPECS)
    assert arrays["platform"].tolist() == [b"\xff\x00"]
    with pytest.raises(codec.RequestError, match="Unable to base64 decode"):
        codec.decode_request({"inputs": {"owner_id": [1], "platform": [{"b64": "%%%"}]}}, SPECS)


@pytest.mark.parametrize("value", [1.5, True, "7", 2**63, None])
def test_a_value_of_the_wrong_type_or_range_names_the_element_and_input(value):
    with pytest.raises(codec.RequestError, match="Failed to process element: 0 key: owner_id of 'instances' list") as error:
        codec.decode_request({"instances": [{"owner_id": value, "platform": ""}]}, SPECS)
    assert error.value.status == 400


def test_rows_stack_into_one_tensor_per_input():
    arrays, _ = codec.decode_request({"instances": [{"owner_id": 1, "platform": "a"}, {"owner_id": 2, "platform": "b"}]}, SPECS)
    assert arrays["owner_id"].shape == (2,) and arrays["owner_id"].dtype == np.int64
    wide = {"ids": codec.InputSpec("int64", (None, None))}
    arrays, _ = codec.decode_request({"instances": [{"ids": [1, 2]}, {"ids": [3, 4]}]}, wide)
    assert arrays["ids"].tolist() == [[1, 2], [3, 4]]


def test_a_shape_the_signature_cannot_take_is_a_400():
    with pytest.raises(codec.RequestError, match=r"input owner_id: got shape \[2, 1\]"):
        codec.decode_request({"inputs": {"owner_id": [[1], [2]], "platform": ["", ""]}}, SPECS)


def test_max_batch_bounds_both_forms():
    with pytest.raises(codec.RequestError, match="--max-batch 2"):
        codec.decode_request({"instances": [1, 2, 3]}, ONE, max_batch=2)
    with pytest.raises(codec.RequestError, match="--max-batch 2"):
        codec.decode_request({"inputs": [1, 2, 3]}, ONE, max_batch=2)


def test_responses_are_predictions_per_row_or_outputs_per_name():
    outputs = {"influencer_id": np.array([[5, 6], [7, 8]]), "score": np.array([[0.5, 0.25], [1.0, 0.0]], np.float32)}
    assert json.loads(codec.encode_response(outputs, row_format=True)) == {
        "predictions": [{"influencer_id": [5, 6], "score": [0.5, 0.25]}, {"influencer_id": [7, 8], "score": [1.0, 0.0]}]
    }
    assert json.loads(codec.encode_response(outputs, row_format=False)) == {"outputs": {"influencer_id": [[5, 6], [7, 8]], "score": [[0.5, 0.25], [1.0, 0.0]]}}
    assert json.loads(codec.encode_response({"score": np.array([1.0])}, row_format=True)) == {"predictions": [1.0]}


def test_bodies_are_laid_out_as_tensorflow_model_server_writes_them():
    """rapidjson's PrettyWriter with json_tensor.cc's format switches, byte for byte."""
    outputs = {"influencer_id": np.array([[5, 6], [7, 8]]), "score": np.array([[0.1, 0.25], [1.0, 3e-05]], np.float32)}
    assert codec.encode_response(outputs, row_format=True) == (
        b'{\n    "predictions": [\n        {\n            "influencer_id": [5, 6],\n            "score": [0.1, 0.25]\n        },'
        b'\n        {\n            "influencer_id": [7, 8],\n            "score": [1.0, 3e-05]\n        }\n    ]\n}'
    )
    assert codec.encode_response({"score": np.array([0.1, 2.0], np.float32)}, row_format=True) == b'{\n    "predictions": [0.1, 2.0\n    ]\n}'
    assert codec.encode_response({"score": np.array([[0.5]], np.float32)}, row_format=False) == (
        b'{\n    "outputs": [\n        [\n            0.5\n        ]\n    ]\n}'
    )


@pytest.mark.parametrize(
    "value, dtype, text",
    [(0.1, np.float32, "0.1"), (1 / 3, np.float32, "0.333333343"), (2.0, np.float32, "2.0"), (9e6, np.float32, "9e+06"),
     (1 / 3, np.float64, "0.33333333333333331"), (float("nan"), np.float32, "NaN"), (float("-inf"), np.float64, "-Infinity")],
)
def test_floats_are_written_by_write_decimal(value, dtype, text):
    assert codec.encode_response({"x": np.array([value], dtype)}, row_format=True) == b'{\n    "predictions": [' + text.encode() + b"\n    ]\n}"


def test_only_outputs_named_bytes_are_base64():
    assert json.loads(codec.encode_response({"raw_bytes": np.array([b"\xff"], object)}, row_format=False)) == {"outputs": [{"b64": "/w=="}]}
    assert json.loads(codec.encode_response({"names": np.array([b"Drama"], object)}, row_format=False)) == {"outputs": ["Drama"]}
    assert codec.encode_response({"raw": np.array([b"\xff"], object)}, row_format=False) == b'{\n    "outputs": [\n        "\xff"\n    ]\n}'


def test_rows_of_other_batch_sizes_are_refused_as_tf_serving_does():
    with pytest.raises(codec.RequestError, match="Tensor name: b has inconsistent batch size: 1 expecting: 2"):
        codec.encode_response({"a": np.zeros([2]), "b": np.zeros([1])}, row_format=True)
    with pytest.raises(codec.RequestError, match="Tensor name: a has no shape information"):
        codec.encode_response({"a": np.float32(1.0)}, row_format=True)


def test_parse_body_refuses_what_is_not_a_json_object():
    assert codec.parse_body(b'{"instances": [1]}') == {"instances": [1]}
    for body, message in ((b"[1, 2]", "Is not object"), (b"{not json", "JSON Parse error"), (b"\xff", "JSON Parse error")):
        with pytest.raises(codec.RequestError, match=message):
            codec.parse_body(body)


def test_json_dump_is_cut_at_256_bytes_like_tf_servings_writer():
    dumped = codec.json_dump({"instances": [{"owner_id": n} for n in range(100)]})
    assert 256 <= len(dumped) < 300 and not dumped.endswith("}")


def test_clean_tf_error_keeps_the_checks_own_text():
    class OpError(Exception):
        message = "Graph execution error:\n\nDetected at node x\nassertion failed: [k must be at least 1] [Condition x >= y did not hold]"

    assert codec.clean_tf_error(OpError()) == "k must be at least 1"


def test_clean_tf_error_drops_the_escaping_tf_adds_to_quotes():
    class OpError(Exception):
        message = "assertion failed: [the server\\'s limit] [Condition x]"

    assert codec.clean_tf_error(OpError()) == "the server's limit"
