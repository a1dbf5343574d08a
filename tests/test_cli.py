"""Command-line parsing: options reach the pipeline config untouched."""

import os

import pytest

from cli.main import config_from_args, main, parse_args


def _config(*extra):
    return config_from_args(parse_args(["run", "--data", "d", "--output", "o", *extra]))


def test_default_runner_is_multi_processing_direct_on_all_cores():
    config = _config()
    assert config.beam_pipeline_args == [
        "--direct_running_mode=multi_processing",
        f"--direct_num_workers={os.cpu_count()}",
    ]
    assert config.metadata_path == os.path.join("o", "metadata.sqlite")


def test_beam_args_pass_through_untouched():
    flags = ["--runner=DataflowRunner", "--project=p", "--temp_location=gs://b/tmp", "--region=europe-west1"]
    assert _config("--", *flags).beam_pipeline_args == flags
    assert _config("--beam_pipeline_args=--direct_num_workers=4 --direct_running_mode=multi_threading").beam_pipeline_args == [
        "--direct_num_workers=4",
        "--direct_running_mode=multi_threading",
    ]


def test_transform_options_reach_the_config():
    config = _config("--star-weight", "1", "--sentiment-weight", "0", "--follower-scaling", "minmax", "--eval-ratio", "0.1")
    assert config.transform_config()["star_weight"] == 1.0
    assert config.transform_config()["follower_scaling"] == "minmax"
    assert config.eval_ratio == 0.1


def test_validate_reports_bad_input_without_a_traceback(tmp_path, capsys):
    assert main(["validate", "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "historical_data.csv" in err and "data_content_influencer_categ.csv" in err
    assert "Traceback" not in err


def test_invalid_config_is_refused():
    with pytest.raises(ValueError, match="eval_ratio"):
        _config("--eval-ratio", "1.5")
