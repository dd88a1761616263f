"""Verification probes read from a file, every error naming the file and the line.

Two places hold probes in a file: ``SEVFLOW_VERIFY_FILE`` (a list of probes, JSON or YAML) and
the severity rules file (``SEVFLOW_RULES_FILE``), under a top-level ``probes`` key::

    probes:
      - matchers: ['service=~"api|web"', 'team="payments"']
        http_url: https://api.example.com/health
      - service: db
        promql: rate(db_errors_total[5m]) < 0.1
        prometheus_url: http://10.0.0.9:9090

A probe that does not validate (:class:`models.verification.Probe`) is a :class:`ProbeFileError`
``rules.yaml:12: probe #2: …``, so a bad definition stops the worker at start.
"""

from typing import Any

import yaml
from pydantic import ValidationError

from models.verification import Probe
from models.yaml_lines import line_of

__all__ = ["ProbeFileError", "parse_probe_file"]


class ProbeFileError(ValueError):
    """A probe definition that cannot be used; names the file, the line and the reason."""


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return f"unknown field {error['loc'][-1]!r}"
    where = ".".join(str(p) for p in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def _document(text: str, source: str) -> tuple[yaml.Node | None, Any]:
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader), yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f":{mark.line + 1}" if mark is not None else ""
        raise ProbeFileError(f"{source}{at}: not valid YAML: {getattr(exc, 'problem', exc)}") from None


def parse_probe_file(text: str, source: str, *, key: str | None = None) -> list[Probe]:
    """The probes of a file: the whole document is the list, or with ``key`` (the rules file's
    ``probes``) the list under that top-level key, absent meaning none."""
    node, document = _document(text, source)
    if node is None:
        return []
    if key is not None:
        if not isinstance(document, dict) or not isinstance(node, yaml.MappingNode):
            return []  # (the rules parser names what is wrong with the document itself)
        found = next((v for k, v in node.value if getattr(k, "value", None) == key), None)
        if found is None:
            return []
        node, document = found, document.get(key)
    if document is None:
        return []
    if not isinstance(document, list) or not isinstance(node, yaml.SequenceNode):
        where = f" {key!r}" if key is not None else ""
        raise ProbeFileError(f"{source}:{node.start_mark.line + 1}:{where} expected a list of probes")
    probes: list[Probe] = []
    for index, (item, raw) in enumerate(zip(node.value, document, strict=True)):
        if not isinstance(raw, dict):
            raise ProbeFileError(
                f"{source}:{item.start_mark.line + 1}: probe #{index + 1}: not a mapping"
            )
        try:
            probes.append(Probe.model_validate(raw))
        except ValidationError as exc:
            error = exc.errors()[0]
            line = line_of(item, error["loc"])
            raise ProbeFileError(f"{source}:{line}: probe #{index + 1}: {_message(error)}") from None
    return probes
