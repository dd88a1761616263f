"""``sevflow run`` fed like Alertmanager feeds it, and the checks of a run that must lose and
double nothing: for the tests that cut Kafka, the store or the processes while alerts arrive.

:class:`Sender` posts a new alert group every ``interval`` and retries each notification as
Alertmanager does; :class:`PagedRun` is ``sevflow run`` on a real store with PagerDuty faked, and
knows how to wait for the run to settle and to check that every accepted alert was stored,
published once and paged once.
"""

import asyncio
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, func, select

from models.fingerprint import fingerprint
from store.db import normalise_url
from store.schema import alerts, incident_events
from testkit.fakes.fixtures import ROUTING_KEY
from testkit.fakes.pagerduty import FakePagerDuty
from testkit.harness import Sevflow, wait_for
from testkit.kafka_io import read_json_topic

__all__ = ["PagedRun", "Sender", "notification"]


def notification(alertname: str) -> dict[str, Any]:
    """A version 4 webhook payload: one firing SEV1 alert in a group of its own."""
    labels = {"alertname": alertname, "service": "api", "severity": "critical"}
    starts = (datetime.now(UTC) - timedelta(seconds=5)).isoformat().replace("+00:00", "Z")
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{alertname}"}}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "sevflow",
        "groupLabels": {"alertname": alertname},
        "commonLabels": labels,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.test",
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": {"summary": f"{alertname} is down"},
                "startsAt": starts,
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.test/graph",
                # Alertmanager's fingerprint is the labels' hash, the same on every retry: a random
                # one made the late delivery of a notification answered 503 and its retry two
                # alerts (found stored twice).
                "fingerprint": fingerprint(labels),
            }
        ],
    }


class Sender(threading.Thread):
    """Posts one new group every ``interval`` (``limit`` groups at most) and retries each like
    Alertmanager: on any answer but 2xx (or none), again after Retry-After (at least 0.5 s),
    until it is accepted."""

    def __init__(
        self, url: str, token: str, interval: float = 0.1, limit: int | None = None, first: int = 0
    ) -> None:
        super().__init__(daemon=True)
        self.url, self.token, self.interval, self.limit = url, token, interval, limit
        self.first = first  # the number of the first group's name (OutageNNNN)
        self.accepted: list[str] = []
        self.statuses: Counter[int] = Counter()
        self.retry_after_missing = 0
        self.pending: list[str] = []
        self.stopping = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        number = self.first
        next_new = time.monotonic()
        retry_at: dict[str, float] = {}
        with httpx.Client(timeout=15, headers=headers) as client:
            while not (self.stopping.is_set() and not retry_at):
                now = time.monotonic()
                if self.limit is not None and number - self.first >= self.limit:
                    self.stopping.set()
                if not self.stopping.is_set() and now >= next_new:
                    name = f"Outage{number:04d}"
                    number += 1
                    retry_at[name] = now
                    next_new = now + self.interval
                for name, at in sorted(retry_at.items(), key=lambda item: item[1]):
                    if at > time.monotonic():
                        continue
                    try:
                        response = client.post(self.url, json=notification(name))
                        status = response.status_code
                        after = response.headers.get("Retry-After")
                    except httpx.HTTPError:
                        status, after = 0, None
                    with self.lock:
                        self.statuses[status] += 1
                        if 200 <= status < 300:
                            self.accepted.append(name)
                            del retry_at[name]
                        else:
                            if status == 503 and after is None:
                                self.retry_after_missing += 1
                            retry_at[name] = time.monotonic() + max(0.5, float(after or 0.5))
                    break  # one request per turn: new groups keep arriving during retries
                with self.lock:
                    self.pending = sorted(retry_at)
                time.sleep(0.02)

    def refused(self) -> int:
        with self.lock:
            return self.statuses[503]


