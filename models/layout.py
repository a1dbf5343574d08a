"""Where things are inside the artifacts and the exported versions: file and folder names, defined once.

No TensorFlow here: `runs list` and the reports read these without loading it.
"""

MEASURED_FORMAT = "Format-Serving"  # TFX's serving_model_dir: owner tables from the known rows; what the gates measure
PUSHED_FORMAT = "Format-Pushed"  # beside it: tables from every row; what the Pusher publishes
TRAINING_REPORT = "training_report.json"  # in assets.extra/: schedule, validation per epoch, the blend, step times
SCANN_SUBDIR = "scann"  # in a version: the ScaNN SavedModel
INDEX_REPORT = "index_report.json"  # in assets.extra/: how the index was tuned
RETRIEVAL_METRICS_FILE = "retrieval_metrics.json"  # in the RetrievalEvaluator's evaluation artifact
VALIDATION_REPORT_FILE = "validation_report.json"  # in ExampleGen's examples artifact
CATALOG_REFRESH_REPORT = "catalog_refresh.json"  # in assets.extra/ of a version `refresh-catalog` wrote: what changed, from which version
