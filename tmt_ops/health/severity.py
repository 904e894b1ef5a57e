"""How bad is it: one probe's health, a measured value against a threshold, and the worst of many."""

from __future__ import annotations

from typing import Iterable

from ..registry import Threshold
from ..states import Health, Overall

ORDER = (Overall.HEALTHY, Overall.WARNING, Overall.CRITICAL)


def worst(severities: Iterable[Overall]) -> Overall:
    return max(severities, key=ORDER.index, default=Overall.HEALTHY)


def of_health(health: Health, critical: bool) -> Overall:
    """A service that answers but is degraded or starting is a warning; one that does not answer is critical
    when the registry marks it critical, else a warning."""
    if health is Health.HEALTHY:
        return Overall.HEALTHY
    if health in (Health.DEGRADED, Health.STARTING):
        return Overall.WARNING
    return Overall.CRITICAL if critical else Overall.WARNING


def of_value(value: float, threshold: Threshold | None) -> Overall:
    if threshold is None:
        return Overall.HEALTHY
    if value >= threshold.critical:
        return Overall.CRITICAL
    if value >= threshold.warning:
        return Overall.WARNING
    return Overall.HEALTHY
