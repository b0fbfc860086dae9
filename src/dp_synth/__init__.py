"""dp-synth: differentially private synthetic data by Private Evolution.

``from dp_synth import TabularSynthesizer`` is the Python API (``dp_synth.api``); the Kedro jobs
are ``kedro run --pipelines=tabular|text|image``.
"""

from dp_synth.api import TabularSynthesizer

__all__ = ["TabularSynthesizer"]
