"""TF Serving's REST routes (`ServingApp.handle`), served by `HttpServer` on Tornado's HTTP/1.1 server, and `serve()`.

Routes (as tensorflow_model_server's REST API; /labels/L wherever /versions/V may stand):
  GET  /v1/models/NAME[/versions/V]            model version status
  GET  /v1/models/NAME[/versions/V]/metadata   signature defs
  POST /v1/models/NAME[/versions/V]:predict    (:regress, :classify)
No version labels are configured (there is no model config file), so a label
gets TF Serving's "Unrecognized servable version label" 400, except on the
status route, which lists every version whatever the label, as TF Serving's does.
Paths are matched as sent (not percent-decoded, as TF Serving's libevent
server hands them over) against the one configured model name and a numeric
version, never turned into file paths, so a request cannot reach files.
"""

import dataclasses
import errno
import json
import logging
import re
import sys
import urllib.parse
from typing import Any, Dict, Optional

from data.errors import UserError
from serving import codec
from serving.batching import Batcher
from serving.limits import DEFAULT_BATCH_THREADS, DEFAULT_MAX_BATCH, DEFAULT_MAX_BODY_BYTES, IDLE_TIMEOUT_SECONDS
from serving.registry import ModelRegistry

# tensorflow_serving/model_servers/http_rest_api_util.cc: its routes, matched on the path with its query string;
# a version is named by number (/versions/N) or by label (/labels/L).
_WHICH = r"(?:(?:/versions/(?P<version>\d+))|(?:/labels/(?P<label>[^/:]+)))?"
_PREDICT = re.compile(rf"^/v1/models/(?P<name>[^/:]+){_WHICH}:(?P<verb>classify|regress|predict)$")
_STATUS = re.compile(rf"^/v1/models/(?P<name>[^/:]+){_WHICH}$")
_METADATA = re.compile(rf"^/v1/models/(?P<name>[^/:]+){_WHICH}/metadata$")
_ROUTES = {"POST": (_PREDICT,), "GET": (_METADATA, _STATUS)}
# What TF Serving's HTTP server (libevent) answers for a path outside /v1/.
_NOT_FOUND_PAGE = b"<HTML><HEAD>\n<TITLE>404 Not Found</TITLE>\n</HEAD><BODY>\n<H1>Not Found</H1>\n</BODY></HTML>\n"
_INT64_MAX = 2**63 - 1
_VERB_METHOD = {"regress": "tensorflow/serving/regress", "classify": "tensorflow/serving/classify"}
_VERB_KIND = {"regress": "regression", "classify": "classification"}
log = logging.getLogger(__name__)


@dataclasses.dataclass
class Reply:
    """One HTTP response: status, body and its content type; `close` adds Connection: close (libevent's 404 page)."""

    status: int
    body: bytes
    content_type: str = "application/json"
    close: bool = False


def _json(payload: Dict[str, Any], status: int = 200) -> Reply:
    return Reply(status, json.dumps(payload).encode())


def _error(message: str, status: int) -> Reply:
    return Reply(status, codec.error_body(message))


