"""The shipped default severity rules (``default.yaml``) and the loader for a user's file."""

from importlib import resources
from pathlib import Path

from models.classification import RulesError, RuleSet, parse_rules
from models.text_files import TextFileError, read_text

__all__ = ["load_rules"]


def load_rules(path: Path | None) -> RuleSet:
    """The rules in ``path``, or the shipped defaults; raises RulesError naming line and reason."""
    if path is None:
        text = resources.files(__package__).joinpath("default.yaml").read_text()
        return parse_rules(text, "default rules")
    try:
        text = read_text(path)
    except TextFileError as exc:
        raise RulesError(str(exc)) from None
    return parse_rules(text, str(path))
