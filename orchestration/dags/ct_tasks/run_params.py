"""The DAG Params a run may set: the settings declared with one, and what only a run can ask.

A setting declared with a Param (pipeline_steps/settings.py) defaults to the stack's
value of it, with its kind's JSON schema and its one line of description, so the
form in the UI and a REST call are checked as the settings are.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param

from ct_tasks import stack_config
from pipeline_steps.settings import declared


def from_settings(*names: str) -> dict[str, Param]:
    """The Params of these settings' (by Param name; none given: every one a run may set)."""
    found = {}
    for item in declared():
        if item.spec.param and (not names or item.spec.param in names):
            default: Any = getattr(stack_config.SETTINGS, item.attribute)
            found[item.spec.param] = Param(default, description=item.spec.doc, **item.spec.kind.schema())
    return found
