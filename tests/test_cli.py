"""Command-line parsing: options reach the pipeline config untouched; conventions users expect."""

import os

import pytest

from cli.main import build_parser, main, parse_args
from cli.options import config_from_args


def _config(*extra):
    return config_from_args(parse_args(["run", "--data", "d", "--output", "o", *extra]))


def test_default_runner_is_multi_processing_direct_on_all_cores():
    config = _config()
    assert config.beam_pipeline_args == [
        "--direct_running_mode=multi_processing",
        f"--direct_num_workers={os.cpu_count()}",
    ]
    assert config.metadata_path == os.path.abspath(os.path.join("o", "metadata.sqlite"))
    assert config.enable_cache


def test_beam_args_pass_through_untouched_only_after_a_bare_double_dash():
    flags = ["--runner=DataflowRunner", "--project=p", "--temp_location=gs://b/tmp", "--region=europe-west1"]
    assert _config("--", *flags).beam_pipeline_args == flags
    assert _config("--beam_pipeline_args=--direct_num_workers=4 --direct_running_mode=multi_threading").beam_pipeline_args == [
        "--direct_num_workers=4",
        "--direct_running_mode=multi_threading",
    ]
    with pytest.raises(SystemExit) as exit_:
        parse_args(["batch-score", "--model", "m", "--owners", "o", "--out", "x", "--formt", "csv"])  # a typo is not a Beam option
    assert exit_.value.code == 2


def test_options_reach_their_config_section():
    config = _config("--star-weight", "1", "--sentiment-weight", "0", "--follower-scaling", "minmax", "--eval-ratio", "0.1",
                     "--epochs", "3", "--min-lift-over-popular", "2.5", "--no-cache")
    assert config.transform.star_weight == 1.0 and config.transform.follower_scaling == "minmax"
    assert config.eval_ratio == 0.1 and config.model.epochs == 3 and config.min_lift_over_popular == 2.5
    assert not config.enable_cache


