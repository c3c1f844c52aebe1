"""The model as MLflow logs and registers it: a pyfunc that reads raw frames, answers in labels.

``mlflow.pyfunc.load_model("models:/<name>@staging").predict(frame)`` takes a
frame of the user's own columns (text categories, booleans, gaps) and returns the
user's labels. The signature and input example come from the training split as
the user wrote it, the class mapping and schema ride in the model's metadata, and
the package modules the pickled model needs are shipped with it (``code_paths``),
so loading it needs only MLflow, pandas and XGBoost.
"""

from __future__ import annotations

import io
import pickle
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from pipeline_steps import modules
from pipeline_steps.errors import PipelineError
from pipeline_steps.modelling.model import LabelledModel

INPUT_EXAMPLE_ROWS = 5
# Where the logged pyfunc keeps the pickled LabelledModel (``artifacts={"model": ...}``).
PICKLE_IN_MODEL = Path("artifacts") / "model.pkl"
# Where a model registered before the package was grouped by stage finds its classes now.
_MOVED_MODULES = {"pipeline_steps.model": "pipeline_steps.modelling.model",
                  "pipeline_steps.schema": "pipeline_steps.data.schema"}


class _Unpickler(pickle.Unpickler):
    """Reads a model pickled by this package's code today or before its modules moved."""

    def find_class(self, module: str, name: str) -> Any:
        return super().find_class(_MOVED_MODULES.get(module, module), name)


def unpickle(payload: bytes) -> LabelledModel:
    """A pickled :class:`LabelledModel` (model.pkl), also one pickled before the package's modules moved."""
    return _Unpickler(io.BytesIO(payload)).load()


class RegistryModel(mlflow.pyfunc.PythonModel):  # pylint: disable=abstract-method  # no streaming
    """Loads ``model.pkl`` (a :class:`LabelledModel`) and predicts labels with it."""

    def __init__(self) -> None:
        self.model: LabelledModel | None = None

    def load_context(self, context: Any) -> None:
        """Unpickle the model the run logged next to this wrapper."""
        self.model = unpickle(Path(context.artifacts["model"]).read_bytes())

    def predict(  # pylint: disable=unused-argument
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.Series:
        """The user's labels for a raw frame of the user's columns."""
        assert self.model is not None, "load_context runs before predict"
        return self.model.predict(model_input)


def log(model: LabelledModel, model_bytes: bytes, train_frame: pd.DataFrame, name: str) -> Any:
    """Log the model to the active run as a pyfunc with signature, input example and schema."""
    # pylint: disable=import-outside-toplevel
    import sklearn
    import xgboost

    # The columns as the user's file has them: MLflow's signature then accepts the frame the
    # user reads from such a file (it refuses int64 where it recorded double, and back).
    example = train_frame[model.schema.feature_names].head(INPUT_EXAMPLE_ROWS)
    signature = mlflow.models.infer_signature(example, model.predict(example))
    with tempfile.TemporaryDirectory() as tmp:
        model_path = Path(tmp, "model.pkl")
        model_path.write_bytes(model_bytes)
        # What unpickling it needs (this module's imports, and theirs), as the package lays it out.
        modules.copy(__name__, Path(tmp))
        code = Path(tmp, modules.PACKAGE)
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=RegistryModel(),
            artifacts={"model": str(model_path)},
            code_paths=[str(code)],
            signature=signature,
            input_example=example,
            metadata={"schema": model.schema.to_dict(), "classes": list(model.schema.classes)},
            pip_requirements=[
                f"xgboost=={xgboost.__version__}",
                f"pandas=={pd.__version__}",
                f"scikit-learn=={sklearn.__version__}",
            ],
        )


@dataclass(frozen=True)
class Downloaded:
    """A registered model read back: the :class:`LabelledModel` and the input example it was logged with."""

    model: LabelledModel
    example: pd.DataFrame | None


def download(uri: str) -> Downloaded:
    """The model at ``uri`` (``models:/<name>/<version>``, ``models:/<name>@<alias>``), from the registry.

    The model's own files are downloaded and its pickle read (:func:`unpickle`); its
    shipped code is not put on ``sys.path``, so the caller's modules stay the ones it imported. A
    model that cannot be read is a PipelineError naming it (retryable when MLflow
    or S3 failed).
    """
    # pylint: disable=import-outside-toplevel
    from mlflow.exceptions import MlflowException

    from pipeline_steps.services import tracking

    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp))
            model = unpickle((local / PICKLE_IN_MODEL).read_bytes())
            example = _input_example(local)
        except MlflowException as exc:
            raise tracking.service_error(exc, f"cannot download {uri}") from None
        except (OSError, pickle.UnpicklingError, AttributeError, ImportError, ValueError) as exc:
            raise PipelineError(f"cannot load {uri}: {exc}") from None
    if not isinstance(model, LabelledModel):
        raise PipelineError(f"cannot load {uri}: its {PICKLE_IN_MODEL} holds a {type(model).__name__}")
    return Downloaded(model, example)


def _input_example(local: Path) -> pd.DataFrame | None:
    """The input example logged with the model (:func:`log` logs one), or None without one."""
    logged = mlflow.models.Model.load(str(local))
    if logged.saved_input_example_info is None:
        return None
    example = logged.load_input_example(str(local))
    return example if isinstance(example, pd.DataFrame) else pd.DataFrame(example)


def load_labelled_model(model_name: str, alias: str) -> LabelledModel:
    """The :class:`LabelledModel` behind ``models:/<name>@<alias>`` (see :func:`download`)."""
    return download(f"models:/{model_name}@{alias}").model