class ServingApp:
    """The REST API of one ModelRegistry, independent of the HTTP server; batches concurrent requests when given a Batcher."""

    def __init__(
        self, registry: ModelRegistry, max_batch: int = DEFAULT_MAX_BATCH, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        batcher: Optional[Batcher] = None,
    ):
        self.registry = registry
        self.max_batch = max_batch
        self.max_body_bytes = max_body_bytes
        self.batcher = batcher

    def handle(self, method: str, uri: str, body: bytes, body_bytes: Optional[int] = None) -> Reply:
        """The answer to one request (`uri`: the path with its query string, as sent).

        `body_bytes`: the body's size when the server dropped a body over the limit instead of keeping it.
        """
        try:
            return self.dispatch(method, uri, body, len(body) if body_bytes is None else body_bytes)
        except codec.RequestError as error:
            return _error(str(error), error.status)
        except Exception as error:  # never let one request take the server down
            log.exception("internal error on %s %s", method, uri)
            return _error(f"Internal error: {type(error).__name__}: {error}", 500)

    # -- routing -----------------------------------------------------------
    def dispatch(self, method: str, uri: str, body: bytes, body_bytes: int) -> Reply:
        if not uri.lower().startswith("/v1/"):
            return Reply(404, _NOT_FOUND_PAGE, content_type="text/html", close=True)
        match = next((m for m in (pattern.match(uri) for pattern in _ROUTES.get(method, ())) if m), None)
        if match is None:
            raise codec.RequestError(f"Malformed request: {method} {uri}", 400)
        name, version_text, label = match.group("name", "version", "label")
        if version_text is not None and int(version_text) > _INT64_MAX:
            return Reply(400, b"")  # TF Serving answers "Failed to convert version" with no body
        version = int(version_text) if version_text is not None else None
        if label is not None and not (method == "GET" and match.re is _STATUS):
            # server_core.cc's GetModelVersionForLabel: the stand-in, like a server started with
            # --model_base_path and no --model_config_file, has no labels configured.
            raise codec.RequestError(f"Unrecognized servable version label: {urllib.parse.unquote(label)}", 400)
        if method == "GET":
            if match.re is _METADATA:
                return self.metadata(self._servable(name, version), name)
            return self.status(name, version)
        if body_bytes > self.max_body_bytes:
            raise codec.RequestError(f"request body of {body_bytes} bytes exceeds the server's limit of {self.max_body_bytes} bytes", 413)
        return self.predict(name, version, match.group("verb"), body)

    def _servable(self, name: str, version: Optional[int]):
        """The loaded servable a request names, or TF Serving's NOT_FOUND (404)."""
        servable = self.registry.current
        if name != self.registry.name or servable is None or (version is not None and version != servable.version):
            wanted = f"Specific({name}, {version})" if version is not None else f"Latest({name})"
            raise codec.RequestError(f"Servable not found for request: {wanted}", 404)
        return servable

    # -- endpoints ---------------------------------------------------------
    def status(self, name: str, version: Optional[int]) -> Reply:
        """GET /v1/models/NAME[/versions/V]: get_model_status_impl.cc's answer and texts."""
        if name != self.registry.name:
            raise codec.RequestError(f"Could not find any versions of model {name}", 404)
        states = self.registry.version_status(version)
        if not states:
            raise codec.RequestError(f"Could not find version {version} of model {name}", 404)
        return _json({"model_version_status": states})

    def metadata(self, servable, name: str) -> Reply:
        return _json(
            {
                "model_spec": {"name": name, "signature_name": "", "version": str(servable.version)},
                "metadata": {"signature_def": {"signature_def": servable.signature_def_json()}},
            }
        )

    def predict(self, name: str, version: Optional[int], verb: str, body: bytes) -> Reply:
        """In TF Serving's order: the document, its signature_name, then the servable and signature, then the inputs."""
        import tensorflow as tf

        request = codec.parse_body(body)
        signature = codec.signature_name(request)
        servable = self._servable(name, version)
        if signature not in servable.signatures:
            raise codec.RequestError(f'Serving signature name: "{signature}" not found in signature def')
        if verb != "predict":
            method = servable.method_name(signature)
            if method != _VERB_METHOD[verb]:
                raise codec.RequestError(f"Expected {_VERB_KIND[verb]} signature method_name to be {_VERB_METHOD[verb]}. Was: {method}")
            raise codec.RequestError(f":{verb} is not supported by this stand-in; use :predict")  # no such signatures are exported
        arrays, row_format = codec.decode_request(request, servable.input_specs[signature], self.max_batch)
        try:
            outputs = self.batcher.run(servable, signature, arrays) if self.batcher else servable.run(signature, arrays)
        except tf.errors.OpError as error:
            raise codec.RequestError(codec.clean_tf_error(error)) from None
        except (TypeError, ValueError) as error:  # e.g. inputs the function cannot take together
            raise codec.RequestError(str(error).strip().splitlines()[0]) from None
        return Reply(200, codec.encode_response(outputs, row_format))


def make_app(
    base_path: str, name: str, scann: bool = False, poll_seconds: float = 1.0, max_batch: int = DEFAULT_MAX_BATCH,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, batching: bool = True, batch_threads: Optional[int] = DEFAULT_BATCH_THREADS,
) -> ServingApp:
    """Loads the newest version and starts polling for new ones.

    With `batching`, concurrent requests are answered in batches of up to `max_batch` rows,
    at most `batch_threads` calls at once, as serving/batching.py describes.
    """
    registry = ModelRegistry(base_path, name, scann=scann, poll_seconds=poll_seconds)
    registry.start_polling()
    batcher = Batcher(max_batch_rows=max_batch, threads=batch_threads) if batching else None
    return ServingApp(registry, max_batch=max_batch, max_body_bytes=max_body_bytes, batcher=batcher)


