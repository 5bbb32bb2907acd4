"""The forecasting study, without MLflow: backtest every candidate on the validation folds → choose per sensor type
(:mod:`core.ml.forecast.tuning`) → backtest only the choice on the later test folds, which chose nothing.

:class:`ForecastConfig` is its configuration, :class:`ForecastStudy` its result (tables, the chosen specs, the data
it ran on); :func:`run_study` the computation. :mod:`core.ml.forecast.training` wraps it in an MLflow run and
:mod:`core.ml.forecast.plots` draws it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from core.ml.forecast.backtest import (
    TEST,
    VALIDATION,
    Fold,
    ModelSpec,
    backtest,
    error_by_horizon,
    make_folds,
    score_table,
    scored,
    select_sensors,
)
from core.ml.forecast.conformal import (
    COVERAGE_LEVELS,
    IntervalCalibration,
    calibrate_predictions,
    fit_calibrations,
    interval_table,
)
from core.ml.forecast.models import DEFAULT_HORIZON, DEFAULT_INTERVAL, infer_frequency, season_steps
from core.ml.forecast.sequential import (
    SequentialDesign,
    choose_design,
    design_grid,
    evaluate_designs,
    run_sequential,
    summarise,
)
from core.ml.forecast.tuning import candidate_specs, select_on_validation

CALIBRATION = "calibration"  # role of the folds before the validation folds (calibration only, never choosing)
METRIC_COLUMNS = ("mae", "rmse", "smape", "skill", "coverage", "n")
#: Interval columns of :meth:`ForecastStudy.report` (``test_coverage`` is the calibrated interval's).
INTERVAL_COLUMNS = ("coverage_raw", "width", "width_raw", "cal_factors", "cal_n")


@dataclass(frozen=True)
class ForecastConfig:
    horizon: int = DEFAULT_HORIZON
    n_folds: int = 6
    n_validation: int | None = None  # None: n_folds // 2
    step: int | None = None  # slots between cut-offs; None: the horizon
    interval: float = DEFAULT_INTERVAL
    grids: Mapping[str, Mapping[str, Sequence[Any]]] | None = None  # None: default hyperparameters only
    max_configs: int | None = None
    seed: int = 0
    exclude_faults: bool = True
    calibration_buckets: int = 3  # horizon buckets of the interval calibration (the grid also tries 1)
    calibration_folds: int = 6  # extra origins before the validation folds, calibration only (fewer if data is short)

    @property
    def validation_folds(self) -> int:
        return self.n_validation if self.n_validation is not None else self.n_folds // 2

    def params(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "grids"}
        out["n_validation"] = self.validation_folds
        out["grids"] = json.dumps(self.grids) if self.grids is not None else "defaults"
        return out


@dataclass
class ForecastStudy:
    config: ForecastConfig
    folds: list[Fold]
    specs: list[ModelSpec]
    validation_predictions: pd.DataFrame
    validation_scores: pd.DataFrame
    selected: dict[str, dict[str, ModelSpec]]
    chosen: dict[str, ModelSpec]
    calibration_predictions: pd.DataFrame
    """The chosen specs' forecasts with their raw intervals on the calibration and validation folds."""
    calibrations: dict[tuple[str, ...], IntervalCalibration]
    """Per (sensor type, method): the sequential calibration's state after the last test fold (every fold's scores,
    weighted, and the ACI shift; :mod:`.sequential`) — what the registered model serves."""
    calibration_folds: list[Fold]
    """Origins before the validation folds, run only to calibrate (role ``"calibration"``)."""
    calibration_design: SequentialDesign
    """The design (decay, γ, buckets) chosen on the validation folds."""
    calibration_designs: pd.DataFrame
    """Every design tried: coverage and width per (type, method) on the validation folds (choice) and the test
    folds (report), plus the split-conformal baseline calibrated on the validation folds only (test rows)."""
    test_predictions: pd.DataFrame
    """Test-fold forecasts with the *calibrated* interval (raw bounds in ``yhat_lower_raw``/``yhat_upper_raw``)."""
    test_scores: pd.DataFrame
    test_intervals: pd.DataFrame
    """Per (type, method): raw and calibrated coverage and mean width on the test folds, factors per horizon bucket,
    number of calibration scores."""
    coverage_curve: pd.DataFrame
    """Calibrated test coverage at each level of :data:`.conformal.COVERAGE_LEVELS` per (type, method)."""
    test_scores_with_faults: pd.DataFrame
    horizon_errors: pd.DataFrame
    readings: pd.DataFrame = field(repr=False)
    faults: pd.DataFrame | None = field(repr=False)

    def report(self) -> pd.DataFrame:
        """One row per (sensor type, method): validation MAE, test metrics (faults excluded), test MAE with
        the fault readings included, the chosen hyperparameters and whether the method is registered."""
        val = self.validation_scores.copy()
        rows = []
        for sensor_type, methods in self.selected.items():
            for method, spec in methods.items():
                v = val[(val["sensor_type"] == sensor_type) & (val["method"] == method)]
                v = v[v["params"].map(lambda p, spec=spec: p == spec.params)]
                t = self.test_scores[
                    (self.test_scores["sensor_type"] == sensor_type) & (self.test_scores["model"] == method)
                ]
                a = self.test_scores_with_faults
                a = a[(a["sensor_type"] == sensor_type) & (a["model"] == method)]
                row = {"sensor_type": sensor_type, "method": method, "val_mae": _first(v, "mae")}
                row |= {f"test_{c}": _first(t, c) for c in METRIC_COLUMNS}
                i = self.test_intervals
                i = i[(i["sensor_type"] == sensor_type) & (i["model"] == method)]
                row |= {f"test_{c}": _first(i, c) for c in INTERVAL_COLUMNS[:3]}
                row["cal_factors"] = str(i["cal_factors"].iloc[0]) if len(i) else ""
                row["cal_n"] = _first(i, "cal_n")
                row["test_mae_with_faults"] = _first(a, "mae")
                row["params"] = json.dumps(spec.params, sort_keys=True)
                row["registered"] = self.chosen[sensor_type].method == method
                rows.append(row)
        return pd.DataFrame(rows)

    def folds_table(self) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {
                    "fold": f.index,
                    "role": f.role,
                    "cutoff": f.cutoff,
                    "first_target": f.first_target,
                    "last_target": f.last_target,
                }
                for f in self.folds
            ]
        )


