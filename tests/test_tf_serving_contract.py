"""The REST stand-in answers as TF Serving's own source does: status codes and error texts, character for character.

Each case names the code it comes from in tensorflow/serving (read at HEAD):
  jt   tensorflow_serving/util/json_tensor.cc (FillPredictRequestFromJson and what it calls)
  jtt  tensorflow_serving/util/json_tensor_test.cc
  hh   tensorflow_serving/model_servers/http_rest_api_handler.cc, hht its http_rest_api_handler_test.cc
  gms  tensorflow_serving/model_servers/get_model_status_impl.cc
The JSON-layer cases run against the stand-in's request path with this module's
own signature map (no model needed, so they are fast); the route cases run
against the served model, on the stand-in and, where it is on PATH, on
tensorflow_model_server itself.
"""

import json

import pytest

from serving import codec

# A signature like recommend_filtered's inputs; the names sort as TF Serving lists them.
SIGNATURES = {
    "serving_default": {"owner_id": "int64", "k": "int64", "platform": "string", "exclude_ids": "int64"},
    "one": {"x": "int64"},
    "flt": {"f": "float32"},
}
ROW = {"owner_id": 1, "k": 5, "platform": "ig", "exclude_ids": [1, 2]}
ELEMENT = "Failed to process element: 0 key: {key} of 'instances' list. Error: INVALID_ARGUMENT: {error}"


