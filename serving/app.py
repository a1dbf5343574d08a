"""TF Serving's REST routes as a WSGI app (werkzeug request/response objects), plus `serve()` (Tornado's HTTP server).

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
# tensorflow_serving/model_servers/http_rest_api_handler.cc: its three routes, matched on the path with its query string.
_PREDICT = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?:(?P<verb>classify|regress|predict)$")
_STATUS = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?$")
_METADATA = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?/metadata$")
# What TF Serving's HTTP server (libevent) answers for a path outside /v1/.
_NOT_FOUND_PAGE = b"<HTML><HEAD>\n<TITLE>404 Not Found</TITLE>\n</HEAD><BODY>\n<H1>Not Found</H1>\n</BODY></HTML>\n"
_INT64_MAX = 2**63 - 1
_VERB_METHOD = {"regress": "tensorflow/serving/regress", "classify": "tensorflow/serving/classify"}
_VERB_KIND = {"regress": "regression", "classify": "classification"}
log = logging.getLogger(__name__)


def _json(payload: Dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")


def _error(message: str, status: int) -> Response:
    return Response(codec.error_body(message), status=status, mimetype="application/json")


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
            response = _error(str(error), error.status)
        except HTTPException as error:
            response = _error(error.description or error.name, error.code or 400)
        except Exception as error:  # never let one request take the server down
            log.exception("internal error on %s %s", request.method, request.path)
            response = _error(f"Internal error: {type(error).__name__}: {error}", 500)
        return response(environ, start_response)

    # -- routing -----------------------------------------------------------
    def dispatch(self, request: Request) -> Response:
        query = request.environ.get("QUERY_STRING", "")
        path = request.path + (f"?{query}" if query else "")
        if not path.lower().startswith("/v1/"):
            return Response(_NOT_FOUND_PAGE, status=404, mimetype="text/html", headers={"Connection": "close"})
        malformed = codec.RequestError(f"Malformed request: {request.method} {path}", 400)
        route = {"POST": (_PREDICT,), "GET": (_METADATA, _STATUS)}.get(request.method, ())
        match = next((m for m in (pattern.match(path) for pattern in route) if m), None)
        if match is None:
            raise malformed
        name, version_text = match.group("name", "version")
        if version_text is not None and int(version_text) > _INT64_MAX:
            return Response(b"", status=400)  # TF Serving answers "Failed to convert version" with no body
        version = int(version_text) if version_text is not None else None
        if request.method == "GET":
            if match.re is _METADATA:
                return self.metadata(self._servable(name, version), name)
            return self.status(name, version)
        return self.predict(name, version, match.group("verb"), self._read_body(request))

    def _servable(self, name: str, version: Optional[int]):
        """The loaded servable a request names, or TF Serving's NOT_FOUND (404)."""
        servable = self.registry.current
        if name != self.registry.name or (version is not None and version != servable.version):
            wanted = f"Specific({name}, {version})" if version is not None else f"Latest({name})"
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
        """GET /v1/models/NAME[/versions/V]: get_model_status_impl.cc's answer and texts."""
        if name != self.registry.name:
            raise codec.RequestError(f"Could not find any versions of model {name}", 404)
        states = self.registry.version_status(version)
        if not states:
            raise codec.RequestError(f"Could not find version {version} of model {name}", 404)
        return _json({"model_version_status": states})

    def metadata(self, servable, name: str) -> Response:
        return _json(
            {
                "model_spec": {"name": name, "signature_name": "", "version": str(servable.version)},
                "metadata": {"signature_def": {"signature_def": servable.signature_def_json()}},
            }
        )

    def predict(self, name: str, version: Optional[int], verb: str, body: bytes) -> Response:
        """In TF Serving's order: the document, its signature_name, then the servable and signature, then the inputs."""
        import tensorflow as tf

        request = codec.parse_body(body)
        signature = codec.signature_name(request)
        servable = self._servable(name, version)
        if signature not in servable.functions:
            raise codec.RequestError(f'Serving signature name: "{signature}" not found in signature def')
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


IDLE_TIMEOUT_SECONDS = 50.0  # what TF Serving's HTTP server (libevent) waits on an idle keep-alive connection


class HttpServer:
    """Tornado's HTTP/1.1 server running the WSGI app, on a thread and event loop of its own.

    Tornado gives keep-alive connections, pipelined requests answered in order,
    and idle connections closed after `idle_timeout`; the app runs on a pool of
    `workers` threads (TensorFlow releases the GIL while a signature runs).
    werkzeug's own server closes every connection after one response.
    """

    def __init__(self, app: "ServingApp", host: str = "127.0.0.1", port: int = 0, idle_timeout: float = IDLE_TIMEOUT_SECONDS,
                 workers: Optional[int] = None):
        import asyncio
        import os
        import threading
        from concurrent.futures import ThreadPoolExecutor

        self.app = app
        self._pool = ThreadPoolExecutor(max_workers=workers or max(8, 2 * (os.cpu_count() or 1)), thread_name_prefix="predict")
        self._loop = asyncio.new_event_loop()
        started = threading.Event()
        failure: list = []

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            try:
                self._start(host, port, idle_timeout)
            except BaseException as error:  # e.g. the port is taken: the caller raises it
                failure.append(error)
                started.set()
                return
            started.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="http", daemon=True)
        self._thread.start()
        started.wait()
        if failure:
            raise failure[0]

    def _start(self, host: str, port: int, idle_timeout: float) -> None:
        from tornado import netutil
        from tornado.httpserver import HTTPServer
        from tornado.wsgi import WSGIContainer

        logging.getLogger("tornado.access").setLevel(logging.ERROR)  # no line per request, 4xx ones included
        # The app answers bodies over its own limit with a 413; Tornado only stops the absurd ones.
        self._server = HTTPServer(
            WSGIContainer(self.app, executor=self._pool), idle_connection_timeout=idle_timeout, max_body_size=4 * self.app.max_body_bytes + 2**20
        )
        sockets = netutil.bind_sockets(port, address=host)
        self._server.add_sockets(sockets)
        self.port = sockets[0].getsockname()[1]

    def wait(self) -> None:
        self._thread.join()

    def close(self) -> None:
        """Stops listening and serving; the app's model registry is its owner's to stop."""
        self._loop.call_soon_threadsafe(self._server.stop)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._pool.shutdown(wait=False)


def serve(
    base_path: str, name: str, host: str = "127.0.0.1", port: int = 8501, scann: bool = False, poll_seconds: float = 1.0,
    max_batch: int = DEFAULT_MAX_BATCH, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, idle_timeout: float = IDLE_TIMEOUT_SECONDS,
    workers: Optional[int] = None,
) -> None:
    """Serves until interrupted."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    app = make_app(base_path, name, scann=scann, poll_seconds=poll_seconds, max_batch=max_batch, max_body_bytes=max_body_bytes)
    server = HttpServer(app, host, port, idle_timeout, workers)
    print(f"Serving {name} from {app.registry.base_path} at http://{host}:{server.port} (version {app.registry.current.version})", flush=True)
    try:
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        app.registry.stop()
        sys.stdout.flush()
