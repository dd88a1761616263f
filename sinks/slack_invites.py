"""Who is invited to a security incident's private Slack channel: the Slack users and user
groups among the escalation policy's security contacts and the incident's team's
``private_channel_invite`` (README "Teams"), user groups expanded to their members
(``usergroups.users.list``), each user once."""

import logging
import re
from collections.abc import Awaitable, Callable, Iterable

from sinks.slack_client import is_channel_id

__all__ = ["invitees"]

log = logging.getLogger(__name__)
_USER = re.compile(r"^[UW][A-Z0-9]{6,}$")
_USERGROUP = re.compile(r"^<!subteam\^(S[A-Z0-9]+)(?:\|[^>]*)?>$")


async def invitees(
    entries: Iterable[str], members_of: Callable[[str], Awaitable[list[str]]]
) -> list[str]:
    """The user ids to invite for ``entries`` (user ids ``U…``/``W…``, user group mentions
    ``<!subteam^S…>``; channels are told elsewhere, anything else is logged and skipped)."""
    users: list[str] = []
    for who in entries:
        if _USER.match(who):
            users.append(who)
        elif group := _USERGROUP.match(who):
            users += await members_of(group.group(1))
        elif not who.startswith("#") and not is_channel_id(who):
            log.warning("%s is not a Slack user or user group id: not invited", who)
    return list(dict.fromkeys(users))
