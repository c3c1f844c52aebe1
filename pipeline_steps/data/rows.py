"""Every row that leaves a table, counted with its reason: what prepare, publish and scoring report.

A table that loses most of its rows without a word trains a model on what is
left and reports its metrics as if nothing happened. So the one place that
removes rows (validation, for training; the schema's scoring input, for
scoring) counts them by reason here, and everything a person reads carries the
count: the step's log line, ``prepare.json``, the run's MLflow tags
(``rows.raw``, ``rows.dropped.<reason>``, ``rows.train``, ``rows.test``), and,
when more than :data:`NOTICE_SHARE` of the table went, the gate's reason and
``make run``'s last line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# The reasons a row leaves a table, as they appear in tags (rows.dropped.<reason>) and lines.
UNLABELLED = "unlabelled"
DUPLICATE = "duplicate"
UNUSABLE = "unusable"
_WORDS = {UNLABELLED: ("row with no label", "rows with no label"),
          DUPLICATE: ("duplicate row", "duplicate rows"),
          UNUSABLE: ("unusable row", "unusable rows")}
# Above this share of a table left out, the gate's reason (and so `make run`'s line) says so.
NOTICE_SHARE = 0.01
TAG_PREFIX = "rows."


def _counted(count: int, reason: str) -> str:
    singular, plural = _WORDS.get(reason, (f"row ({reason})", f"rows ({reason})"))
    return f"{count} {singular if count == 1 else plural}"


@dataclass(frozen=True)
class RowAccount:
    """How many rows a table had, how many left it and why, and values made missing by column."""

    raw: int
    dropped: dict[str, int] = field(default_factory=dict)
    coerced: dict[str, int] = field(default_factory=dict)

    @property
    def kept(self) -> int:
        """The rows that stay."""
        return self.raw - sum(self.dropped.values())

    @property
    def dropped_share(self) -> float:
        """The share of the table's rows that left it."""
        return (self.raw - self.kept) / self.raw if self.raw else 0.0

    def drop(self, reason: str, count: int) -> RowAccount:
        """This account with ``count`` more rows left out for ``reason`` (none: unchanged)."""
        if not count:
            return self
        return RowAccount(self.raw, {**self.dropped, reason: self.dropped.get(reason, 0) + int(count)},
                          self.coerced)

    def coerce(self, column: str, count: int) -> RowAccount:
        """This account with ``count`` values of ``column`` made missing."""
        if not count:
            return self
        return RowAccount(self.raw, self.dropped, {**self.coerced, column: int(count)})

    def left_out(self) -> str:
        """'1296 duplicate rows and 3 rows with no label', or '' when every row stays."""
        parts = [_counted(count, reason) for reason, count in self.dropped.items() if count]
        return " and ".join(parts)

    def line(self, name: str) -> str:
        """One line for a person: '{name}: 1316 rows, 20 kept; left out: 1296 duplicate rows (98%)'."""
        if self.kept == self.raw:
            said = f"{name}: {self.raw} rows, every one kept"
        else:
            said = (f"{name}: {self.raw} rows, {self.kept} kept; left out: {self.left_out()} "
                    f"({self.dropped_share:.0%})")
        if self.coerced:
            values = ", ".join(f"{count} in {column!r}" for column, count in self.coerced.items())
            said += f"; values that are not numbers made missing: {values}"
        return said

    def notice(self) -> str | None:
        """What the gate's reason adds when more than NOTICE_SHARE of the table was left out."""
        if self.dropped_share <= NOTICE_SHARE:
            return None
        return (f"{self.raw - self.kept} of {self.raw} rows ({self.dropped_share:.0%}) left out before "
                f"the split: {self.left_out()}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (prepare.json's ``rows``)."""
        return {"raw": self.raw, "kept": self.kept, "dropped": dict(self.dropped),
                "coerced": dict(self.coerced)}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> RowAccount:
        """Read back what :meth:`to_dict` wrote."""
        return cls(int(raw["raw"]), {k: int(v) for k, v in (raw.get("dropped") or {}).items()},
                   {k: int(v) for k, v in (raw.get("coerced") or {}).items()})


def tags(account: Mapping[str, Any], train: int, test: int) -> dict[str, str]:
    """The run's MLflow tags for a prepared table (``account`` as in prepare.json)."""
    found = RowAccount.from_dict(account)
    tagged = {f"{TAG_PREFIX}raw": str(found.raw), f"{TAG_PREFIX}train": str(train),
              f"{TAG_PREFIX}test": str(test)}
    tagged.update({f"{TAG_PREFIX}dropped.{reason}": str(count) for reason, count in found.dropped.items()})
    tagged.update({f"{TAG_PREFIX}coerced.{column}": str(count) for column, count in found.coerced.items()})
    return tagged
