"""The model server's parts on their own: a request's records, the webhook's signature, the alias follower."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest

from pipeline_steps.data.schema import BOOLEAN, CATEGORICAL, DATETIME, NUMERIC, Feature, TableSchema
from pipeline_steps.errors import PipelineError, ServiceUnreachableError
from pipeline_steps.serving import answering, feedback, prediction_log, webhook
from pipeline_steps.serving.answering import RequestProblem
from pipeline_steps.serving.follower import Follower, Refused, Served, Target, checked

SCHEMA = TableSchema(
    target="species", classes=("Adelie", "Gentoo"),
    features=(Feature("mass", NUMERIC), Feature("island", CATEGORICAL, ("Biscoe", "Dream")),
              Feature("male", BOOLEAN),
              Feature("seen", DATETIME, parts=("year", "month", "day", "dayofweek"))))
GOOD = {"mass": 3750, "island": "Biscoe", "male": True, "seen": "2024-05-01"}


def parsed(records: object) -> answering.Request:
    return answering.parse(json.dumps(records).encode(), "application/json", SCHEMA, ",")


def refusal(records: object) -> RequestProblem:
    with pytest.raises(RequestProblem) as caught:
        parsed(records)
    return caught.value


def test_records_in_the_users_types_become_one_frame_in_the_models_columns() -> None:
    request = parsed([GOOD, {**GOOD, "mass": None, "island": None, "male": None, "extra": 1}])
    assert list(request.frame.columns) == SCHEMA.feature_names
    assert np.isnan(request.frame["mass"][1]) and request.frame["male"][1] is None
    assert SCHEMA.scoring_input(request.frame)[0]["male"].isna().tolist() == [False, True]
    assert json.loads(request.records[1])["extra"] == 1  # logged as sent


@pytest.mark.parametrize("change, said", [
    ({"mass": "heavy"}, "column 'mass' must hold a number; record 1 has \"heavy\""),
    ({"mass": False}, "column 'mass' must hold a number; record 1 has false"),
    ({"male": "yes"}, "column 'male' must hold true or false; record 1 has \"yes\""),
    ({"seen": 20240501}, "column 'seen' must hold a date as text; record 1 has 20240501"),
    ({"island": {"name": "Biscoe"}}, "column 'island' must hold text; record 1 has {\"name\": \"Biscoe\"}"),
])
def test_a_value_of_the_wrong_type_is_refused_naming_its_column_and_record(change: dict, said: str) -> None:
    problem = refusal([GOOD, {**GOOD, **change}])
    assert (problem.status, problem.message) == (422, said)


def test_a_record_lacking_a_column_is_refused_naming_it() -> None:
    problem = refusal([GOOD, {k: v for k, v in GOOD.items() if k != "male"}])
    assert problem.message.startswith("record 1 lacks column 'male' (the model reads mass, island, male")


def test_a_number_as_a_category_is_its_text_and_an_unseen_category_is_a_missing_value() -> None:
    request = parsed([{**GOOD, "island": 7}, {**GOOD, "island": "Atlantis"}])
    inputs, reasons = SCHEMA.scoring_input(request.frame)
    assert reasons.isna().all()
    assert inputs["island"].isna().all()


def test_a_date_that_does_not_parse_refuses_the_request_when_scored() -> None:
    class Model:  # pylint: disable=too-few-public-methods
        """Scores as a model does: the schema says which rows cannot be scored."""

        schema = SCHEMA

        def scored(self, frame: pd.DataFrame) -> tuple[np.ndarray, pd.Series]:
            return np.full((len(frame), 2), 0.5), SCHEMA.scoring_input(frame)[1]

    with pytest.raises(RequestProblem, match=r"^record 0: column 'seen' holds 'soon', not a date or time$"):
        answering.score(Model(), parsed([{**GOOD, "seen": "soon"}]))  # type: ignore[arg-type]


def test_the_answers_are_the_most_probable_label_and_each_class_probability() -> None:
    labels, probabilities = answering.answers(SCHEMA, np.array([[0.2, 0.8], [0.9, 0.1]]))
    assert labels == ["Gentoo", "Adelie"]
    assert probabilities == [{"Adelie": 0.2, "Gentoo": 0.8}, {"Adelie": 0.9, "Gentoo": 0.1}]


def test_a_webhook_delivery_is_believed_only_signed_with_the_secret_and_recent() -> None:
    body = b'{"entity": "model_version_alias", "data": {"name": "m", "alias": "production"}}'
    now = time.time()
    stamp = str(int(now))
    headers = {"x-mlflow-delivery-id": "d", "x-mlflow-timestamp": stamp,
               "x-mlflow-signature": webhook.sign("s3cret", "d", stamp, body)}
    payload = webhook.verified("s3cret", headers, body, now=now)
    assert webhook.moves_alias(payload, "m", "production")
    assert not webhook.moves_alias(payload, "other", "production")
    with pytest.raises(webhook.WebhookRefused, match="does not match"):
        webhook.verified("another", headers, body, now=now)
    with pytest.raises(webhook.WebhookRefused, match="does not match"):
        webhook.verified("s3cret", headers, body + b" ", now=now)
    with pytest.raises(webhook.WebhookRefused, match="s old"):
        webhook.verified("s3cret", headers, body, now=now + 3600)
    with pytest.raises(webhook.WebhookRefused, match="not a signed"):
        webhook.verified("s3cret", {}, body, now=now)


class FakeModel:  # pylint: disable=too-few-public-methods
    """A model that answers with fixed probabilities (or raises)."""

    schema = SCHEMA

    def __init__(self, answer: np.ndarray | Exception) -> None:
        self.answer = answer

    def scored(self, frame: pd.DataFrame) -> tuple[np.ndarray, pd.Series]:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer, pd.Series([None] * len(frame), dtype=object)


def test_a_model_is_checked_on_its_input_example_before_it_serves() -> None:
    example = pd.DataFrame([GOOD, GOOD])
    assert checked(FakeModel(np.array([[0.3, 0.7], [1.0, 0.0]])), example) is not None  # type: ignore[arg-type]
    with pytest.raises(Refused, match="without an input example"):
        checked(FakeModel(np.array([[0.3, 0.7]])), None)  # type: ignore[arg-type]
    with pytest.raises(Refused, match="fails on its own input example: ValueError: bad"):
        checked(FakeModel(ValueError("bad")), example)  # type: ignore[arg-type]
    with pytest.raises(Refused, match="not probabilities"):
        checked(FakeModel(np.array([[0.3, 0.3], [0.5, 0.5]])), example)  # type: ignore[arg-type]


def served(version: str) -> Served:
    return Served(FakeModel(np.ones((1, 2))), "m", version, None, None, "now")  # type: ignore[arg-type]


def test_the_follower_swaps_to_where_the_alias_points_and_refuses_a_version_once() -> None:
    points = {"at": Target("1", None)}
    loads: list[str] = []
    refusals: list[tuple[str, str]] = []

    def load(target: Target) -> Served:
        loads.append(target.version)
        if target.version == "2":
            raise Refused("cannot load it")
        if target.version == "3" and loads.count("3") == 1:
            raise ServiceUnreachableError("MLflow is away")
        return served(target.version)

    follower = Follower(lambda: points["at"], load, check_seconds=60,
                        on_refused=lambda version, reason: refusals.append((version, reason)))
    assert follower.check().version == "1"  # type: ignore[union-attr]
    points["at"] = Target("2", None)
    assert follower.check().version == "1"  # type: ignore[union-attr]
    assert follower.check().version == "1"  # type: ignore[union-attr]
    assert refusals == [("2", "cannot load it")] and loads.count("2") == 1
    points["at"] = Target("3", None)
    assert follower.check().version == "1"  # type: ignore[union-attr]  # MLflow away: try again later
    assert follower.check().version == "3"  # type: ignore[union-attr]
    assert refusals == [("2", "cannot load it")]


def test_the_follower_keeps_serving_when_mlflow_cannot_be_asked() -> None:
    answers = iter([Target("1", None), PipelineError("MLflow unreachable")])

    def resolve() -> Target | None:
        found = next(answers)
        if isinstance(found, Exception):
            raise found
        return found

    follower = Follower(resolve, lambda target: served(target.version), check_seconds=60)
    assert follower.check().version == "1"  # type: ignore[union-attr]
    assert follower.check().version == "1"  # type: ignore[union-attr]
    assert "MLflow unreachable" in str(follower.last_problem)


def test_log_rows_keep_labels_and_probabilities_as_json_and_rows_without_one_as_null() -> None:
    both = np.array([[0.25, 0.75], [np.nan, np.nan]])
    probabilities = prediction_log.probabilities_as_json(["no", True], both)
    assert json.loads(probabilities[0]) == {"no": 0.25, "True": 0.75} and probabilities[1] is None
    assert prediction_log.labels_as_json(["no", True, None, 3]) == ['"no"', "true", None, "3"]


def test_a_label_is_stored_as_the_log_stores_predictions_whether_sent_as_itself_or_as_text() -> None:
    table = feedback.labelled([{"request_id": "r-1", "label": 1},
                               {"request_id": "r-1", "label": "0", "row": "2"}],
                              classes=[0, 1], source="server")
    assert table.schema == feedback.SCHEMA
    assert table.column("label").to_pylist() == [json.dumps(1), json.dumps(0)]
    assert table.column("row").to_pylist() == [0, 2]
    assert table.column("label").to_pylist()[0] == prediction_log.labels_as_json([1])[0]


@pytest.mark.parametrize(("labels", "named"), [
    ([], "send a JSON list of labels"),
    ({"request_id": "r", "label": 1}, "send a JSON list of labels"),
    (["r,1"], "label 0 is not an object"),
    ([{"label": 1}], "label 0 needs request_id"),
    ([{"request_id": "r/../x", "label": 1}], "label 0 needs request_id"),
    ([{"request_id": "r", "label": 1}, {"request_id": "r", "label": 7}],
     "label 1 (7) is not one of the model's classes ['0', '1']"),
    ([{"request_id": "r", "label": None}], "label 0 (None) is not one of"),
    ([{"request_id": "r", "label": 1, "row": -1}], "label 0: row is the record's place in its request"),
    ([{"request_id": "r", "label": 1, "row": True}], "label 0: row is the record's place"),
])
def test_labels_that_name_no_answered_row_or_no_class_are_refused_naming_the_first(
        labels: object, named: str) -> None:
    with pytest.raises(RequestProblem) as refused:
        feedback.labelled(labels, classes=[0, 1], source="server")
    assert refused.value.status == 422 and named in refused.value.message
