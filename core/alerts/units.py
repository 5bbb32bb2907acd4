"""Which sensors a rule with a unit judges, and its bounds in the sensor's unit.

A threshold or rate-of-change rule states the unit of its bounds (``alert_rules.unit``); it judges a sensor only
when the sensor's registered unit is that unit, or converts to it (``core.units``), and then with its bounds
converted to the sensor's unit. A rule without a unit judges every sensor in scope in the sensor's own unit, and
rules of other kinds have no bounds.
"""

from __future__ import annotations

from typing import Any

from core.alerts.rule_models import AlertRule
from core.units import converter, normalize

BOUNDED_KINDS = ("threshold", "rate_of_change")


def rule_params_for(rule: AlertRule, sensor_unit: str | None) -> dict[str, Any] | None:
    """``rule.params`` expressed in ``sensor_unit``, or None when the rule does not judge such a sensor."""
    params = dict(rule.params or {})
    if rule.kind not in BOUNDED_KINDS or rule.unit is None:
        return params
    if normalize(rule.unit) == normalize(sensor_unit):
        return params
    convert = converter(rule.unit, sensor_unit)
    if convert is None:
        return None
    if rule.kind == "threshold":
        for key in ("min", "max"):
            if params.get(key) is not None:
                params[key] = convert(float(params[key]))
    else:  # a rate is a difference: no offset (°C → °F changes its size, not its zero)
        params["max_rate_per_min"] = abs(convert(float(params["max_rate_per_min"])) - convert(0.0))
    return params


__all__ = ["BOUNDED_KINDS", "rule_params_for"]
