"""The one command shape of every script: its registry (commands.REGISTRIES; a script of one verb is a registry of
one), the chosen verb's flags only, `validate`, the client if the request needs one, `run`, the result printed.

A script is its docstring (the --help text) and a main that hands its registry to `dispatch`, run through
`commands.run` (the error boundary).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, cast, runtime_checkable

from commands import SINGLE, Request, Result, Verb, client_for
from common.azure.surface import Client


@runtime_checkable
class VerbModule(Protocol):
    """What a verb's module provides (tests/unit/test_verbs.py checks every registered one)."""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Its own flags (the dispatcher adds --endpoint_name as Verb.endpoint says, the target and output flags)."""

    def validate(self, args: argparse.Namespace) -> Request:
        """The typed request: a bad value is a UsageError before anything is read or sent; `args` left as parsed."""

    def run(self, client: Client | None, request: Any) -> Result | None:
        """The calls; what to print (None: it printed as it went). `client` is None unless request.needs_client."""


def load(verb: Verb) -> VerbModule:
    return cast(VerbModule, importlib.import_module(verb.module))


def chosen_verb(registry: Mapping[str, Verb], argv: Sequence[str]) -> str | None:
    """The verb the command line names: only its module is imported (and only its flags built), so --help and a
    bad flag stay fast."""
    if SINGLE in registry:
        return SINGLE
    return next((token for token in argv if token in registry), None)


def new_parser(doc: str | None, registry: Mapping[str, Verb], chosen: str | None) -> argparse.ArgumentParser:
    """The script's parser, with the flags of the `chosen` verb only (the others' names and summaries)."""
    from common.cli import new_parser as script_parser

    parser = script_parser(doc)
    if SINGLE in registry:
        _add_flags(parser, registry[SINGLE], load(registry[SINGLE]))
        return parser
    verbs = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, verb in registry.items():
        sub = verbs.add_parser(name, help=verb.summary, description=verb.summary)
        if name == chosen:
            _add_flags(sub, verb, load(verb))
    return parser


def parse(
    doc: str | None, registry: Mapping[str, Verb], argv: Sequence[str] | None
) -> tuple[argparse.Namespace, VerbModule, Request]:
    from common import validation

    arguments = sys.argv[1:] if argv is None else argv
    args = new_parser(doc, registry, chosen_verb(registry, arguments)).parse_args(argv)
    if SINGLE not in registry:  # a script of one verb checks its names itself, where its flags allow them
        if getattr(args, "endpoint_name", None) is not None:
            validation.resource_name("endpoint", args.endpoint_name)
        if getattr(args, "deployment_name", None):
            validation.resource_name("deployment", args.deployment_name)
    module = load(registry[getattr(args, "command", SINGLE)])
    return args, module, module.validate(args)


def _add_flags(parser: argparse.ArgumentParser, verb: Verb, module: VerbModule) -> None:
    from common.cli import add_name_flag, add_output_flags, add_target_flags

    if verb.endpoint != "none":
        add_name_flag(parser, "--endpoint_name", required=verb.endpoint == "required", help="the endpoint")
    module.add_arguments(parser)
    add_target_flags(parser)
    add_output_flags(parser)


def dispatch(doc: str | None, registry: Mapping[str, Verb], argv: Sequence[str] | None = None) -> int:
    from common.cli import configure_logging, emit

    args, module, request = parse(doc, registry, argv)
    configure_logging(args.verbose)
    result = module.run(client_for(request) if request.needs_client else None, request)
    if result is not None:
        emit(result.data, request.output, result.lines)
    return 0
