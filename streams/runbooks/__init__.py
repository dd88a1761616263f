"""The shipped default runbooks (the playbook's four, ``*.md`` here) and the loader that adds a
user's folder (``SEVFLOW_RUNBOOKS_DIR``): a file of the same name replaces the shipped one. A
team's ``runbooks_dir`` (README "Teams") is loaded beside them by :func:`team_runbooks`."""

from importlib import resources
from pathlib import Path

from models.runbooks import Runbook, RunbookError, RunbookSet, TeamRunbooks, parse_runbook
from models.teams import Teams
from models.text_files import TextFileError, read_text

__all__ = ["load_runbooks", "team_runbooks"]


def _shipped() -> list[Runbook]:
    folder = resources.files(__package__)
    return [
        parse_runbook(entry.name.removesuffix(".md"), entry.read_text(), f"default runbook {entry.name}")
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".md")
    ]


def load_runbooks(folder: Path | None, link_template: str | None = None) -> RunbookSet:
    """The shipped runbooks, then every ``*.md`` of ``folder`` (adding, or replacing the one of
    the same name); raises :class:`RunbookError` naming the file, the line and the reason.
    ``link_template``: where they are published (``SEVFLOW_RUNBOOKS_URL``)."""
    runbooks = _shipped()
    if folder is not None:
        if not folder.is_dir():
            raise RunbookError(f"{folder}: SEVFLOW_RUNBOOKS_DIR is not a readable folder")
        runbooks.extend(_folder(folder))
    return RunbookSet.of(runbooks, link_template)


def _folder(folder: Path) -> list[Runbook]:
    """Every ``*.md`` of ``folder``, parsed; a bad one raises naming its file and line."""
    runbooks = []
    for path in sorted(folder.glob("*.md")):
        try:
            text = read_text(path)
        except TextFileError as exc:
            raise RunbookError(str(exc)) from None
        runbooks.append(parse_runbook(path.stem, text, str(path)))
    return runbooks


def team_runbooks(teams: Teams | None, shared: RunbookSet) -> RunbookSet | TeamRunbooks:
    """The runbook chooser of the worker: ``shared`` itself without teams or when no team has a
    ``runbooks_dir``;
    else each such team's runbooks (the folder relative to the teams file) tried before
    ``shared`` for that team's incidents. A missing folder or a bad runbook raises
    :class:`RunbookError` naming the teams file's line, the team, and the runbook's file and line."""
    if teams is None:
        return shared
    by_team: dict[str, RunbookSet] = {}
    for team in teams.teams:
        folder = team.runbooks_dir
        if folder is None:
            continue
        if not folder.is_absolute() and teams.source:
            folder = Path(teams.source).parent / folder
        where = f"{teams.source}:{teams.lines.get(team.name, 1)}: team {team.name!r}: runbooks"
        if not folder.is_dir():
            raise RunbookError(f"{where}: {folder} is not a readable folder")
        try:
            by_team[team.name] = RunbookSet.of(_folder(folder), shared.link_template)
        except RunbookError as exc:
            raise RunbookError(f"{where}: {exc}") from None
    if not by_team:
        return shared
    return TeamRunbooks(shared, by_team, teams.team_of)
