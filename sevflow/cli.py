"""Command-line entry point: parses the arguments and dispatches to the command's module.

The commands themselves live in sevflow/commands/, one module per command group. Settings are
read from the environment exactly once, here, and passed down. ``sevflow --help`` lists every
setting with its environment variable, default and meaning; each command's help ends with the
settings it reads (:data:`COMMAND_SETTINGS`).
"""

import argparse
import logging
import os
import sys
from collections.abc import Iterable, Sequence

import annotated_types
from pydantic import ValidationError

from kafka_admin.client_logs import limit_repeats
from models.settings import Settings
from sevflow.commands import add_commands, run_command

__all__ = ["COMMAND_SETTINGS", "main"]


def _default(name: str) -> str:
    default = Settings.model_fields[name].get_default(call_default_factory=True)
    if isinstance(default, set | frozenset):  # (scopes: their names, in order)
        default = sorted(str(getattr(d, "value", d)) for d in default)
    if default == "":
        return "(none)"
    if isinstance(default, list | tuple | dict):
        shown = (
            ",".join(f"{k}=…" for k in default)
            if isinstance(default, dict)
            else ",".join(str(d) for d in default)
        )
        return shown or "(none)"
    return str(default) if default is not None else "(unset)"


def _range(name: str) -> str:
    """A number's bounds as the settings check them (``; range: > 0, <= 3600``), else ""."""
    words = {
        annotated_types.Gt: ("> ", "gt"),
        annotated_types.Ge: (">= ", "ge"),
        annotated_types.Lt: ("< ", "lt"),
        annotated_types.Le: ("<= ", "le"),
    }
    bounds = [
        f"{words[type(m)][0]}{getattr(m, words[type(m)][1])}"
        for m in Settings.model_fields[name].metadata
        if type(m) in words
    ]
    return f"; range: {', '.join(bounds)}" if bounds else ""


def _settings_help(names: Iterable[str] | None = None) -> str:
    """``SEVFLOW_<NAME> (default: …)`` and the description of each setting (all without names)."""
    lines = ["settings (environment variables):"]
    for name in names if names is not None else Settings.model_fields:
        lines.append(f"  SEVFLOW_{name.upper()}  (default: {_default(name)}{_range(name)})")
        lines.append(f"      {Settings.model_fields[name].description}")
    return "\n".join(lines)


_STORE = ("database_url", "data_dir")
_KAFKA = ("kafka_bootstrap", "kafka_timeout_seconds")
_QUARANTINE = ("alerts_quarantine_topic", "commands_quarantine_topic", "probe_results_quarantine_topic")
_TEAMS = ("teams_file", "pagerduty_routing_key", "slack_announce_channel", "statuspage_components")
#: The settings each command reads (the roles read many more: ``sevflow --help`` lists them all).
COMMAND_SETTINGS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("init-db",): _STORE,
    ("explain",): (
        "rules_file",
        "verify_probes",
        "verify_file",
        "teams_file",
        "group_by",
        "reopen_window_seconds",
        "blast_radius_instances",
        "blast_radius_services",
        *_STORE,
    ),
    ("runbooks", "list"): ("runbooks_dir",),
    ("runbooks", "show"): ("runbooks_dir",),
    ("runbooks", "match"): ("runbooks_dir", "rules_file"),
    ("teams", "list"): _TEAMS,
    ("teams", "show"): _TEAMS,
    ("teams", "match"): _TEAMS,
    ("ack",): (*_STORE, "kafka_bootstrap", "commands_topic"),
    ("resolve",): (*_STORE, "kafka_bootstrap", "commands_topic"),
    ("statuspage", "publish"): (*_STORE, "kafka_bootstrap", "commands_topic"),
    ("escalate",): (*_STORE, "kafka_bootstrap", "commands_topic"),
    ("escalations",): _STORE,
    ("incidents", "list"): _STORE,
    ("incidents", "show"): _STORE,
    ("note",): (*_STORE, "kafka_bootstrap", "commands_topic"),
    ("report",): (*_STORE, "escalation_policy_file", "teams_file", "kafka_bootstrap", "events_topic"),
    ("postmortem",): (*_STORE, "escalation_policy_file", "teams_file"),
    ("dlq", "list"): ("kafka_bootstrap", "sinks_dlq_topic", *_QUARANTINE),
    ("dlq", "replay"): (
        *_STORE,
        "kafka_bootstrap",
        "sinks_dlq_topic",
        "events_topic",
        *_QUARANTINE,
        "alerts_topic",
        "commands_topic",
    ),
    ("maintenance", "add"): (*_STORE, "maintenance_max_hours"),
    ("audit",): _STORE,
    ("purge",): ("retention_days", *_STORE),
    ("maintenance", "list"): _STORE,
    ("maintenance", "end"): _STORE,
    ("receiver",): (
        "http_host",
        "http_port",
        "webhook_tokens",
        "webhook_basic_auth",
        "allow_unauthenticated",
        "api_tokens",
        "api_tokens_file",
        "maintenance_max_hours",
        *_KAFKA,
        "alerts_topic",
        "commands_topic",
        *_STORE,
        "canary_interval_seconds",
        "canary_pagerduty_routing_key",
    ),
    ("worker",): (
        *_KAFKA,
        "alerts_topic",
        "commands_topic",
        "events_topic",
        *_QUARANTINE,
        "worker_poison_limit",
        *_STORE,
        "app_id",
    ),
    ("sinks",): (
        *_KAFKA,
        "events_topic",
        "sinks_dlq_topic",
        *_STORE,
        "canary_interval_seconds",
        "canary_pagerduty_routing_key",
    ),
    ("run",): (
        *_KAFKA,
        *_STORE,
        "webhook_tokens",
        "http_port",
        "restart_backoff_seconds",
        "restart_backoff_max_seconds",
        "restart_limit",
        "restart_window_seconds",
    ),
    ("status",): ("data_dir", "http_host", "http_port"),
}


