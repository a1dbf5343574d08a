"""TF Serving's REST routes as a werkzeug WSGI app, plus `serve()`.

Routes (as tensorflow_model_server's REST API):
  GET  /v1/models/NAME[/versions/V]            model version status
  GET  /v1/models/NAME[/versions/V]/metadata   signature defs
  POST /v1/models/NAME[/versions/V]:predict    (:regress, :classify)
Paths are matched against the one configured model name and a numeric
version, never turned into file paths, so a request cannot reach files.
"""

import json
import logging
import re
import sys
from typing import Any, Dict, Optional

from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request, Response

from serving import codec
from serving.registry import ModelRegistry

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_BATCH = 1024
_ROUTE = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+))?(?P<metadata>/metadata)?(?::(?P<verb>[A-Za-z]+))?$")
_VERB_METHOD = {"regress": "tensorflow/serving/regress", "classify": "tensorflow/serving/classify"}
_VERB_KIND = {"regress": "regression", "classify": "classification"}
log = logging.getLogger(__name__)


def _json(payload: Dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")


class ServingApp:
    """The WSGI app; one instance serves one ModelRegistry."""

    def __init__(self, registry: ModelRegistry, max_batch: int = DEFAULT_MAX_BATCH, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES):
        self.registry = registry
        self.max_batch = max_batch
        self.max_body_bytes = max_body_bytes

    def __call__(self, environ, start_response):
        request = Request(environ)
        try:
            response = self.dispatch(request)
        except codec.RequestError as error:
            response = _json({"error": str(error)}, error.status)
        except HTTPException as error:
            response = _json({"error": error.description or error.name}, error.code or 400)
        except Exception as error:  # never let one request take the server down
            log.exception("internal error on %s %s", request.method, request.path)
            response = _json({"error": f"Internal error: {type(error).__name__}: {error}"}, 500)
        return response(environ, start_response)

    # -- routing -----------------------------------------------------------
    def dispatch(self, request: Request) -> Response:
        match = _ROUTE.match(request.path)
        if not match:
            raise codec.RequestError(f"Malformed request: {request.method} {request.path}", 404)
        name, version_text, metadata, verb = match.group("name", "version", "metadata", "verb")
        if version_text is not None and not version_text.isdigit():
            raise codec.RequestError(f"Malformed request: {request.method} {request.path} (the version must be a number)", 404)
        version = int(version_text) if version_text is not None else None
        if verb is None:
            if request.method != "GET":
                raise codec.RequestError(f"{request.method} is not allowed on {request.path}; use GET", 405)
            self._check_model(name, version, for_status=not metadata)
            return self.metadata(name, version) if metadata else self.status(name, version)
        if metadata or verb not in ("predict", "regress", "classify"):
            raise codec.RequestError(f"Malformed request: {request.method} {request.path}", 404)
        if request.method != "POST":
            raise codec.RequestError(f"{request.method} is not allowed on {request.path}; use POST", 405)
        servable = self._check_model(name, version)
        return self.predict(servable, verb, self._read_body(request))

    def _check_model(self, name: str, version: Optional[int], for_status: bool = False):
        servable = self.registry.current
        wanted = f"Specific({name}, {version})" if version is not None else f"Latest({name})"
        if name != self.registry.name:
            raise codec.RequestError(f"Servable not found for request: {wanted}", 404)
        if version is not None and version != servable.version:
            if for_status and self.registry.version_status(version):
                return servable
            if for_status:
                raise codec.RequestError(f"Could not find version {version} of model {name}", 404)
            raise codec.RequestError(f"Servable not found for request: {wanted}", 404)
        return servable

    def _read_body(self, request: Request) -> bytes:
        length = request.content_length
        if length is not None and length > self.max_body_bytes:
            raise codec.RequestError(f"request body of {length} bytes exceeds the server's limit of {self.max_body_bytes} bytes", 413)
        body = request.stream.read(self.max_body_bytes + 1)
        if len(body) > self.max_body_bytes:
            raise codec.RequestError(f"request body exceeds the server's limit of {self.max_body_bytes} bytes", 413)
        return body

    # -- endpoints ---------------------------------------------------------
    def status(self, name: str, version: Optional[int]) -> Response:
        return _json({"model_version_status": self.registry.version_status(version)})

    def metadata(self, name: str, version: Optional[int]) -> Response:
        servable = self.registry.current
        return _json(
            {
                "model_spec": {"name": name, "signature_name": "", "version": str(servable.version)},
                "metadata": {"signature_def": {"signature_def": servable.signature_def_json()}},
            }
        )

    def predict(self, servable, verb: str, body: bytes) -> Response:
        import tensorflow as tf

        request = codec.parse_body(body)
        signature = codec.signature_name(request)
        if signature not in servable.functions:
            raise codec.RequestError(f'Serving signature key "{signature}" not found.')
        if verb != "predict":
            method = servable.method_name(signature)
            if method != _VERB_METHOD[verb]:
                raise codec.RequestError(f"Expected {_VERB_KIND[verb]} signature method_name to be {_VERB_METHOD[verb]}. Was: {method}")
            raise codec.RequestError(f":{verb} is not supported by this stand-in; use :predict")  # no such signatures are exported
        arrays, row_format = codec.decode_request(request, servable.input_specs[signature], self.max_batch)
        try:
            outputs = servable.run(signature, arrays)
        except tf.errors.OpError as error:
            raise codec.RequestError(codec.clean_tf_error(error)) from None
        except (TypeError, ValueError) as error:  # e.g. inputs the function cannot take together
            raise codec.RequestError(str(error).strip().splitlines()[0]) from None
        return _json(codec.encode_response(outputs, row_format))


def make_app(
    base_path: str, name: str, scann: bool = False, poll_seconds: float = 1.0, max_batch: int = DEFAULT_MAX_BATCH,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> ServingApp:
    """Loads the newest version and starts polling for new ones."""
    registry = ModelRegistry(base_path, name, scann=scann, poll_seconds=poll_seconds)
    registry.start_polling()
    return ServingApp(registry, max_batch=max_batch, max_body_bytes=max_body_bytes)


def serve(
    base_path: str, name: str, host: str = "127.0.0.1", port: int = 8501, scann: bool = False, poll_seconds: float = 1.0,
    max_batch: int = DEFAULT_MAX_BATCH, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> None:
    """Serves until interrupted (werkzeug's threaded server: one thread per connection)."""
    from werkzeug.serving import make_server

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    app = make_app(base_path, name, scann=scann, poll_seconds=poll_seconds, max_batch=max_batch, max_body_bytes=max_body_bytes)
    server = make_server(host, port, app, threaded=True)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    print(f"Serving {name} from {app.registry.base_path} at http://{host}:{server.server_port} (version {app.registry.current.version})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        app.registry.stop()
        server.server_close()
        sys.stdout.flush()
