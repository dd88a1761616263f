"""What the playbook's journeys need around a running sevflow: its escalation policy as a file a
test can vary, and a Slack button pressed the way Slack reports it.

``playbook_policy_yaml`` is the shipped policy (:func:`models.escalation.playbook_policy`)
written out as a ``SEVFLOW_ESCALATION_POLICY_FILE``, so that a test changes only what it names
(the business calendar, whom the manager escalation notifies) and keeps the rest of the
playbook. ``press_button`` posts the ``block_actions`` interaction Slack sends when a member
presses a button of a message sevflow posted, signed with the app's signing secret (Slack's
``v0`` scheme, :func:`receiver.callbacks.slack_signature`).
"""

import json
import time
from typing import Any
from urllib.parse import urlencode

import httpx
from pydantic import SecretStr

from receiver.callbacks import SLACK_PATH, slack_signature

__all__ = ["buttons", "playbook_policy_yaml", "press_button"]

_PHONE_MANAGER = "{kind: phone, to: engineering-manager, label: Engineering Manager}"


def playbook_policy_yaml(
    *,
    timezone: str = "UTC",
    days: str = "mon-fri",
    start: str = "09:00",
    end: str = "17:00",
    manager: str = _PHONE_MANAGER,
) -> str:
    """The playbook's escalation policy as YAML, with its business calendar and its manager
    target (a YAML flow mapping) replaceable."""
    return f"""\
levels:
  - name: primary on-call
    after: 0m
    targets: [{{kind: pagerduty, to: primary, label: Primary On-Call}}]
    severities: [SEV1, SEV2, SEV3]
  - name: secondary on-call
    after: 15m
    targets: [{{kind: pagerduty, to: secondary, label: Secondary On-Call}}]
    severities: [SEV1, SEV2]
  - name: primary and secondary on-call again
    after: 45m
    targets: [{{kind: pagerduty, to: primary, label: Primary On-Call}},
              {{kind: pagerduty, to: secondary, label: Secondary On-Call}}]
    severities: [SEV1, SEV2]
    again: true
  - name: engineering manager
    after: 45m
    targets: [{manager}]
    severities: [SEV1]
    by_hand: true
  - name: secondary on-call
    after: 2h
    targets: [{{kind: pagerduty, to: secondary, label: Secondary On-Call}}]
    severities: [SEV3]
digest_severities: [SEV4]
manager_targets: [{manager}]
acknowledge_targets: {{SEV1: 15m, SEV2: 30m, SEV3: 2h, SEV4: next_business_day}}
security_targets:
  - {{kind: email, to: security@optimal-build.com, label: Security}}
  - {{kind: slack, to: "#security-incidents", label: Security}}
data_breach_targets:
  - {{kind: email, to: legal@optimal-build.com, label: Legal}}
business_hours: {{timezone: {timezone}, days: {days}, start: "{start}", end: "{end}"}}
"""


def buttons(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The buttons of a posted Slack message, by ``action_id``."""
    return {
        element["action_id"]: element
        for block in message.get("blocks", [])
        if block.get("type") == "actions"
        for element in block.get("elements", [])
        if element.get("type") == "button"
    }


def press_button(
    callbacks_url: str,
    signing_secret: str,
    *,
    team_id: str,
    user_id: str,
    user_name: str,
    block_id: str,
    button: dict[str, Any],
) -> httpx.Response:
    """What Slack posts to the app's interactivity URL when ``user_id`` presses ``button`` (an
    element of a message's actions block ``block_id``), signed with ``signing_secret``."""
    payload = {
        "type": "block_actions",
        "team": {"id": team_id},
        "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": team_id},
        "actions": [
            {
                "action_id": button["action_id"],
                "block_id": block_id,
                "value": button["value"],
                "type": "button",
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    body = urlencode({"payload": json.dumps(payload)}).encode()
    timestamp = str(int(time.time()))
    return httpx.post(
        callbacks_url + SLACK_PATH,
        content=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": slack_signature(SecretStr(signing_secret), timestamp, body),
        },
        timeout=10,
    )
