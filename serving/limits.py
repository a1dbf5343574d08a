"""The REST stand-in's limits and defaults, named once; light to import, so the CLI reads them without loading TensorFlow."""

DEFAULT_MAX_BATCH = 1024  # instances per request, and rows per batched model call
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
IDLE_TIMEOUT_SECONDS = 50.0  # what TF Serving's HTTP server (libevent) waits on an idle keep-alive connection
DEFAULT_BATCH_THREADS = None  # batched calls at once: one per core, as TF Serving advises (serving/batching.py)
