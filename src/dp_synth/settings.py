"""Project settings: configuration loading and hooks."""

from kedro.config import OmegaConfigLoader

from dp_synth.hooks import PrivateEvolutionTrackingHook, ResumeHintHook, StageTimingHook

HOOKS = (PrivateEvolutionTrackingHook(), StageTimingHook(), ResumeHintHook())

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # Soft merge keeps sibling keys: --params tabular.dp.epsilon=2 changes only epsilon.
    "merge_strategy": {"parameters": "soft"},
    "config_patterns": {"mlflow": ["mlflow*", "mlflow*/**"]},
}
