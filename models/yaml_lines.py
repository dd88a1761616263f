"""Where in a YAML file a pydantic error points: the files operators write (teams, probes) name
the line of a bad field, so the error reads ``teams.yaml:12: …`` rather than a path of keys."""

from collections.abc import Sequence

import yaml

__all__ = ["line_of"]


def line_of(node: yaml.Node, loc: Sequence[int | str]) -> int:
    """The 1-based line of the node at ``loc`` (a pydantic error location) inside ``node``, or of
    the deepest node found on the way; a mapping key's own line for the last part (an unknown
    field)."""
    line = node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = next(
                ((k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == part),
                None,
            )
            if found is None:
                return line
            key, node = found
            line = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line
