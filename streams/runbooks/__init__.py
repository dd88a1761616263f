"""The shipped default runbooks (the playbook's four, ``*.md`` here) and the loader that adds a
user's folder (``SEVFLOW_RUNBOOKS_DIR``): a file of the same name replaces the shipped one."""

from importlib import resources
from pathlib import Path

from models.runbooks import Runbook, RunbookError, RunbookSet, parse_runbook

__all__ = ["load_runbooks"]


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
        for path in sorted(folder.glob("*.md")):
            try:
                text = path.read_text()
            except (OSError, UnicodeDecodeError) as exc:
                raise RunbookError(f"{path}: cannot read runbook: {exc}") from None
            runbooks.append(parse_runbook(path.stem, text, str(path)))
    return RunbookSet.of(runbooks, link_template)
