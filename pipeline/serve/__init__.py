"""A local stand-in for TF Serving's REST API (tensorflow_model_server cannot be installed here).

codec: TF Serving JSON <-> tensors; registry: versions on disk, hot reload;
app: the WSGI routes; loadtest: the REST latency benchmark.
"""
