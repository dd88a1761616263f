"""The notices task of the Slack sink's process: forced maintenance windows announced, once.

::

    every ``every`` seconds   read the pending notices (store/notices.py), oldest first
    each notice               post it in the announcement channel (:meth:`SlackSink.announce`:
                              the delivery log keyed by the notice id, checked before the post and
                              written after it), and in the own channel of each team the window
                              concerns (:func:`window_teams`, keyed ``<id>/<team>``); then mark it
                              announced
    Slack refuses for good    log it, count it, mark the notice failed (never tried again)
    Slack is down             the sink's retries with backoff up to their deadline; then the
                              notice stays pending and the next round tries again

A crash between Slack's answer and the delivery log leaves a ``pending`` log entry: the next round
finds the post in the channel's history instead of posting again. A crash between the log and the
mark leaves a ``done`` entry: the next round only marks it. Without Slack configured this task
does not run and notices stay pending (``sevflow maintenance list`` says so).
"""

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from models.matchers import MatcherError, parse_matcher
from models.teams import Teams
from sinks.clock import Clock
from sinks.errors import DeliveryError
from sinks.notice_format import window_notice
from sinks.slack import SlackSink
from store.notices import NoticeStore

__all__ = ["NOTICES_EVERY", "NoticeAnnouncer", "announce_until", "window_teams"]

log = logging.getLogger(__name__)

#: How often the task looks for pending notices (seconds): an announcement is at most this late.
NOTICES_EVERY = 30.0


def window_teams(teams: Teams, matchers: Sequence[str]) -> list[str]:
    """The teams with an announcement channel of their own that a window's ``matchers`` concern:
    every matcher of the team is one of the window's (the same name, operator and value, however
    written), so every alert the window holds passes the team's matchers. Whether a window's
    matchers overlap a team's in general is not decidable; a window that may reach other teams'
    alerts too (a regex, a negation) is announced in the default channel only."""
    try:
        written = {(m.name, m.op, m.value) for m in map(parse_matcher, matchers)}
    except MatcherError:
        return []
    return [
        team.name
        for team in teams.teams
        if team.announce_channel
        and all((m.name, m.op, m.value) in written for m in team.parsed_matchers())
    ]


class NoticeAnnouncer:
    def __init__(
        self, slack: SlackSink, store: NoticeStore, clock: Clock, teams: Teams | None = None
    ) -> None:
        self._slack = slack
        self._store = store
        self._clock = clock
        #: The teams file (README "Teams"): a window that concerns a team is told in its channel.
        self._teams = teams
        #: Notices Slack refused for good (marked failed), since the process started.
        self.failed = 0

    async def run_once(self) -> int:
        """Announce the pending notices; how many were announced. Stops at the first notice
        that Slack could not take for now (it is down: the next round starts with it)."""
        announced = 0
        for notice in await self._store.pending():
            message = window_notice(notice)
            teams = window_teams(self._teams, notice.matchers) if self._teams is not None else []
            try:
                await self._slack.announce(notice.id, notice.window_id, message, notice.at)
                for team in teams:
                    key, scope = f"{notice.id}/{team}", f"{notice.window_id}/{team}"
                    await self._slack.announce(key, scope, message, notice.at, team)
            except DeliveryError as error:
                if error.retryable:
                    log.warning("notice %s not announced yet (%s); next round", notice.id, error)
                    break
                self.failed += 1
                log.error("notice %s not announced, for good: %s", notice.id, error)
                await self._store.mark(notice.id, "failed", self._clock.now(), error.reason)
                continue
            await self._store.mark(notice.id, "announced", self._clock.now())
            announced += 1
        return announced


async def announce_until(
    announcer: NoticeAnnouncer, stop: asyncio.Event, every: float = NOTICES_EVERY
) -> None:
    """:meth:`NoticeAnnouncer.run_once` every ``every`` seconds until ``stop``.

    Never raises: the sinks process stops when one of its tasks fails, and a notice that went
    wrong (a store outage) must not take the sinks' deliveries down with it."""
    while not stop.is_set():
        try:
            await announcer.run_once()
        except Exception:  # see the docstring: logged, and the next round tries again
            log.exception("announcing notices failed; trying again in %.0f s", every)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
