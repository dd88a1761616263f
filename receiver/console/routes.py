"""The console's routes under ``/ui`` (receiver/console/app.py's pages, sign-in and its static
files), as one mount the receiver serves beside its own routes (receiver/app.py ``create_app``)."""

from collections.abc import Callable, Sequence
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from models.access import Scope
from receiver.app import exact_paths
from receiver.console.actions import ApiRoutes
from receiver.console.app import Console
from receiver.console.base import PREFIX, ConsoleConfig, Handler
from receiver.errors import http_error

__all__ = ["Instrument", "console_mount"]

_HERE = Path(__file__).resolve().parent

#: What the receiver wraps each console page in: ``(path, handler) -> handler`` with the request
#: id, the log line, the metrics and a JSON 500 for an unexpected error, as its own routes have.
Instrument = Callable[[str, Handler], Handler]


def console_mount(
    config: ConsoleConfig, api_routes: Sequence[Route], instrument: Instrument | None = None
) -> Mount:
    """The console at ``/ui``: ``api_routes`` are the receiver's API routes (incident commands,
    admin), called in process for the console's actions (receiver/console/actions.py); each
    page served through ``instrument`` when given. Starlette's own refusals (no such page, a
    method a page does not take, a form it cannot read) are JSON, like the receiver's: they were
    plain text."""
    console = Console(config, ApiRoutes(api_routes))
    v = console.viewing
    commands = {
        "ack": ("acknowledge", "/api/incidents/{incident_id}/ack"),
        "resolve": ("resolve", "/api/incidents/{incident_id}/resolve"),
        "escalate": ("escalate", "/api/incidents/{incident_id}/escalate"),
        "notes": ("note", "/api/incidents/{incident_id}/notes"),
    }

    async def home(_: Request) -> Response:
        return RedirectResponse(f"{PREFIX}/incidents", 303)

    routes = [
        Route("/", home, methods=["GET"]),
        Route("/login", console.login_form, methods=["GET"]),
        Route("/login", console.login, methods=["POST"]),
        Route("/logout", v(Scope.READ, console.logout), methods=["POST"]),
        Route("/incidents", v(Scope.READ, console.incidents), methods=["GET"]),
        Route("/incidents/{incident_id}", v(Scope.READ, console.incident), methods=["GET"]),
        Route(
            "/incidents/{incident_id}/postmortem.md",
            v(Scope.READ, console.postmortem),
            methods=["GET"],
        ),
        *(
            Route(
                f"/incidents/{{incident_id}}/{name}",
                v(Scope.WRITE, console.command(action, path)),
                methods=["POST"],
            )
            for name, (action, path) in commands.items()
        ),
        Route("/analytics", v(Scope.READ, console.analytics), methods=["GET"]),
        Route("/maintenance", v(Scope.ADMIN, console.maintenance), methods=["GET"]),
        Route("/maintenance", v(Scope.ADMIN, console.maintenance_add), methods=["POST"]),
        Route("/maintenance/{window_id}/end", v(Scope.ADMIN, console.maintenance_end), methods=["POST"]),
        Route("/dlq", v(Scope.ADMIN, console.dead_letters), methods=["GET"]),
        Route("/dlq/replay", v(Scope.ADMIN, console.dead_letters_replay), methods=["POST"]),
        Mount("/static", StaticFiles(directory=_HERE / "static"), name="console_static"),
    ]
    if instrument is not None:
        routes = [
            Route(r.path, instrument(PREFIX + r.path, r.endpoint), methods=sorted(r.methods or ()))
            if isinstance(r, Route)
            else r
            for r in routes
        ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error})
    return Mount(PREFIX, app=exact_paths(app))
