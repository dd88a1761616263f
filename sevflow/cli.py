"""Command-line entry point.

Settings are read from the environment exactly once, here, and passed down. ``sevflow --help``
lists every setting with its environment variable, default and meaning.
"""

import argparse
import logging
import sys
from collections.abc import Iterable, Sequence

from pydantic import ValidationError

from models.settings import Settings
from sevflow import escalation_cli, operator_cli, runbooks_cli, statuspage_cli, teams_cli
from sevflow.audit_cli import add_audit_command, run_audit
from sevflow.dlq_cli import add_dlq_command, run_dlq
from sevflow.maintenance_cli import add_maintenance_command, run_maintenance
from sevflow.purge_cli import add_purge_command, run_purge

__all__ = ["main"]


def _default(name: str) -> str:
    default = Settings.model_fields[name].get_default(call_default_factory=True)
    if isinstance(default, list | tuple | dict):
        shown = (
            ",".join(f"{k}=…" for k in default)
            if isinstance(default, dict)
            else ",".join(str(d) for d in default)
        )
        return shown or "(none)"
    return str(default) if default is not None else "(unset)"


def _settings_help(names: Iterable[str] | None = None) -> str:
    """``SEVFLOW_<NAME> (default: …)`` and the description of each setting (all without names)."""
    lines = ["settings (environment variables):"]
    for name in names if names is not None else Settings.model_fields:
        lines.append(f"  SEVFLOW_{name.upper()}  (default: {_default(name)})")
        lines.append(f"      {Settings.model_fields[name].description}")
    return "\n".join(lines)


_STORE = ("database_url", "data_dir")
_KAFKA = ("kafka_bootstrap", "kafka_timeout_seconds")
_QUARANTINE = ("alerts_quarantine_topic", "commands_quarantine_topic")
_TEAMS = ("teams_file", "pagerduty_routing_key", "slack_announce_channel", "statuspage_components")
#: The settings each command reads (the roles read many more: ``sevflow --help`` lists them all).
COMMAND_SETTINGS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("init-db",): _STORE,
    ("explain",): (
        "rules_file",
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
    ("report",): (*_STORE, "escalation_policy_file", "kafka_bootstrap", "events_topic"),
    ("postmortem",): _STORE,
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
    sub.add_parser("run", help="run the receiver, the stream worker and the sinks (the main job)")
    sub.add_parser("receiver", help="run only the HTTP receiver (Alertmanager webhook -> Kafka)")
    sub.add_parser("worker", help="run only the stream worker (Kafka -> incident store)")
    sub.add_parser("sinks", help="run only the sinks (incident-events -> PagerDuty, Slack, status page)")
    sub.add_parser(
        "status",
        help="the roles of the running `sevflow run` (state, restarts) and the receiver's /ready",
    )
    sub.add_parser("init-db", help="create or migrate the incident store's tables and exit")
    explain = sub.add_parser(
        "explain", help="show which severity rule an alert matches, why, and which incident it joins"
    )
    explain.add_argument("labels", nargs="+", metavar="NAME=VALUE", help="the alert's labels")
    explain.add_argument(
        "--annotation", "-a", action="append", default=[], metavar="NAME=VALUE", help="an annotation"
    )
    explain.add_argument("--group-key", help="Alertmanager's groupKey of the alert's group")
    sub.add_parser("schema", help="print the JSON Schema of incident-events records")
    escalation_cli.add_subcommands(sub)
    statuspage_cli.add_subcommands(sub)
    runbooks_cli.add_subcommands(sub)
    teams_cli.add_subcommands(sub)
    operator_cli.add_operator_commands(sub)
    add_dlq_command(sub)
    add_maintenance_command(sub)
    add_audit_command(sub)
    add_purge_command(sub)
    _document_settings(parser)
    return parser


def _load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        # A check across settings (a model validator) has no location: its message names them.
        problems = "; ".join(
            f"SEVFLOW_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            if e["loc"]
            else str(e["msg"]).removeprefix("Value error, ")
            for e in exc.errors(include_url=False, include_input=False)
        )
        raise SystemExit(f"sevflow: invalid settings: {problems}") from None


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, build settings, run the chosen command; returns the exit status."""
    args = _parser().parse_args(argv)
    settings = _load_settings()
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    if settings.log_level != "DEBUG":
        logging.getLogger("alembic").setLevel(logging.WARNING)  # its plugin set-up lines are noise
        # One INFO line each time the sinks' metrics read the dead-letter topic (every scrape).
        logging.getLogger("aiokafka.consumer.subscription_state").setLevel(logging.WARNING)
    if insecure := settings.insecure_vendor_urls():
        logging.getLogger("sevflow").warning(
            "%s: plain http accepted (SEVFLOW_ALLOW_INSECURE_VENDOR_URLS): for tests only, "
            "tokens and incident text travel in clear",
            ", ".join(insecure),
        )
    if args.command == "maintenance":
        return run_maintenance(settings, args)
    if args.command == "dlq":
        return run_dlq(settings, args)
    if args.command == "audit":
        return run_audit(settings, args)
    if args.command == "purge":
        return run_purge(settings, args)
    if args.command == "statuspage":
        return statuspage_cli.run(args, settings)
    if args.command == "runbooks":
        return runbooks_cli.run(args, settings)
    if args.command == "teams":
        return teams_cli.run(args, settings)
    if (status := operator_cli.run_operator_command(settings, args)) is not None:
        return status
    if args.command in escalation_cli.COMMANDS:
        return escalation_cli.run(args, settings)
    if args.command == "status":
        from sevflow.status_cli import run_status

        return run_status(settings)
    if args.command == "schema":
        import json

        from models.events import IncidentEvent

        print(json.dumps(IncidentEvent.model_json_schema(), indent=2, sort_keys=True))
        return 0
    if args.command == "explain":
        from models.classification import RulesError
        from sevflow.explain import explain, parse_pairs

        try:
            labels = parse_pairs(args.labels, "a label")
            annotations = parse_pairs(args.annotation, "an annotation")
            print(explain(settings, labels, annotations, args.group_key))
        except (ValueError, RulesError) as exc:
            print(f"sevflow explain: {exc}", file=sys.stderr)
            return 2
        return 0
    from sevflow import runner  # heavy imports only once the arguments are valid

    commands = {
        "run": runner.run_all,
        "receiver": runner.run_receiver,
        "worker": runner.run_worker,
        "sinks": runner.run_sinks_role,
        "init-db": runner.init_db,
    }
    return commands[args.command](settings)
