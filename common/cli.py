"""Argument parsing, logging, output and the error boundary shared by every script."""

from __future__ import annotations

import _thread
import argparse
import contextlib
import io
import json
import logging
import math
import re
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from common.azure.azure_errors import translate
from common.azure.workspace import SETTINGS
from common.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, CliError, not_installed
from common.terminal import printable
from common.validation import canonical_name

log = logging.getLogger("deploy")
# The top-level modules of requirements.txt the scripts import: one missing means the virtual environment is not in use
REQUIRED_MODULES = frozenset(
    {"azure", "sklearn", "joblib", "pandas", "numpy", "orjson", "yaml", "uvicorn", "httpx", "requests"}
    | {"prometheus_client", "filelock", "psutil", "uvloop", "httptools", "azureml_inference_server_http", "uv"}
)


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but an argument error is one line (no usage dump) and exit code 2, and a mistyped flag is named
    (argparse would first report a required flag it hides as missing). Abbreviated flags are refused with the flag
    meant (--deployment: did you mean --deployment_name?): argparse finds most of them "ambiguous", as every flag
    has two spellings, and a command that works today would break when a flag with the same start is added."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"error: {message} (see {self.prog} --help)\n")

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        if self._subparsers is None:  # a parser with verbs leaves their flags to the verb's own parser
            unknown = self._unknown_flags(sys.argv[1:] if args is None else list(args))
            if unknown:
                self.error(f"unrecognized arguments: {unknown}")
        return super().parse_known_args(args, namespace)

    def _unknown_flags(self, argv: list[str]) -> str:
        import difflib

        known = list(self._option_string_actions)
        found = []
        for token in argv:
            if token == "--":
                break
            flag = token.split("=", 1)[0]
            if not flag.startswith("--") or flag == "--" or flag in known:
                continue
            close = difflib.get_close_matches(flag, known, n=1)
            found.append(flag + (f" (did you mean {close[0]}?)" if close else ""))
        return ", ".join(found)


def spellings(flag: str) -> list[str]:
    """'--endpoint_name' and its hyphenated alias '--endpoint-name'."""
    hyphenated = "--" + flag[2:].replace("_", "-")
    return [flag] if hyphenated == flag else [flag, hyphenated]


def add_flag(parser: argparse.ArgumentParser | argparse._ArgumentGroup, flag: str, **kwargs: Any) -> None:
    parser.add_argument(*spellings(flag), **kwargs)


def add_name_flag(parser: argparse.ArgumentParser | argparse._ArgumentGroup, flag: str, **kwargs: Any) -> None:
    """A flag that names an endpoint or a deployment: parsed into the lowercase name Azure ML keeps (names are
    case-insensitive; common.validation.canonical_name), so every command finds what any spelling created."""
    add_flag(parser, flag, type=canonical_name, **kwargs)


