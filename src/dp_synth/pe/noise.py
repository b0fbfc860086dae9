"""The Gaussian noise of every DP release: secure and floating-point safe unless a seed is set.

A run without ``dp.seed`` draws its noise with OpenDP's Gaussian mechanism (``make_gaussian``
over a vector of floats with the L2 distance): the value is rounded to the lattice
``2**GRANULARITY_EXPONENT * Z`` and noise from the *discrete* Gaussian on that lattice is added,
sampled exactly (rational arithmetic, no floating-point Gaussian) from OpenSSL's
cryptographically secure generator (the opendp wheel links it). Its outputs are lattice points
whatever the input, so they do not leak the input's low-order bits as floating-point samplers
do (Mironov 2012). The rounding moves a release by at most ``2**GRANULARITY_EXPONENT *
sqrt(values)`` in L2; OpenDP's privacy map charges that to the sensitivity, and the noise scale
is raised by as much, so OpenDP's map certifies at most the rho-zCDP ``(sensitivity /
sigma)**2 / 2`` of a continuous Gaussian of that sigma, which is checked before every draw.

Why a fine lattice rather than the integers, even for counts: the discrete Gaussian on Z has
the same zCDP as the continuous one (Canonne, Kamath and Steinke 2020), but its exact privacy
curve differs where sigma is near the sensitivity (at sigma 0.85, two releases, dp-accounting's
PLD gives epsilon 8.15 for the target 8 on Z), while on a lattice much finer than sigma it is
the continuous curve, up to the lattice spacing squared: the run's Gaussian-DP accounting then
holds for the noise actually drawn (see docs/algorithm.md, "Noise").

A seeded run (``dp.seed``) keeps numpy's generator, reproducible and NOT private against
whoever knows the seed; its releases are unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

GRANULARITY_EXPONENT = -30
"""Secure noise lives on the lattice 2**-30 Z (about 9.3e-10): far finer than any sigma a plan
calibrates, and fast (15 to 26 us a value on 2 shared cores; OpenDP's default, 2**-1074, 7 to 9 times slower)."""
SCALE_MARGIN = 1e-9
"""Relative increase of the secure noise scale beyond the rounding charge, so that OpenDP's
privacy map (rounded up in floating point) stays at or below the continuous Gaussian's rho."""


@dataclass(frozen=True)
class NoiseSource:
    """Where one stream's noise comes from.

    Attributes:
        generator: The stream's numpy generator: the noise itself when ``secure`` is false (a
            seeded run), and in every case the stream's other draws, which post-process releases
            (e.g. sampling from released statistics).
        secure: Draw the noise with OpenDP (an unseeded run).
    """

    generator: np.random.Generator
    secure: bool

    def add(self, values: np.ndarray, sigma: float, sensitivity: float) -> np.ndarray:
        """``values`` plus Gaussian noise of standard deviation ``sigma`` (one release of L2
        sensitivity ``sensitivity``)."""
        return self.add_each([values], sigma, sensitivity)[0]

    def add_each(self, arrays: Sequence[np.ndarray], sigma: float, sensitivity: float) -> tuple[np.ndarray, ...]:
        """Each array plus Gaussian noise of standard deviation ``sigma``: the arrays together
        are one release of L2 sensitivity ``sensitivity``.

        Seeded: numpy's ``normal`` per array, in order (as the releases were always drawn).
        Secure: one OpenDP measurement over all the values (``secure_gaussian``).
        """
        if not self.secure or not arrays:
            return tuple(array + self.generator.normal(0.0, sigma, size=np.shape(array)) for array in arrays)
        flat = [np.asarray(array, dtype=np.float64) for array in arrays]
        noisy = secure_gaussian(np.concatenate([array.ravel() for array in flat]), sigma, sensitivity)
        ends = np.cumsum([array.size for array in flat])[:-1]
        return tuple(part.reshape(array.shape) for part, array in zip(np.split(noisy, ends), flat, strict=True))


Noise = NoiseSource | np.random.Generator
"""What a release takes: a plan's ``NoiseSource``, or a bare numpy generator (numpy's noise:
reproducible, not private; for tests and seeded experiments)."""


def as_source(noise: Noise) -> NoiseSource:
    """A bare numpy generator as a (not secure) ``NoiseSource``."""
    return noise if isinstance(noise, NoiseSource) else NoiseSource(noise, secure=False)


def generator_of(noise: Noise) -> np.random.Generator:
    """The numpy generator of a noise stream, for its draws that are not noise."""
    return as_source(noise).generator


@cache
def _opendp() -> Any:
    # Imported when a secure release is first drawn.
    import opendp.prelude as dp

    dp.enable_features("contrib")
    return dp


def secure_scale(sigma: float, sensitivity: float, size: int) -> float:
    """The OpenDP noise scale for ``sigma``: raised by the rounding to the lattice, which moves
    a release of ``size`` values by at most ``2**GRANULARITY_EXPONENT * sqrt(size)`` in L2."""
    rounding = 2.0**GRANULARITY_EXPONENT * math.sqrt(size)
    return sigma * (sensitivity + rounding) / sensitivity * (1.0 + SCALE_MARGIN)


def secure_measurement(sigma: float, sensitivity: float, size: int) -> Any:
    """OpenDP's Gaussian mechanism for ``size`` float values (``secure_scale``), after checking
    that its privacy map at ``sensitivity`` is at most the continuous Gaussian's
    ``(sensitivity / sigma)**2 / 2``.

    Raises:
        ValueError: for a sigma or sensitivity that is not a positive finite number.
        RuntimeError: if OpenDP's map charges more than that (it never should).
    """
    if not (math.isfinite(sigma) and sigma > 0 and math.isfinite(sensitivity) and sensitivity > 0):
        raise ValueError(f"secure Gaussian noise needs sigma > 0 and sensitivity > 0, got {sigma}, {sensitivity}")
    dp = _opendp()
    space = dp.vector_domain(dp.atom_domain(T=float, nan=False), size=size), dp.l2_distance(T=float)
    measurement = dp.m.make_gaussian(*space, scale=secure_scale(sigma, sensitivity, size), k=GRANULARITY_EXPONENT)
    charged, granted = measurement.map(float(sensitivity)), (sensitivity / sigma) ** 2 / 2.0
    if charged > granted:
        raise RuntimeError(f"OpenDP charges rho {charged!r} for a release granted {granted!r}")
    return measurement


def secure_gaussian(values: np.ndarray, sigma: float, sensitivity: float) -> np.ndarray:
    """A flat vector of finite values plus OpenDP's discrete Gaussian noise on the lattice
    (``secure_measurement``), as float64.

    Args:
        values: The release's exact values, shape (n,).
        sigma: The noise the plan calibrated for the release.
        sensitivity: The release's L2 sensitivity (the rounding is charged relative to it, so a
            smaller stated sensitivity only raises the scale more).
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"secure_gaussian takes a flat vector, got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        raise ValueError("a release's values must be finite")
    if values.size == 0:
        return values.copy()
    measurement = secure_measurement(sigma, sensitivity, values.size)
    return np.asarray(measurement(values.tolist()), dtype=np.float64)