class PagedRun:
    """``sevflow run`` on ``database_url`` with PagerDuty faked (two partitions, no quiet period
    to speak of), and what the checks read: stored alerts, unpublished events, triggers."""

    def __init__(
        self,
        workdir: Path,
        bootstrap: str,
        database_url: str,
        pagerduty: FakePagerDuty,
        tls_cert: tuple[Path, Path],
        **settings: str,
    ) -> None:
        self.bootstrap = bootstrap
        self.pagerduty = pagerduty
        self.sevflow = Sevflow(workdir, bootstrap, database_url)
        self.sevflow.extra_env.update(
            SEVFLOW_TOPIC_PARTITIONS="2",
            SEVFLOW_QUIET_PERIOD_SECONDS="3600",
            SEVFLOW_PAGERDUTY_ROUTING_KEY=ROUTING_KEY,
            SEVFLOW_PAGERDUTY_BASE_URL=pagerduty.url,
            SEVFLOW_PAGERDUTY_CA_FILE=str(tls_cert[0]),
        )
        self.sevflow.extra_env.update({f"SEVFLOW_{k.upper()}": v for k, v in settings.items()})
        self.engine = create_engine(normalise_url(database_url, asynchronous=False))

    def sender(self, interval: float = 0.1, limit: int | None = None, first: int = 0) -> Sender:
        url = f"{self.sevflow.url}/webhooks/alertmanager"
        return Sender(url, self.sevflow.token, interval, limit, first)

    def stored(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(alerts)).scalar_one())

    def stored_names(self) -> set[str]:
        with self.engine.connect() as conn:
            return {row.labels["alertname"] for row in conn.execute(select(alerts.c.labels))}

    def triggered(self) -> set[str]:
        return {e["dedup_key"] for e in self.pagerduty.events if e["event_action"] == "trigger"}

    def published(self) -> bool:
        with self.engine.connect() as conn:
            pending = conn.execute(
                select(func.count())
                .select_from(incident_events)
                .where(incident_events.c.published_at.is_(None))
            ).scalar_one()
        return pending == 0

    def accepted_by(self, sender: Sender) -> set[str]:
        """Stop ``sender`` once its pending notifications are accepted; the groups accepted."""
        sender.stopping.set()
        sender.join(60)
        assert not sender.is_alive(), f"notifications never accepted: {sender.pending}"
        return set(sender.accepted)

    def wait_until_settled(self, accepted: set[str]) -> None:
        """Every accepted alert stored, every event published, every incident paged."""
        log = self.sevflow.log_path
        try:
            wait_for(lambda: self.stored() == len(accepted), 60, "every accepted alert stored")
        except AssertionError:
            names = self.stored_names()
            raise AssertionError(
                f"{self.stored()} alerts stored, {len(accepted)} accepted; stored, not accepted: "
                f"{sorted(names - accepted)}; accepted, not stored: {sorted(accepted - names)} "
                f"(log {log})"
            ) from None
        wait_for(self.published, 60, f"every incident event published (log {log})")
        wait_for(lambda: len(self.triggered()) == len(accepted), 60, f"every incident paged ({log})")

    def check_once(self, accepted: set[str], *, triggers_resent: bool = False) -> None:
        """Each accepted alert stored, its events on the topic once each (ids as stored), each
        incident paged once. With ``triggers_resent`` a trigger may be sent again with its
        dedup_key (its confirmation was cut, as after a crash): PagerDuty folds it into the open
        alert, so the pages are counted by PagerDuty's alerts."""
        with self.engine.connect() as conn:
            stored_ids = {r.event_id for r in conn.execute(select(incident_events.c.event_id))}
        assert self.stored_names() == accepted
        topic = f"e2e-events-{self.sevflow.suffix}"
        ids = Counter(str(e["event_id"]) for e in asyncio.run(read_json_topic(self.bootstrap, topic)))
        assert [i for i, n in ids.items() if n > 1] == []
        assert set(ids) == stored_ids
        if triggers_resent:
            pages = Counter(a.dedup_key for a in self.pagerduty.alerts)
        else:
            pages = Counter(
                e["dedup_key"] for e in self.pagerduty.events if e["event_action"] == "trigger"
            )
        assert [key for key, n in pages.items() if n > 1] == []
        assert len(pages) == len(accepted)

    def close(self) -> None:
        self.sevflow.stop()
        self.engine.dispose()