def _first(frame: pd.DataFrame, column: str) -> float:
    return float(frame[column].iloc[0]) if len(frame) and column in frame else float("nan")


def run_study(
    readings: pd.DataFrame,
    faults: pd.DataFrame | None,
    config: ForecastConfig | None = None,
    *,
    sensor_types: Sequence[str] | None = None,
    max_sensors_per_type: int | None = None,
    progress: bool = True,
) -> ForecastStudy:
    """Backtest every candidate on the validation folds, choose per type, backtest the choice on the test folds."""
    config = config or ForecastConfig()
    data = select_sensors(readings, sensor_types, max_sensors_per_type)
    if data.empty:
        raise ValueError(f"no readings for sensor types {sensor_types}")
    freq = infer_frequency(data["timestamp"])
    folds = make_folds(
        data["timestamp"].max(),
        horizon=config.horizon,
        n_folds=config.n_folds,
        n_validation=config.validation_folds,
        freq=freq,
        step=config.step,
    )
    specs = candidate_specs(config.grids, config.max_configs, config.seed)
    val_folds = [f for f in folds if f.role == VALIDATION]
    test_folds = [f for f in folds if f.role == TEST]
    cal_folds = calibration_folds(folds, config.calibration_folds, data["timestamp"].min(), freq)
    # Validation: point forecasts only (the choice is by MAE; LightGBM then skips its calibration fit).
    val_pred = backtest(data, faults, val_folds, specs, interval=None, progress=progress, desc="validation")
    val_scores, selected, chosen = select_on_validation(val_pred, specs, exclude_faults=config.exclude_faults)
    # Test: only the chosen spec of each method, never used for choosing.
    test_specs: dict[str, Sequence[ModelSpec]] = {t: list(methods.values()) for t, methods in selected.items()}
    # Calibration: the same chosen specs with their raw intervals on the calibration and validation folds, then on
    # the test folds; the sequential calibration at each origin uses only the folds before it.
    cal_pred = backtest(
        data, faults, [*cal_folds, *val_folds], test_specs, interval=config.interval, progress=progress,
        desc="calibration",
    )  # fmt: skip
    test_raw = backtest(
        data, faults, test_folds, test_specs, interval=config.interval, progress=progress, desc="test"
    )
    every = pd.concat([cal_pred, test_raw], ignore_index=True)
    grid = design_grid(config.calibration_buckets)
    base, horizon, level = config.interval, config.horizon, config.interval
    designs = evaluate_designs(
        every, grid, base_interval=base, horizon=horizon, interval=level, exclude_faults=config.exclude_faults
    )
    design = choose_design(designs, config.interval)
    designs = pd.concat([designs, _split_baseline(cal_pred, test_raw, config)], ignore_index=True)
    designs["chosen"] = designs["design"] == design.label
    result = run_sequential(
        every, design, base_interval=base, horizon=horizon, interval=level, levels=COVERAGE_LEVELS,
        exclude_faults=config.exclude_faults,
    )  # fmt: skip
    calibrations = result.final
    test_pred = result.predictions[result.predictions["role"] == TEST].reset_index(drop=True)
    test_scored = scored(test_pred, config.exclude_faults)
    curve = summarise(result.curve, TEST)
    return ForecastStudy(
        config=config,
        folds=folds,
        specs=specs,
        validation_predictions=val_pred,
        validation_scores=val_scores,
        selected=selected,
        chosen=chosen,
        calibration_predictions=cal_pred,
        calibrations=calibrations,
        calibration_folds=cal_folds,
        calibration_design=design,
        calibration_designs=designs,
        test_predictions=test_pred,
        test_scores=score_table(test_pred, exclude_faults=config.exclude_faults),
        test_intervals=interval_table(test_scored, calibrations, config.interval),
        coverage_curve=curve.loc[:, ["sensor_type", "model", "nominal", "coverage", "width", "n"]],
        test_scores_with_faults=score_table(test_pred, exclude_faults=False),
        horizon_errors=error_by_horizon(test_pred, exclude_faults=config.exclude_faults),
        readings=data,
        faults=faults,
    )