def test_a_config_file_sets_every_knob_and_flags_override_it(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("data_dir: d\noutput_dir: o\nmax_rmse: 0.5\nmodel:\n  epochs: 7\n  learning_rate: 0.01\nexport:\n  default_k: 5\n")
    config = config_from_args(parse_args(["run", "--config", str(path), "--epochs", "2"]))
    assert config.max_rmse == 0.5 and config.model.learning_rate == 0.01 and config.export.default_k == 5
    assert config.model.epochs == 2 and config.data_dir == "d"


@pytest.mark.parametrize("text, message", [
    ("data_dir: d\noutput_dir: o\nmax_rmsee: 1\n", "unknown key 'max_rmsee'"),
    ("data_dir: d\noutput_dir: o\nmodel:\n  epoch: 3\n", "unknown key model.'epoch'"),
    ("data_dir: d\noutput_dir: o\neval_ratio: 2\n", "eval_ratio must be > 0 and < 1, got 2"),
    ("- a\n- b\n", "expected a mapping"),
    ("data_dir: [unclosed\n", "not valid YAML"),
])
def test_a_bad_config_file_is_a_clear_error_naming_it(tmp_path, capsys, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert main(["run", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and str(path) in err and "Traceback" not in err


def test_version_and_help_with_defaults(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.startswith("influencer-recs ")
    run_help = " ".join(build_parser()._subparsers._group_actions[0].choices["run"].format_help().split())
    for text in ("--eval-ratio", "(default: 0.2)", "--max-rmse", "(default: 0.3)", "--no-cache", "Exit codes"):
        assert text in run_help
    batch_help = " ".join(build_parser()._subparsers._group_actions[0].choices["batch-score"].format_help().split())
    assert "(default: 20)" in batch_help and "(default: jsonl)" in batch_help


def test_validate_reports_bad_input_without_a_traceback(tmp_path, capsys):
    assert main(["validate", "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "historical_data.csv" in err and "data_content_influencer_categ.csv" in err
    assert "Traceback" not in err


def test_invalid_config_is_refused(capsys):
    assert main(["run", "--data", "d", "--output", "o", "--eval-ratio", "1.5"]) == 2
    assert "eval_ratio must be > 0 and < 1, got 1.5" in capsys.readouterr().err


def test_user_mistakes_exit_2_with_a_message_not_a_traceback(tmp_path, capsys, small_data):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    cases = [
        (["run", "--data", small_data, "--output", str(a_file)], "is a file"),
        (["run", "--data", small_data, "--output", str(a_file / "below")], "lies below the file"),
        (["run", "--data", small_data, "--output", str(tmp_path / "o"), "--", "--formt=x"], "unknown Beam option: --formt=x"),
        (["run", "--data", small_data, "--output", str(tmp_path / "o"), "--", "--direct_num_wrkers=2"], "did you mean --direct_num_workers?"),
        (["runs", "list", "--output", str(tmp_path / "nonexistent")], "holds no runs"),
        (["report", "--output", str(tmp_path / "nonexistent")], "holds no runs"),
        (["run", "--data", str(a_file), "--output", str(tmp_path / "o")], "is a file, not the folder holding the CSVs"),
    ]
    for argv, message in cases:
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (argv, err)
    assert not (tmp_path / "o").exists()  # refused before the output folder was touched


def test_batch_score_beam_typo_after_dashes_exits_2(tmp_path, capsys):
    from components.beam_options import BeamOptionError, check_beam_args

    with pytest.raises(BeamOptionError, match="unknown Beam option: --formt=x"):
        check_beam_args(["--formt=x"])
    check_beam_args(["--runner=DirectRunner", "--direct_running_mode=in_memory", "--direct_num_workers=2"])
    with pytest.raises(BeamOptionError, match="invalid int value: 'two'"):
        check_beam_args(["--direct_num_workers=two"])
    # Through the command line: exit 2 naming the option, before the model or the owners are read.
    argv = ["batch-score", "--model", str(tmp_path / "no-model"), "--owners", str(tmp_path / "no.csv"), "--out", str(tmp_path / "out")]
    assert main([*argv, "--", "--formt=x"]) == 2
    err = capsys.readouterr().err
    assert "unknown Beam option: --formt=x" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_a_run_that_fails_says_where_its_log_is_and_frees_the_folder(tmp_path, small_data, capsys, monkeypatch):
    from pipeline import local_runner
    from pipeline.run_lock import output_lock

    def fail(config):
        raise RuntimeError("a component failed")

    monkeypatch.setattr(local_runner, "run", fail)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="a component failed"):  # exit 1 with the traceback: not the user's mistake
        main(["run", "--data", small_data, "--output", str(out)])
    err = capsys.readouterr().err
    assert "the run stopped; the full log is" in err and str(out / "logs") in err
    with output_lock(str(out)):  # released: the next run may start
        pass


def test_serve_on_a_taken_port_exits_2(tmp_path, capsys, monkeypatch):
    import socket

    from serving import app as app_module

    class Registry:
        base_path, name = str(tmp_path), "m"

        def stop(self):
            pass

    monkeypatch.setattr(app_module, "make_app", lambda *a, **k: app_module.ServingApp(Registry()))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--model-base-path", str(tmp_path), "--model-name", "m", "--port", str(port)]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_benchmark_console_shows_its_progress_and_sends_the_rest_to_the_log(tmp_path, small_data, capfd, monkeypatch):
    from benchmarks import quality

    def fake_benchmark(config, notebook_epochs, markdown_path, progress, seeds, name):
        print("INFO:absl:Component Trainer is running. (noise only the log wants)")
        progress("benchmark: tuning and scoring EASE and iALS")
        return {"results": {"EASE": {"recall@10": 0.25, "owners": 3}}, "cold_start": {}, "paired": {}}

    monkeypatch.setattr(quality, "run_benchmark", fake_benchmark)
    out = tmp_path / "bench"
    assert main(["benchmark", "--data", small_data, "--output", str(out)]) == 0
    captured = capfd.readouterr()
    console = captured.out + captured.err
    assert "benchmark: tuning and scoring EASE and iALS" in console and "EASE" in captured.out and "recall@10 0.2500" in captured.out
    assert "noise only the log wants" not in console
    (log,) = (out / "logs").iterdir()
    assert "noise only the log wants" in log.read_text()
