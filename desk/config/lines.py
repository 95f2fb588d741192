"""Where each key of a YAML file is written: the line a problem with that key names."""

from __future__ import annotations

import yaml


def line_map(node: yaml.Node, path: tuple[str, ...] = (), out: dict | None = None) -> dict[tuple[str, ...], int]:
    """Map each key path (('sources', '0', 'name')) to its 1-based line in the file."""
    out = {} if out is None else out
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key_path = path + (str(key_node.value),)
            out[key_path] = key_node.start_mark.line + 1
            line_map(value_node, key_path, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            line_map(item, path + (str(i),), out)
    return out


def line_for(lines: dict[tuple[str, ...], int], loc: tuple) -> int | None:
    """The line of the deepest part of `loc` that the file has (a missing key points at its parent)."""
    parts = tuple(str(p) for p in loc)
    for n in range(len(parts), -1, -1):
        if parts[:n] in lines:
            return lines[parts[:n]]
    return None