def calibration_folds(folds: Sequence[Fold], count: int, start: pd.Timestamp, freq: pd.Timedelta) -> list[Fold]:
    """Up to ``count`` origins before the first fold, one horizon apart, role ``"calibration"``, negative indices;
    only origins with a season (one day) + one slot of history before them (the seasonal naive needs it)."""
    first = folds[0]
    need = start + freq * season_steps(freq)
    out = []
    for i in range(1, int(count) + 1):
        cutoff = first.cutoff - freq * first.horizon * i
        if cutoff < need:
            break
        out.append(Fold(-i, cutoff, CALIBRATION, first.horizon, freq))
    return out[::-1]


def _split_baseline(cal_pred: pd.DataFrame, test_raw: pd.DataFrame, config: ForecastConfig) -> pd.DataFrame:
    """The first design (issue 16, commit 71ef9c7): split-conformal on the validation folds only, per horizon
    bucket; its coverage and width on the test folds, for the designs table."""
    validation = scored(cal_pred[cal_pred["role"] == VALIDATION], config.exclude_faults)
    calibrations = fit_calibrations(
        validation, config.interval, horizon=config.horizon, buckets=config.calibration_buckets
    )
    table = interval_table(
        scored(calibrate_predictions(test_raw, calibrations, config.interval), config.exclude_faults),
        calibrations,
        config.interval,
    )
    label = f"split-conformal, validation folds only, buckets={config.calibration_buckets}"
    return table.loc[:, ["sensor_type", "model", "coverage", "width", "n"]].assign(
        design=label, decay=float("nan"), gamma=float("nan"), buckets=config.calibration_buckets, role=TEST
    )


__all__ = ["INTERVAL_COLUMNS", "METRIC_COLUMNS", "ForecastConfig", "ForecastStudy", "run_study"]
