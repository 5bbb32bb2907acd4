"""/predict input from JSON: integers for double columns and integral floats for long columns are converted to the
signature's types (MLflow refuses int64 → float64), other mismatches still reach MLflow's own check."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest
from mlflow.models import infer_signature

from core.ml.serving.loader import LoadedModel, _schema_columns, coerce_numbers, records_frame


class _Sum(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return pd.DataFrame({"total": model_input["temperature"] + model_input["speed"]})


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    example = pd.DataFrame({"temperature": [300.5], "speed": pd.Series([1500], dtype="int64")})
    path = tmp_path_factory.mktemp("model") / "sum"
    mlflow.pyfunc.save_model(
        path, python_model=_Sum(), signature=infer_signature(example, pd.DataFrame({"total": [1800.5]}))
    )
    model = mlflow.pyfunc.load_model(str(path))
    schema = _schema_columns(model)
    assert schema["float_columns"] == ("temperature",) and schema["integer_columns"] == ("speed",)
    return LoadedModel("sum", "1", model, **schema)


def test_json_numbers_reach_the_signature_types(loaded: LoadedModel) -> None:
    frame = records_frame([{"temperature": 300, "speed": 1500.0}, {"temperature": 301, "speed": 1600.0}])
    with pytest.raises(mlflow.exceptions.MlflowException):
        loaded.model.predict(frame)  # what /predict did before: MLflow refuses the JSON types
    coerced = coerce_numbers(frame, loaded)
    assert coerced["temperature"].dtype == "float64" and coerced["speed"].dtype == "int64"
    assert loaded.model.predict(coerced)["total"].tolist() == [1800.0, 1901.0]


def test_lossy_conversions_are_left_to_mlflow(loaded: LoadedModel) -> None:
    frame = records_frame([{"temperature": 300.5, "speed": 1500.5}])
    coerced = coerce_numbers(frame, loaded)
    assert coerced["speed"].dtype == "float64"  # 1500.5 is not an integer: not silently truncated
    with pytest.raises(mlflow.exceptions.MlflowException):
        loaded.model.predict(coerced)
