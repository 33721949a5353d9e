"""Render the catalog's summary and tag templates for matched entries."""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

_FORMATTER = string.Formatter()
_SPACES = re.compile(r"\s+")


def render_summary(templates: Sequence[str], fields: Mapping[str, Any]) -> str:
    """Return the first template that renders with ``fields``.

    A template that names a missing field, or whose format spec does not fit
    the value, is skipped.
    """
    for template in templates:
        try:
            return template.format_map(fields)
        except (KeyError, ValueError, IndexError, TypeError):
            continue
    return "listed"


def render_tags(
    templates: Sequence[str], contexts: Iterable[Mapping[str, Any]]
) -> list[str]:
    """Return the tags of ``templates`` for every context, without repeats.

    A field holding comma-separated values gives one tag per value. Tags are
    lower case with runs of spaces turned into ``-``.
    """
    tags: dict[str, None] = {}
    for context in contexts:
        for template in templates:
            for tag in _expand(template, context):
                tags[tag] = None
    return list(tags)


def _expand(template: str, context: Mapping[str, Any]) -> list[str]:
    names = [name for _, name, _, _ in _FORMATTER.parse(template) if name]
    if not names:
        return [template]
    name = names[0]
    value = context.get(name)
    if value is None:
        return []
    items = [item.strip() for item in str(value).split(",")]
    return [_slug(template.format_map({name: item})) for item in items if item]


def _slug(tag: str) -> str:
    return _SPACES.sub("-", tag.strip().lower())