class PortError(UserError):
    """The address `serve` was asked to listen on is taken or not this machine's."""


class _Exchange:
    """One request as Tornado reads it (a tornado.httputil.HTTPMessageDelegate): the body is kept up to
    the app's limit and only counted beyond it, so any body over the limit, with a Content-Length or
    chunked, is read to its end and answered with the app's 413 instead of Tornado's empty 400."""

    def __init__(self, server: "HttpServer", connection):
        self._server, self._connection = server, connection
        self._chunks: list = []
        self._size = 0

    def headers_received(self, start_line, headers) -> None:
        self._method, self._uri = start_line.method, start_line.path

    def data_received(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size <= self._server.app.max_body_bytes:
            self._chunks.append(chunk)

    def finish(self) -> None:
        kept = self._size <= self._server.app.max_body_bytes
        body = b"".join(self._chunks) if kept else b""
        self._chunks = []
        self._server.answer(self._connection, self._method, self._uri, body, None if kept else self._size)

    def on_connection_close(self) -> None:
        self._chunks = []


class HttpServer:
    """Tornado's HTTP/1.1 server answering with a ServingApp, on a thread and event loop of its own.

    Tornado gives keep-alive connections, pipelined requests answered in order
    (a connection reads its next request once the last is answered) and idle
    connections closed after `idle_timeout`; a request whose headers or body
    stop arriving is closed after the same time. Bodies are read on the event
    loop, so a slow client never holds a worker. Each complete request is
    handed to the app on a pool of `workers` threads (TensorFlow releases the
    GIL while a signature runs), through Tornado's own connection interface:
    no WSGI layer per request, which halves the server's cost of a request.
    """

    def __init__(self, app: ServingApp, host: str = "127.0.0.1", port: int = 0, idle_timeout: float = IDLE_TIMEOUT_SECONDS,
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
        from tornado import httputil, netutil
        from tornado.httpserver import HTTPServer

        server = self

        class Requests(httputil.HTTPServerConnectionDelegate):
            def start_request(self, server_conn, request_conn):
                return _Exchange(server, request_conn)

        # No size cap in Tornado: _Exchange keeps what the app's limit allows and the app answers the rest with its 413.
        self._server = HTTPServer(Requests(), idle_connection_timeout=idle_timeout, body_timeout=idle_timeout, max_body_size=2**62)
        sockets = netutil.bind_sockets(port, address=host)
        self._server.add_sockets(sockets)
        self.port = sockets[0].getsockname()[1]

    def answer(self, connection, method: str, uri: str, body: bytes, body_bytes: Optional[int]) -> None:
        """Called on the event loop once a request has been read."""
        self._loop.create_task(self._answer(connection, method, uri, body, body_bytes))

    async def _answer(self, connection, method: str, uri: str, body: bytes, body_bytes: Optional[int]) -> None:
        from tornado import httputil
        from tornado.iostream import StreamClosedError

        reply = await self._loop.run_in_executor(self._pool, self.app.handle, method, uri, body, body_bytes)
        headers = httputil.HTTPHeaders({"Content-Type": reply.content_type, "Content-Length": str(len(reply.body))})
        if reply.close:
            headers["Connection"] = "close"
        start = httputil.ResponseStartLine("HTTP/1.1", reply.status, httputil.responses.get(reply.status, "Unknown"))
        try:
            connection.write_headers(start, headers, reply.body)
            connection.finish()
        except StreamClosedError:  # the client went away first
            pass

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
    workers: Optional[int] = None, batching: bool = True, batch_threads: Optional[int] = DEFAULT_BATCH_THREADS,
) -> None:
    """Serves until interrupted."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    app = make_app(
        base_path, name, scann=scann, poll_seconds=poll_seconds, max_batch=max_batch, max_body_bytes=max_body_bytes,
        batching=batching, batch_threads=batch_threads,
    )
    try:
        server = HttpServer(app, host, port, idle_timeout, workers)
    except OSError as error:
        app.registry.stop()
        if error.errno in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
            raise PortError(f"cannot listen on {host}:{port}: {error.strerror} (give another --port or --host)") from None
        raise
    print(f"Serving {name} from {app.registry.base_path} at http://{host}:{server.port} (version {app.registry.current.version})", flush=True)
    try:
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        app.registry.stop()
        sys.stdout.flush()
