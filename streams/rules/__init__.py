"""The shipped default severity rules (``default.yaml``) and the loader for a user's file."""

from importlib import resources
from pathlib import Path

from models.classification import RulesError, RuleSet, parse_rules

__all__ = ["load_rules"]


def load_rules(path: Path | None) -> RuleSet:
    """The rules in ``path``, or the shipped defaults; raises RulesError naming line and reason."""
    if path is None:
        text = resources.files(__package__).joinpath("default.yaml").read_text()
        return parse_rules(text, "default rules")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(f"{path}: cannot read rules file: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise RulesError(f"{path}: the rules file is not UTF-8 text (byte {exc.start})") from None
    return parse_rules(text, str(path))