def _document_settings(parser: argparse.ArgumentParser) -> None:
    """Each command's help ends with the settings it reads, their defaults and meanings."""
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for path, names in COMMAND_SETTINGS.items():
        command: argparse.ArgumentParser = subparsers.choices[path[0]]
        for step in path[1:]:
            nested = next(a for a in command._actions if isinstance(a, argparse._SubParsersAction))
            command = nested.choices[step]
        more = (
            ""
            if path[0] not in ("receiver", "worker", "sinks", "run")
            else ("\n\n`sevflow --help` lists every other setting of this role.")
        )
        command.epilog = _settings_help(names) + more
        command.formatter_class = argparse.RawDescriptionHelpFormatter


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sevflow",
        description="sevflow: Alertmanager webhooks -> Kafka -> SEV1-SEV4 incidents.",
        epilog=_settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_commands(sub)
    _document_settings(parser)
    return parser


def _load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        # A check across settings (a model validator) has no location: its message names them.
        problems = "; ".join(
            f"SEVFLOW_{'_'.join(str(p) for p in e['loc']).upper()}: "
            + str(e["msg"]).removeprefix("Value error, ")
            if e["loc"]
            else str(e["msg"]).removeprefix("Value error, ")
            for e in exc.errors(include_url=False, include_input=False)
        )
        raise SystemExit(f"sevflow: invalid settings: {problems}") from None


#: The exit status of a command whose reader went away (128 + SIGPIPE, as a shell reports a tool
#: that SIGPIPE ended): ``sevflow incidents list | head`` ends quietly, as other Unix tools do.
EXIT_READER_GONE = 141


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, build settings, run the chosen command; returns the exit status. A reader
    that closed the output early (``| head``) ends the command with :data:`EXIT_READER_GONE`, no
    traceback."""
    try:
        status = _main(argv)
        sys.stdout.flush()
    except BrokenPipeError:
        # What is left in stdout's buffer goes nowhere: Python flushes it again at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_READER_GONE
    return status


def _main(argv: Sequence[str] | None) -> int:
    if (refused := _undecodable(sys.argv[1:] if argv is None else argv)) is not None:
        print(refused, file=sys.stderr)
        return 2
    args = _parser().parse_args(argv)
    settings = _load_settings()
    _configure_logging(settings)
    status = run_command(settings, args)
    assert status is not None, f"no command group has {args.command}"  # argparse chose one
    return status


def _undecodable(argv: Sequence[str]) -> str | None:
    """Why an argument is refused when it holds bytes that are not UTF-8 (Python passes them on
    as lone surrogates, which fail later, wherever the text is written: a window's comment in the
    store, a command on Kafka)."""
    for index, arg in enumerate(argv, 1):
        try:
            arg.encode()
        except UnicodeEncodeError:
            return f"sevflow: argument {index} is not valid UTF-8 text: {_as_given(arg)}"
    return None


def _as_given(arg: str) -> str:
    """The argument's bytes as given, those that are not UTF-8 written ``\\xff`` (Python decoded
    each as a surrogate), at most 80 characters."""
    try:
        raw = arg.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # (a surrogate no byte makes: passed by a caller, not the OS)
        raw = arg.encode("utf-8", "backslashreplace")
    return raw.decode("utf-8", "backslashreplace")[:80]


def _configure_logging(settings: Settings) -> None:
    """One format on stderr at ``SEVFLOW_LOG_LEVEL``; a warning when vendor URLs may be plain http."""
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    limit_repeats()  # (kafka_admin/client_logs.py: some of aiokafka's retry loops log each try)
    if settings.log_level != "DEBUG":
        logging.getLogger("alembic").setLevel(logging.WARNING)  # its plugin set-up lines are noise
        # One INFO line each time the sinks' metrics read the dead-letter topic (every scrape).
        logging.getLogger("aiokafka.consumer.subscription_state").setLevel(logging.WARNING)
        # One INFO line per HTTP request with its full URL (every page sent, every readiness
        # probe of `sevflow status`, on its stderr): noise, and a URL may carry credentials.
        logging.getLogger("httpx").setLevel(logging.WARNING)
    if insecure := settings.insecure_vendor_urls():
        logging.getLogger("sevflow").warning(
            "%s: plain http accepted (SEVFLOW_ALLOW_INSECURE_VENDOR_URLS): for tests only, "
            "tokens and incident text travel in clear",
            ", ".join(insecure),
        )
