"""Differential privacy mechanisms: Laplace (pure epsilon-DP) and Gaussian ((epsilon, delta)-DP)
noise calibrated to a query's sensitivity, drawn from a numpy Generator.

Why not a library: OpenDP 0.16 is a 47 MB wheel (276 MB installed) whose samplers cannot be
seeded, and diffprivlib pulls in scikit-learn and SciPy; two calibrated samplers are a few lines.
Known limit (Mironov 2012): textbook floating-point Laplace noise can leak through the low bits
of a result; releases round every noisy value (counts to integers, money to cents), which is the
usual mitigation but not a proof. Swap in OpenDP's samplers here if that matters to a consumer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from elt_platform.errors import InvalidPrivacyParameters

LAPLACE = "laplace"
GAUSSIAN = "gaussian"
MECHANISMS = (LAPLACE, GAUSSIAN)


@dataclass(frozen=True)
class Calibration:
    """How much noise one query gets: mechanism, privacy loss and the noise scale it implies."""

    mechanism: str
    epsilon: float
    delta: float
    sensitivity: float
    scale: float  # Laplace b (variance 2 b^2) or Gaussian sigma (variance sigma^2)

    @property
    def variance(self) -> float:
        return 2 * self.scale**2 if self.mechanism == LAPLACE else self.scale**2


def _positive(name: str, value: float) -> float:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise InvalidPrivacyParameters(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def laplace_calibration(l1_sensitivity: float, epsilon: float) -> Calibration:
    """Laplace noise with scale b = sensitivity / epsilon gives epsilon-DP for an L1 sensitivity."""
    sensitivity = _positive("sensitivity", l1_sensitivity)
    eps = _positive("epsilon", epsilon)
    return Calibration(LAPLACE, eps, 0.0, sensitivity, sensitivity / eps)


def gaussian_calibration(l2_sensitivity: float, epsilon: float, delta: float) -> Calibration:
    """The classic Gaussian mechanism, sigma = sensitivity * sqrt(2 ln(1.25/delta)) / epsilon,
    which is (epsilon, delta)-DP for an L2 sensitivity when 0 < epsilon < 1."""
    sensitivity = _positive("sensitivity", l2_sensitivity)
    eps = _positive("epsilon", epsilon)
    if eps >= 1:
        raise InvalidPrivacyParameters(
            f"the Gaussian mechanism needs epsilon < 1 (got {eps}); use Laplace for larger epsilon"
        )
    if not (isinstance(delta, int | float) and 0 < delta < 1):
        raise InvalidPrivacyParameters(f"the Gaussian mechanism needs 0 < delta < 1, got {delta!r}")
    sigma = sensitivity * math.sqrt(2 * math.log(1.25 / delta)) / eps
    return Calibration(GAUSSIAN, eps, float(delta), sensitivity, sigma)


def calibrate(
    mechanism: str, sensitivity: float, epsilon: float, delta: float = 0.0
) -> Calibration:
    """The calibration of `mechanism` for one query with the given sensitivity and privacy loss."""
    if mechanism == LAPLACE:
        if delta:
            raise InvalidPrivacyParameters("the Laplace mechanism takes no delta (it is pure DP)")
        return laplace_calibration(sensitivity, epsilon)
    if mechanism == GAUSSIAN:
        return gaussian_calibration(sensitivity, epsilon, delta)
    raise InvalidPrivacyParameters(
        f"unknown mechanism {mechanism!r} (use {' or '.join(MECHANISMS)})"
    )


def add_noise(values: np.ndarray, calibration: Calibration, rng: np.random.Generator) -> np.ndarray:
    """`values` plus independent noise per element, as `calibration` prescribes."""
    values = np.asarray(values, dtype=np.float64)
    if calibration.mechanism == LAPLACE:
        return values + rng.laplace(0.0, calibration.scale, size=values.shape)
    return values + rng.normal(0.0, calibration.scale, size=values.shape)


def split_budget(epsilon: float, delta: float, parts: int) -> tuple[float, float]:
    """Equal shares of (epsilon, delta) for `parts` queries on the same data (basic composition:
    the privacy losses of the parts add up to the whole)."""
    return epsilon / parts, delta / parts