def _answer(body) -> str:
    """The stand-in's request path up to the model call: the document, signature_name, the signature, the inputs."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    try:
        request = codec.parse_body(raw)
        name = codec.signature_name(request)
        if name not in SIGNATURES:
            raise codec.RequestError(f'Serving signature name: "{name}" not found in signature def')
        codec.decode_request(request, {n: codec.InputSpec(d, None) for n, d in SIGNATURES[name].items()})
        return "OK"
    except codec.RequestError as error:
        assert error.status == 400  # INVALID_ARGUMENT, as every JSON-layer error is
        return str(error)


CASES = [
    # (source, request body, TF Serving's message)
    ("jt FillPredictRequestFromJson; jtt SingleUnnamedTensorErrors", {"instances": [ROW], "inputs": {"owner_id": [1]}},
     'JSON Value: {\n    "instances": [{\n            "owner_id": 1,\n            "k": 5,\n            "platform": "ig",\n'
     '            "exclude_ids": [1, 2]\n        }],\n    "inputs": {\n        "owner_id": [1]\n    }\n}'
     " Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist "),
    ("jt FillPredictRequestFromJson", {"k": 5}, "Missing 'inputs' or 'instances' key"),
    ("jt FillPredictRequestFromJson", {"instances": []}, 'JSON Value: {\n    "instances": []\n} No values in \'instances\' array'),
    ("jt FillPredictRequestFromJson", {"instances": "abc"}, 'JSON Value: {\n    "instances": "abc"\n} Expecting \'instances\' to be an list/array'),
    ("jt FillTensorMapFromInstancesList", {"instances": [1, 2]},
     "instances is a plain list, but expecting list of objects as multiple input tensors required as per tensorinfo_map"),
    ("jt FillTensorMapFromInstancesList; jtt MultipleNamedTensorErrors", {"instances": [ROW, [1, 2]]},
     "Expecting object but got list at item 1 of input list"),
    ("jt FillTensorMapFromInstancesList", {"instances": [ROW, {"owner_id": 2, "k": 5, "platform": "ig"}]},
     "Failed to process element: 1 of 'instances' list. JSON object: {\n    \"owner_id\": 2,\n    \"k\": 5,\n    \"platform\": \"ig\"\n}"
     " keys must be equal to: exclude_ids,k,owner_id,platform"),
    ("jt AddInstanceItem", {"instances": [{**ROW, "extra": 3}]}, ELEMENT.format(key="extra", error="JSON object: does not have named input: extra")),
    ("jt TypeError; jtt SingleUnnamedTensorErrors", {"instances": [{**ROW, "owner_id": "42"}]},
     ELEMENT.format(key="owner_id", error='JSON Value: "42" Type: String is not of expected type: int64')),
    ("jt TypeError", {"instances": [{**ROW, "owner_id": 1.5}]}, ELEMENT.format(key="owner_id", error="JSON Value: 1.5 Type: Number is not of expected type: int64")),
    ("jt TypeError", {"instances": [{**ROW, "owner_id": True}]}, ELEMENT.format(key="owner_id", error="JSON Value: true Type: True is not of expected type: int64")),
    ("jt TypeError", {"instances": [{**ROW, "owner_id": None}]}, ELEMENT.format(key="owner_id", error="JSON Value: null Type: Null is not of expected type: int64")),
    ("jt TypeError (past int64)", {"instances": [{**ROW, "owner_id": 2**63}]},
     ELEMENT.format(key="owner_id", error="JSON Value: 9223372036854775808 Type: Number is not of expected type: int64")),
    ("jt TypeError (a double)", {"instances": [{**ROW, "owner_id": 10**20}]},
     ELEMENT.format(key="owner_id", error="JSON Value: 100000000000000000000.0 Type: Number is not of expected type: int64")),
    ("jt TypeError", {"instances": [{**ROW, "platform": 7}]}, ELEMENT.format(key="platform", error="JSON Value: 7 Type: Number is not of expected type: string")),
    ("jt AddInstanceItem (size)", {"instances": [ROW, {**ROW, "exclude_ids": [3]}]},
     "Failed to process element: 1 key: exclude_ids of 'instances' list. Error: INVALID_ARGUMENT: Expecting tensor size: 2 but got: 1"),
    ("jt FillTensorProto (ragged)", {"instances": [{**ROW, "exclude_ids": [[1, 2], [3]]}]},
     ELEMENT.format(key="exclude_ids", error="Encountered list at unexpected size: 1 at level: 1 expected size: 2")),
    ("jt FillTensorProto (ragged)", {"inputs": {"owner_id": [1], "k": [5], "platform": ["ig"], "exclude_ids": [[1, 2], 3]}},
     "JSON Value: 3 found at incorrect level: 2 in the JSON DOM. Expected at level: 2"),
    ("jt FillTensorProto (ragged)", {"inputs": {"owner_id": [1, [2]], "k": [5], "platform": ["ig"], "exclude_ids": [[1, 2]]}},
     "Encountered list at unexpected level: 1 expected < 1"),
    ("jt DecodeB64Value", {"instances": [{**ROW, "platform": {"b64": "!!!"}}]}, ELEMENT.format(key="platform", error="Unable to base64 decode")),
    ("jt DecodeB64Value", {"instances": [{**ROW, "platform": {"b64": "aWc=", "x": 1}}]},
     ELEMENT.format(key="platform", error='JSON Value: {\n    "b64": "aWc=",\n    "x": 1\n} not formatted correctly for base64 data')),
    ("jt FillTensorMapFromInputsMap", {"inputs": {"owner_id": [1], "k": [5], "platform": ["ig"]}}, "Missing named input: exclude_ids in 'inputs' object."),
    ("jt FillTensorMapFromInputsMap", {"inputs": [1, 2]},
     "inputs is a plain value/list, but expecting an object as multiple input tensors required as per tensorinfo_map"),
    ("jt ParseJson (rapidjson)", b'{"instances": [1, 2]', "JSON Parse error: Missing a comma or '}' after an object member. at offset: 20"),
    ("jt ParseJson (rapidjson)", b"instances = [1, 2]", "JSON Parse error: Invalid value. at offset: 0"),
    ("jt ParseJson (rapidjson)", b"", "JSON Parse error: The document is empty"),
    ("jt FillPredictRequestFromJson", [1, 2, 3], "JSON Value: [1, 2, 3] Is not object"),
    ("jt FillPredictRequestFromJson; hht PredictRequestErrors", {"signature_name": 5, "instances": [1]},
     'JSON Value: {\n    "signature_name": 5,\n    "instances": [1]\n} not formatted correctly. \'signature_name\' key must be a string value.'),
    ("hh GetInfoMap", {"signature_name": "nope", "instances": [1]}, 'Serving signature name: "nope" not found in signature def'),
    ("jt (one input, bare rows)", {"signature_name": "one", "instances": [[1], 2]},
     "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: Expecting shape [1] but got: []"),
    ("jt (one input)", {"signature_name": "one", "instances": [1, {"x": 1}]}, "Expecting value/list but got object at item 1 of input list"),
    ("jt TypeError; hht PredictRequestErrors", {"signature_name": "flt", "instances": ["x", "y"]},
     "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: JSON Value: \"x\" Type: String is not of expected type: float"),
]
ACCEPTED = [
    ("jt (trailing data after the document is ignored: kParseStopWhenDoneFlag)", b'{"signature_name": "one", "instances": [1, 2]} trailing'),
    ("jt DecodeB64Value (abseil: padding optional)", {"instances": [{**ROW, "platform": {"b64": "aWc"}}]}),
    ("jt FillTensorMapFromInputsMap (keys it does not need are ignored)", {"inputs": {"owner_id": [1], "k": [5], "platform": ["ig"], "exclude_ids": [[1, 2]], "extra": 1}}),
    ("jt (ints for a float input)", {"signature_name": "flt", "instances": [1, 2.5]}),
]


@pytest.mark.parametrize("source, body, message", CASES, ids=[f"{n}: {c[0]}" for n, c in enumerate(CASES)])
def test_json_layer_errors_read_as_tf_serving_writes_them(source, body, message):
    assert _answer(body) == message


@pytest.mark.parametrize("source, body", ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_what_tf_serving_accepts_the_stand_in_accepts(source, body):
    assert _answer(body) == "OK"


def test_the_error_body_is_tf_servings_pretty_printed_object():
    # hh: the error JSON is written with rapidjson's PrettyWriter; non-ASCII and '/' stay as they are.
    assert codec.error_body('a "quoted" /é\n') == '{\n    "error": "a \\"quoted\\" /é\\n"\n}'.encode()


# -- routes, against the served model (stand-in, and tensorflow_model_server where installed) ----------------------
from test_rest_api import MODEL_NAME, backend, base_path, predict, request, standin, version  # noqa: E402,F401  the shared fixtures

ROUTES = [
    # (source, method, path, body, status, message)
    ("hh PredictModelNameVersionErrors: unknown model", "POST", "/v1/models/other_model:predict", {"instances": [1]}, 404,
     "Servable not found for request: Latest(other_model)"),
    ("hh PredictModelNameVersionErrors: unknown version", "POST", f"/v1/models/{MODEL_NAME}/versions/1:predict", {"instances": [1]}, 404,
     f"Servable not found for request: Specific({MODEL_NAME}, 1)"),
    ("gms: status of an unknown model", "GET", "/v1/models/other_model", None, 404, "Could not find any versions of model other_model"),
    ("gms: status of an unknown version", "GET", f"/v1/models/{MODEL_NAME}/versions/1", None, 404, f"Could not find version 1 of model {MODEL_NAME}"),
    ("hh UnsupportedApiCalls: wrong method", "GET", f"/v1/models/{MODEL_NAME}:predict", None, 400, f"Malformed request: GET /v1/models/{MODEL_NAME}:predict"),
    ("hh UnsupportedApiCalls: POST on status", "POST", f"/v1/models/{MODEL_NAME}", {"instances": [1]}, 400, f"Malformed request: POST /v1/models/{MODEL_NAME}"),
    ("hh UnsupportedApiCalls: unknown verb", "POST", f"/v1/models/{MODEL_NAME}:PREDICT", {"instances": [1]}, 400,
     f"Malformed request: POST /v1/models/{MODEL_NAME}:PREDICT"),
    ("hh UnsupportedApiCalls: a non-numeric version", "GET", f"/v1/models/{MODEL_NAME}/versions/abc", None, 400,
     f"Malformed request: GET /v1/models/{MODEL_NAME}/versions/abc"),
    ("hh: the query string is part of the path", "POST", f"/v1/models/{MODEL_NAME}:predict?x=1", {"instances": [1]}, 400,
     f"Malformed request: POST /v1/models/{MODEL_NAME}:predict?x=1"),
    ("hh: the document is read before the servable is looked up", "POST", "/v1/models/other_model:predict", b"[1]", 400,
     "JSON Value: [1] Is not object"),
    ("hh GetInfoMap on the served model", "POST", f"/v1/models/{MODEL_NAME}:predict", {"signature_name": "nope", "instances": [1]}, 400,
     'Serving signature name: "nope" not found in signature def'),
]


@pytest.mark.parametrize("source, method, path, body, status, message", ROUTES, ids=[c[0] for c in ROUTES])
def test_routes_answer_with_tf_servings_status_and_text(backend, source, method, path, body, status, message):
    got_status, got = request(backend, method, path, raw=body if isinstance(body, bytes) else None, body=None if isinstance(body, bytes) else body)
    assert (got_status, got["error"]) == (status, message)


def test_a_path_outside_v1_is_the_http_servers_own_404_page(standin):
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", standin.port, timeout=30)
    conn.request("GET", "/v2/models")
    response = conn.getresponse()
    assert response.status == 404 and response.getheader("Content-Type", "").startswith("text/html")
    assert b"<H1>Not Found</H1>" in response.read()
    conn.close()


@pytest.mark.parametrize("method, path", [
    ("GET", "/v1/models/..%2F..%2Fetc"), ("GET", "/v1/models/..%2F..%2Fetc%2Fpasswd/metadata"), ("POST", "/v1/models/../x:predict"),
    ("GET", f"/v1/models/{MODEL_NAME}/versions/..%2F..%2F1"), ("GET", "/v1/models/%2Fetc%2Fpasswd"),
])
def test_paths_are_matched_never_opened(standin, method, path):
    status, body = request(standin.port, method, path, {"instances": [1]} if method == "POST" else None)
    assert status in (400, 404) and "root:" not in json.dumps(body)
