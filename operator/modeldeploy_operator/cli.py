"""`modeldeploy`: one entry point, one subcommand per job.

Imports are lazy so the server image (no kopf) and the operator image (no scikit-learn) each
load only what their subcommand needs.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# The server-side subcommands live in the serving package; each module has `main(argv) -> int`.
SUBCOMMANDS = {
    "serve": "modeldeploy_serving.server",
    "fetch": "modeldeploy_serving.fetch",
    "reference": "modeldeploy_serving.reference",
    "evaluate": "modeldeploy_serving.evaluate",
}
PLUGIN_VERBS = ("status", "promote", "abort", "pause", "resume")

USAGE = """modeldeploy <command> [args]

commands:
  operator    run the controller against the current kubeconfig (or in-cluster)
  serve       run the model server
  fetch       download a model artifact into a directory (the storage initializer)
  reference   save the training-data reference the server's drift metrics compare against
  evaluate    score a candidate and the champion on one holdout (a RetrainingRun's evaluator)
  status | promote | abort | pause | resume NAME
              rollout control (also available as `kubectl modeldeploy ...`)
"""


def _operator(argv: list[str]) -> int:
    from modeldeploy_operator import settings
    from modeldeploy_operator.runner import run

    parser = argparse.ArgumentParser(prog="modeldeploy operator")
    settings.add_arguments(parser)
    return run(settings.from_arguments(parser.parse_args(argv)))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "operator":
        return _operator(rest)
    if command in SUBCOMMANDS:
        module = importlib.import_module(SUBCOMMANDS[command])
        return int(module.main(rest))
    if command in PLUGIN_VERBS:
        plugin = importlib.import_module("modeldeploy_operator.plugin")
        return int(plugin.main(args))
    print(f"modeldeploy: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
