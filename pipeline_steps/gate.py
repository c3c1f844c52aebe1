"""The quality gate: register a model only when it beats the threshold and is no worse than Staging.

One implementation for both pipelines: the evaluate step decides, with the gate's
settings (params.yaml's gate, or the DAG run's Params), and puts the decision and
its reason in its result. The DAG's branch and the local register stage only read
it, so the stack and `dvc repro` cannot decide differently on the same data.
"""

from __future__ import annotations

from typing import Any

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
    the threshold alone decides and the reason says so. A schema change or data
    drift since the Staging model does not decide anything, but the reason says so.
    """
    passed, reason = _compare(evaluation, threshold, metric, tolerance)
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
    scored = f"{named}: {float(champion_value):.4f} on the same test split"
    allowed = f", tolerance {tolerance:.4f}" if tolerance else ""
    if value < float(champion_value) - tolerance:
        return False, f"{metric}={value:.4f} is worse than {scored}{allowed})"
    return True, f"{beats} and is not worse than {scored}{allowed})"
