"""influencer-recs: a TFX/Keras influencer recommender pipeline."""

from setuptools import find_packages, setup

# The top-level packages, one concern each (README: Layout).
ROOMS = ("cli", "benchmarks", "runs", "pipeline", "serving", "components", "models", "data")

DASK = ["dask==2026.8.0", "distributed==2026.8.0"]  # batch-score on Beam's DaskRunner


setup(
    name="influencer-recs",
    version="0.1.0",
    description="Recommends influencers to brands: TFX pipeline, TFRS two-tower model, ScaNN index.",
    python_requires=">=3.10,<3.11",
    packages=find_packages(include=[f"{room}{part}" for room in ROOMS for part in ("", ".*")]),
    package_data={"data": ["schema.pbtxt"]},
    # Exact versions live in requirements.lock (the Makefile installs from it);
    # these are the direct dependencies, pinned to the set that installs on 3.10.
    install_requires=[
        "tfx==1.16.0",
        "tensorflow==2.16.2",
        "tf_keras==2.16.0",
        "tensorflow-transform==1.16.0",
        "tensorflow-data-validation==1.16.1",
        "tensorflow-model-analysis==0.47.1",
        "tensorflow-recommenders==0.7.7",
        "scann==1.3.2",
        "apache-beam==2.74.0",
        "numpy==1.26.4",
        "pandas==1.5.3",
        "pyarrow==10.0.1",
        "protobuf==3.20.3",
        "dill",
        "kfp-pipeline-spec>=0.1.10,<0.2",
        "tornado>=6.3,<7",  # the REST stand-in's HTTP/1.1 server (keep-alive, pipelining)
    ],
    # Dask: batch-score on Beam's DaskRunner (docs/batch-scoring.md), run on a real LocalCluster in the tests.
    # SANSA: the scale benchmark's baseline at 1M items (make bench-scale); scikit-sparse builds against SuiteSparse's
    # headers (Debian: apt-get install libsuitesparse-dev), so it is not part of the default install.
    extras_require={"dask": DASK, "test": ["pytest", *DASK],
                    "scale": ["sansa==1.1.0", "scikit-sparse==0.4.16", "numba==0.68.1"]},
    entry_points={"console_scripts": ["influencer-recs=cli.main:main"]},
)
