"""Names in one-line messages: the first few, and how many more.

A run ends with one line (README: "make run"), and a table can have hundreds of
columns: a message that lists them all is no longer read as one line.
"""

from __future__ import annotations

from collections.abc import Iterable

SHOWN = 5


def some(names: Iterable[object], shown: int = SHOWN) -> str:
    """'a, b, c, d, e and 25 more' (every name when there are no more than ``shown`` + 1)."""
    items = [str(name) for name in names]
    if len(items) <= shown + 1:  # "and 1 more" says no less than the name itself
        return ", ".join(items)
    return f"{', '.join(items[:shown])} and {len(items) - shown} more"
