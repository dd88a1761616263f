"""Atlassian Statuspage (Manage API v1) over httpx: create, update, follow up and find incidents,
and tell whether an update is shown already.

Auth is ``Authorization: OAuth <key>`` (developer.statuspage.io, "Authentication"). 420/429 and
5xx and transport errors are retryable; 401/404/422 and other 4xx are permanent. The API key is
only ever in that header: reasons name the status code and the API's message, never the request.
"""

from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import SecretStr

from sinks.errors import DeliveryError, classify_status, parse_retry_after
from sinks.statuspage_format import StatusChange

__all__ = ["StatuspageClient"]


class StatuspageClient:
    """One page's incidents; a change's components are Statuspage component ids already
    (:class:`sinks.statuspage_format.Components`)."""

    #: A repeated POST opens a second incident: an interrupted create is looked up instead.
    idempotent_create = False

    def __init__(
        self,
        api_key: SecretStr,
        page_id: str,
        base_url: str,
        *,
        timeout: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._page = page_id
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"OAuth {api_key.get_secret_value()}"},
            timeout=timeout,
            transport=transport,
        )

    def _body(self, change: StatusChange, incident_id: str) -> dict[str, Any]:
        components = dict(change.components)  # ids already (statuspage_format.Components)
        body: dict[str, Any] = {
            "name": change.name,
            "status": change.status,
            "impact_override": change.impact,
            "metadata": {"sevflow": {"incident_id": incident_id}},
        }
        if change.body is not None:
            body["body"] = change.body
        if components:
            body["components"] = components
            body["component_ids"] = sorted(components)
        return {"incident": body}

    async def _request(
        self, method: str, path: str, what: str, *, answer: bool = True, **kwargs: Any
    ) -> Any:
        """The JSON answer (``answer``: the caller reads it), or :class:`DeliveryError`."""
        try:
            response = await self._http.request(method, f"/pages/{self._page}{path}", **kwargs)
        except httpx.TimeoutException:
            raise DeliveryError(True, f"Statuspage {what}: timeout") from None
        except httpx.HTTPError as exc:
            # A transport error, or an answer that cannot be read (a body whose
            # Content-Encoding lies: httpx.DecodingError): what happened is unknown.
            raise DeliveryError(
                True, f"Statuspage {what}: transport error ({type(exc).__name__})"
            ) from None
        if response.is_success:
            if not answer:
                return None
            try:
                return response.json()
            except ValueError:  # a proxy's page: what happened is unknown, so ask again
                raise DeliveryError(
                    True, f"Statuspage {what}: HTTP {response.status_code} without a JSON body"
                ) from None
        error = classify_status(
            response.status_code,
            f"Statuspage {what}",
            parse_retry_after(response.headers.get("retry-after")),
        )
        if not error.retryable:
            raise DeliveryError(False, f"{error.reason}: {_message(response)}")
        raise error

    async def create(self, incident_id: str, change: StatusChange) -> str:
        data = await self._request("POST", "/incidents", "create", json=self._body(change, incident_id))
        created = _id_of(data)
        if created is None:
            # Created or not, the retry's reconciliation (find) tells; never a second incident.
            raise DeliveryError(True, "Statuspage create: the answer names no incident")
        return created

    async def update(self, external_id: str, incident_id: str, change: StatusChange) -> None:
        await self._request(
            "PATCH",
            f"/incidents/{external_id}",
            "update",
            answer=False,
            json=self._body(change, incident_id),
        )

    async def follow_up(self, external_id: str, status: str, body: str) -> None:
        """Post an update that changes nothing else: the same status, a new message."""
        await self._request(
            "PATCH",
            f"/incidents/{external_id}",
            "follow-up",
            answer=False,
            json={"incident": {"status": status, "body": body}},
        )

    async def shows(self, external_id: str, change: StatusChange) -> bool:
        """Whether the page's incident ``external_id`` shows ``change`` already: its status, impact
        and components, and (when the change has words) its newest update's words (an update
        whose answer was lost).

        Only the newest update counts: a reopened incident goes back to words it showed before."""
        data = await self._request("GET", f"/incidents/{external_id}", "read")
        if not isinstance(data, dict) or data.get("status") != change.status:
            return False
        if change.impact not in (data.get("impact_override"), data.get("impact")):
            return False
        if not _components_show(data.get("components"), change.components):
            return False
        if change.body is None:
            return True  # (a severity's change: its impact and components are what it changes)
        updates = data.get("incident_updates")
        listed = [u for u in updates if isinstance(u, dict)] if isinstance(updates, list) else []
        return any(
            u.get("status") == change.status
            and isinstance(u.get("body"), str)
            and u["body"].strip() == change.body.strip()
            for u in _newest(listed)
        )

    async def find(self, incident_id: str) -> str | None:
        """The unresolved Statuspage incident created for ``incident_id`` (interrupted create)."""
        data = await self._request("GET", "/incidents/unresolved", "list")
        for incident in data if isinstance(data, list) else []:
            meta = incident.get("metadata") if isinstance(incident, dict) else None
            ours = meta.get("sevflow") if isinstance(meta, dict) else None
            if isinstance(ours, dict) and ours.get("incident_id") == incident_id:
                return _id_of(incident)
        return None

    async def close(self) -> None:
        await self._http.aclose()


def _components_show(listed: object, wanted: dict[str, str]) -> bool:
    """Whether the incident's ``components`` (the API's list of Component objects) hold each
    wanted status; an answer without them cannot tell, so no."""
    if not wanted:
        return True
    found = (
        {
            c["id"]: c.get("status")
            for c in listed
            if isinstance(c, dict) and isinstance(c.get("id"), str)
        }
        if isinstance(listed, list)
        else {}
    )
    return all(found.get(component) == status for component, status in wanted.items())


def _newest(updates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The newest of an incident's updates (those of the latest ``created_at``, all of them if
    several share it), or the first listed (the API lists the newest first) when a time is
    missing or unreadable."""
    times = [_time(u.get("created_at")) for u in updates]
    if not updates or any(t is None for t in times):
        return updates[:1]
    latest = max(t for t in times if t is not None)
    return [u for u, t in zip(updates, times, strict=True) if t == latest]


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _id_of(incident: object) -> str | None:
    """The id of an incident in an answer, or None when it names none (or not as an id)."""
    found = incident.get("id") if isinstance(incident, dict) else None
    if isinstance(found, bool) or not isinstance(found, str | int) or found == "":
        return None
    return str(found)


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return "no details"
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or "no details")[:300]
    return "no details"
