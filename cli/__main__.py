"""`python -m cli` runs the `influencer-recs` command."""

import sys

from cli.main import main

sys.exit(main())
