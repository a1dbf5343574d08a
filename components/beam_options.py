"""The Beam options every Beam job of the product starts from when the user gives none."""

import contextlib
import difflib
import io
import logging
import os
from typing import List, Sequence

from data.errors import UserError


def default_beam_args() -> List[str]:
    """DirectRunner fanned out over this machine's cores."""
    return [
        "--direct_running_mode=multi_processing",
        f"--direct_num_workers={os.cpu_count() or 1}",
    ]


class BeamOptionError(UserError):
    """A Beam option that Beam does not know, or a value it cannot take."""


def check_beam_args(args: Sequence[str]) -> None:
    """Refuses what Beam would drop with only a log line ("Discarding unparseable args"): unknown options.

    Beam parses the flags with every PipelineOptions class's arguments; whatever is left over
    is unknown. A value Beam's parser refuses (--direct_num_workers=two) is refused here too.
    """
    from apache_beam.options.pipeline_options import PipelineOptions

    captured = {}
    beam_logger = logging.getLogger("apache_beam.options.pipeline_options")
    level = beam_logger.level
    beam_logger.setLevel(logging.ERROR)  # its own warning about the leftovers; the error below says more
    printed = io.StringIO()
    try:
        with contextlib.redirect_stderr(printed):
            PipelineOptions(list(args)).get_all_options(add_extra_args_fn=lambda parser: captured.setdefault("parser", parser))
            _, unknown = captured["parser"].parse_known_args(list(args))
    except SystemExit:  # argparse's way of refusing a value, after its usage text and the reason
        reason = printed.getvalue().strip().splitlines()[-1].split("error: ", 1)[-1]
        raise BeamOptionError(f"Beam options: {reason}") from None
    finally:
        beam_logger.setLevel(level)
    flags = [a for a in unknown if a.startswith("-")]
    if flags:
        known = [o for action in captured["parser"]._actions for o in action.option_strings]  # noqa: SLF001  the options Beam parsed with
        hints = []
        for flag in flags:
            close = difflib.get_close_matches(flag.split("=", 1)[0], known, n=1, cutoff=0.8)
            hints.append(f"{flag}" + (f" (did you mean {close[0]}?)" if close else ""))
        raise BeamOptionError(f"unknown Beam option{'s' if len(flags) > 1 else ''}: {', '.join(hints)}")
