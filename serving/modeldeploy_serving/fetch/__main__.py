"""`python -m modeldeploy_serving.fetch`: the same command as `modeldeploy fetch`."""

import sys

from modeldeploy_serving.fetch.cli import main

raise SystemExit(main(sys.argv[1:]))
