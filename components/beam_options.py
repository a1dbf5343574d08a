"""The Beam options every Beam job of the product starts from when the user gives none."""

import os
from typing import List


def default_beam_args() -> List[str]:
    """DirectRunner fanned out over this machine's cores."""
    return [
        "--direct_running_mode=multi_processing",
        f"--direct_num_workers={os.cpu_count() or 1}",
    ]
