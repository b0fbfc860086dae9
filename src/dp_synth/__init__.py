"""dp-synth: differentially private synthetic data by Private Evolution.

``from dp_synth import TabularSynthesizer`` is the Python API (``dp_synth.api``); the Kedro jobs
are ``kedro run --pipelines=tabular|text|image``. Importing ``dp_synth`` configures no logging
(``dp_synth.quiet``).
"""

from dp_synth.quiet import import_kedro_without_logging

import_kedro_without_logging()  # before anything imports Kedro

from dp_synth.api import TabularSynthesizer  # noqa: E402

__all__ = ["TabularSynthesizer"]
