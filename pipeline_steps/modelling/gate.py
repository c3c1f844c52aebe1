"""The quality gate: register a model only when it beats the threshold and is no worse than Staging.

One implementation for both pipelines: the evaluate step decides, with the gate's
settings (params.yaml's gate, or the DAG run's Params), and puts the decision and
its reason in its result. The DAG's branch and the local register stage only read
it, so the stack and `dvc repro` cannot decide differently on the same data.
"""

from __future__ import annotations

from typing import Any

from pipeline_steps.data.rows import RowAccount
from pipeline_steps.settings import Settings

# The run's MLflow tags that say what the gate decided and why.
TAG_DECISION = "gate.decision"
TAG_REASON = "gate.reason"
PASSED = "passed"
STOPPED = "stopped"


def judge(settings: Settings, evaluation: dict[str, Any]) -> dict[str, Any]:
    """The gate's decision on an evaluation, with the settings it used: what evaluate's result carries."""
    passed, reason = decide(evaluation, settings.quality_threshold, settings.quality_metric,
                            settings.quality_tolerance)
    return {
        "decision": PASSED if passed else STOPPED,
        "passed": passed,
        "reason": reason,
        "metric": settings.quality_metric,
        "threshold": settings.quality_threshold,
        "tolerance": settings.quality_tolerance,
    }


def decide(evaluation: dict[str, Any], threshold: float, metric: str,
           tolerance: float = 0.0) -> tuple[bool, str]:
    """Beat the threshold and be no worse than the Staging model on the same rows; say why either way.

    Both numbers come from evaluate, which scored the new model and the Staging
    model on the new run's test split. When the Staging model could not score it,
    the threshold alone decides and the reason says so; when it was trained on some
    of those rows, it is compared on the others, and the reason says how many. A
    schema change, data drift since the Staging model, or more than a few rows left
    out of the table before the split does not decide anything, but the reason says so.
    """
    passed, reason = _compare(evaluation, threshold, metric, tolerance)
    if evaluation.get("rows"):
        notice = RowAccount.from_dict(evaluation["rows"]).notice()
        reason += f"; {notice}" if notice else ""
    changes = evaluation.get("schema_changes") or []
    if changes:
        reason += f"; schema changed since the Staging model: {'; '.join(changes)}"
    if evaluation.get("drift_line"):
        reason += f"; {evaluation['drift_line']}"
    return passed, reason


def _compare(evaluation: dict[str, Any], threshold: float, metric: str,
             tolerance: float) -> tuple[bool, str]:
    value = float(evaluation["metrics"][metric])
    if not value > threshold:
        return False, f"{metric}={value:.4f} does not beat the threshold {threshold:.4f}"
    beats = f"{metric}={value:.4f} beats the threshold {threshold:.4f}"
    champion = evaluation.get("champion")
    if not champion:
        return True, f"{beats}; no Staging model yet"
    named = f"the Staging model (version {champion.get('version')}"
    champion_value = (champion.get("metrics") or {}).get(metric) if champion.get("scored") else None
    if champion_value is None:
        problem = champion.get("problem") or "it has no score on this split"
        return True, f"{beats}; {named}) cannot score this split: {problem}; decided on the threshold alone"
    compared = float(champion.get("challenger_value", value))
    allowed = f", tolerance {tolerance:.4f}" if tolerance else ""
    rows, seen = _rows_compared(champion)
    scored = f"{named}: {float(champion_value):.4f} on {rows}{allowed}); {seen}"
    against = "" if compared == value else f" ({metric}={compared:.4f} on those rows)"
    if compared < float(champion_value) - tolerance:
        return False, f"{metric}={value:.4f}{against} is worse than {scored}"
    return True, f"{beats}{against} and is not worse than {scored}"


def _rows_compared(champion: dict[str, Any]) -> tuple[str, str]:
    """Which rows both models were scored on, and how many of the split's the Staging model had seen."""
    seen, total = champion.get("seen_rows"), champion.get("test_rows")
    if seen is None:
        return "the same test split", ("whether it was trained on any of these test rows is unknown "
                                       "(it was registered before training rows were recorded)")
    if not seen:
        return "the same test split", f"it was trained on none of these {total} test rows"
    return (f"the {champion.get('compared_rows')} test rows it was not trained on",
            f"it was trained on the other {seen} of the split's {total}, left out of the comparison")
