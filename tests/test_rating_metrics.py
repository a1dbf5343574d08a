"""The rating head's fused TFMA metric against numpy, resolved from the pipeline's own EvalConfig as the Evaluator resolves it."""

import numpy as np
import pytest
from tensorflow_model_analysis.metrics import metric_specs, metric_types

from models import rating_metrics
from pipeline.config import PipelineConfig
from pipeline.pipeline import eval_config


def _combiner(example_weighted: bool = False):
    config = eval_config(PipelineConfig(data_dir="d", output_dir="o"))
    spec = config.metrics_specs[0]
    if example_weighted:
        spec.example_weights.weighted = True
    (computation,) = metric_specs.to_computations([spec], eval_config=config)
    return computation.combiner, computation.keys


def _inputs(label, prediction, weight=None):
    extracts = {"labels": np.array([label], np.float32), "predictions": np.array([prediction], np.float32)}
    if weight is not None:
        extracts["example_weights"] = np.array([weight], np.float32)
    return metric_types.StandardMetricInputs(extracts)


def _combine(combiner, examples):
    halves = []
    for part in (examples[: len(examples) // 2], examples[len(examples) // 2 :]):  # as Beam merges workers' partial sums
        accumulator = combiner.create_accumulator()
        for example in part:
            accumulator = combiner.add_input(accumulator, example)
        halves.append(accumulator)
    return combiner.extract_output(combiner.merge_accumulators(halves))


def _values(output):
    return {key.name: value for key, value in output.items()}


def test_rmse_mae_and_count_match_numpy_and_keep_tfma_s_names():
    rng = np.random.default_rng(0)
    labels, predictions = rng.random(101).astype(np.float32), rng.random(101).astype(np.float32)
    combiner, keys = _combiner()
    got = _values(_combine(combiner, [_inputs(a, b) for a, b in zip(labels, predictions)]))
    error = labels.astype(np.float64) - predictions.astype(np.float64)
    assert got["root_mean_squared_error"] == pytest.approx(np.sqrt(np.mean(error**2)), rel=1e-9)
    assert got["mean_absolute_error"] == pytest.approx(np.mean(np.abs(error)), rel=1e-9)
    assert got["example_count"] == 101
    assert {key.name for key in keys} == {rating_metrics.RMSE, rating_metrics.MAE, rating_metrics.EXAMPLE_COUNT}


def test_example_weights_take_tfma_s_generic_path():
    combiner, _ = _combiner(example_weighted=True)
    got = _values(_combine(combiner, [_inputs(1.0, 0.0, 3.0), _inputs(0.0, 0.0, 1.0)]))
    assert got["root_mean_squared_error"] == pytest.approx(np.sqrt(3.0 / 4.0))
    assert got["mean_absolute_error"] == pytest.approx(3.0 / 4.0)
    assert got["example_count"] == 4.0  # the summed weight, as TFMA's weighted example count


def test_a_nan_prediction_is_left_out_and_no_examples_give_nan():
    combiner, _ = _combiner()
    got = _values(_combine(combiner, [_inputs(1.0, np.nan), _inputs(1.0, 0.5)]))
    assert got["root_mean_squared_error"] == pytest.approx(0.5) and got["example_count"] == 1
    empty = _values(combiner.extract_output(combiner.create_accumulator()))
    assert np.isnan(empty["root_mean_squared_error"]) and empty["example_count"] == 0


def test_the_gate_s_thresholds_attach_to_the_rmse_key():
    config = eval_config(PipelineConfig(data_dir="d", output_dir="o", max_rmse=0.3))
    thresholds = metric_specs.metric_thresholds_from_metrics_specs(config.metrics_specs, eval_config=config)
    assert {key.name for key in thresholds} == {rating_metrics.RMSE}