def new_parser(doc: str | None) -> ArgumentParser:
    summary, _, epilog = (doc or "").strip().partition("\n\n")
    return ArgumentParser(
        description=summary,
        epilog=epilog or None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_target_flags(parser: argparse.ArgumentParser) -> None:
    """--local, or the Azure ML workspace flags."""
    add_flag(parser, "--local", action="store_true", help="use the local target on this machine instead of Azure")
    group = parser.add_argument_group("workspace (else environment variables, else config.json)")
    for _setting, flag, variable in SETTINGS:
        add_flag(group, flag, metavar=flag[2:].upper(), help=f"default: ${variable}")


def add_output_flags(parser: argparse.ArgumentParser) -> None:
    add_flag(parser, "--output", choices=("text", "json"), default="text", help="result format (default: text)")
    add_flag(parser, "--verbose", action="store_true", help="debug logging, including the Azure SDK's HTTP calls")


def add_timeout_flag(parser: argparse.ArgumentParser, default_minutes: int) -> None:
    from common.validation import minutes

    add_flag(
        parser,
        "--timeout_minutes",
        type=minutes,
        default=default_minutes,
        help="stop waiting after this long; the operation goes on in Azure (default: %(default)s)",
    )


def workspace_flags(args: argparse.Namespace) -> dict[str, str | None]:
    return {setting: getattr(args, setting, None) for setting, _, _ in SETTINGS}


# What a log line or an error may carry that must never be printed: bearer tokens, SAS signatures, keys in JSON
# or Python reprs, storage connection strings.
_SECRET_NAMES = "primaryKey|secondaryKey|primary_key|secondary_key|accessToken|access_token|key|token|client_secret"
_SECRETS = (
    (re.compile(r"(?i)(bearer\s+)[^\s'\",}]+"), r"\1<redacted>"),
    (re.compile(r"(?i)([?&;]sig=)[^&\s'\"]+"), r"\1<redacted>"),
    (re.compile(rf"""(["'](?:{_SECRET_NAMES})["']\s*:\s*["'])[^"']*"""), r"\1<redacted>"),
    (re.compile(r"(?i)(AccountKey=)[^;\s'\"]+"), r"\1<redacted>"),
)


def redact(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


def _redact_every_log_record() -> None:
    """Every record, from any logger (the SDK attaches handlers of its own), is redacted when it is created."""
    create = logging.getLogRecordFactory()
    if getattr(create, "redacting", False):
        return

    def redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = create(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a record whose arguments do not fit its format: leave it to the handler
            return record
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return record

    redacting_factory.redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(redacting_factory)


def configure_logging(verbose: bool) -> None:
    _redact_every_log_record()
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s" if verbose else "%(levelname)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    # The SDK logs every retry and telemetry hiccup at WARNING; only --verbose shows them.
    logging.getLogger("azure").setLevel(logging.DEBUG if verbose else logging.ERROR)


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# Where results go: the stdout a script started with. While it runs, sys.stdout is _LibraryOutput, so what
# libraries print (azure-ai-ml's polling prints a "." per status check) never mixes into a result such as
# --output json.
_results: list[Any] = []


class _LibraryOutput(io.TextIOBase):
    """sys.stdout while a script runs: library prints go to stderr, except azure-ai-ml's bare polling dots
    (our own progress lines say the same)."""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if text.strip("."):
            sys.stderr.write(text)
        return len(text)

    def flush(self) -> None:
        sys.stderr.flush()


def output(text: str, end: str = "\n") -> None:
    """Print a result (a line, the YAML of --dry_run, the predictions, a followed log) on the script's stdout."""
    print(text, file=_results[-1] if _results else sys.stdout, end=end, flush=True)


def finite(value: Any) -> Any:
    """`value` with every float that is not finite replaced by None, in lists and dicts at any depth."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value


def emit(result: dict[str, Any], output_format: str, text_lines: Sequence[str]) -> None:
    """Print the result as text lines for people or as one JSON object for scripts (always on stdout)."""
    if output_format == "json":  # strict JSON: a NaN or an infinity is null (json.dumps would write NaN, Infinity)
        output(json.dumps(finite(result), indent=2, sort_keys=False, default=str, allow_nan=False))
    else:  # text lines may quote a deployment's output (logs, the doctor's evidence): printed inert
        for line in text_lines:
            output(printable(line))


def run_main(
    main: Callable[[Sequence[str] | None], int],
    argv: Sequence[str] | None = None,
    *,
    show_verb: str = "the show command",
) -> int:
    """Run a script's main; known failures become 'error: ...' on stderr and their exit code, never a traceback.
    `show_verb` is how Azure's messages name the command that shows an endpoint.

    SIGTERM is handled as Ctrl-C, so an operation stopped either way reports the same and cleans up the same.
    """
    previous = _terminate_as_interrupt()
    previous_hook, sys.unraisablehook = sys.unraisablehook, _interrupt_not_lost
    _results.append(sys.stdout)
    try:
        with contextlib.redirect_stdout(_LibraryOutput()):
            return main(argv)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] not in REQUIRED_MODULES:
            raise
        print(not_installed(str(error.name)), file=sys.stderr)
        return EXIT_FAILED
    except CliError as error:
        return _report(error)
    except Exception as error:
        translated = translate(error, show_verb)
        if translated is None:
            raise
        log.debug("Azure error", exc_info=error)
        return _report(translated)
    finally:
        _results.pop()
        sys.unraisablehook = previous_hook
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


INTERRUPT_AGAIN_SECONDS = 0.05


def _interrupt_not_lost(unraisable: Any) -> None:
    """An interrupt that landed where Python cannot raise it (a weakref callback of the import machinery, a
    __del__): Python would print "Exception ignored" with a traceback and go on as if never interrupted. It is
    delivered again to the main thread instead, so it ends the command as any Ctrl-C does."""
    if isinstance(unraisable.exc_value, KeyboardInterrupt):
        # from another thread, a moment later: raised while this hook still runs, it would be "ignored" again
        later = threading.Timer(INTERRUPT_AGAIN_SECONDS, _thread.interrupt_main)
        later.daemon = True
        later.start()
        return
    sys.__unraisablehook__(unraisable)


def _terminate_as_interrupt() -> Any:
    """Install the SIGTERM handler (main thread only); the previous one, to restore. Ctrl-C is Python's
    KeyboardInterrupt again from here on (common/__init__.py quietened it while the libraries were imported)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    return signal.signal(signal.SIGTERM, _raise_interrupt)


def _report(error: CliError) -> int:
    """The error line and its details (a deployment's log tail among them), never a control sequence of its."""
    print(f"error: {printable(redact(error.message))}", file=sys.stderr)
    if error.details:
        print(printable(redact(error.details.rstrip())), file=sys.stderr)
    return error.exit_code
