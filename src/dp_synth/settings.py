"""Project settings: configuration loading and hooks."""

import warnings

from kedro.config import OmegaConfigLoader

from dp_synth.hooks.failure_report import FailureReportHook
from dp_synth.hooks.ledger_reservation import LedgerReservationHook
from dp_synth.hooks.resume_hint import ResumeHintHook
from dp_synth.hooks.spark_session import SparkSessionHook
from dp_synth.hooks.stage_timing import StageTimingHook
from dp_synth.hooks.tracking import PrivateEvolutionTrackingHook

# Kedro and kedro-mlflow call OmegaConf's deprecated register_new_resolver on every run: a page of
# warnings a user can do nothing about.
warnings.filterwarnings("ignore", message=r"register_new_resolver\(\) is deprecated", category=UserWarning)

HOOKS = (
    SparkSessionHook(),
    PrivateEvolutionTrackingHook(),
    StageTimingHook(),
    LedgerReservationHook(),
    ResumeHintHook(),
    FailureReportHook(),
)

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # Soft merge keeps sibling keys: --params tabular.dp.epsilon=2 changes only epsilon.
    "merge_strategy": {"parameters": "soft"},
    "config_patterns": {"mlflow": ["mlflow*", "mlflow*/**"], "spark": ["spark*", "spark*/**"]},
}
