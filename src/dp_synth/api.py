"""The Python API: the tabular job from a notebook or a script, on the Kedro nodes' own code path.

    from dp_synth import TabularSynthesizer
    synthesizer = TabularSynthesizer(epsilon=1.0).fit(private, schema)
    synthetic = synthesizer.sample(10_000)
    print(synthesizer.privacy_report)

``fit`` runs the tabular pipeline itself (the same nodes ``kedro run --pipelines=tabular`` runs,
with an in-memory catalog) up to the release basis and the privacy report; every release is
recorded in the project's privacy ledger (``dp.ledger``) as ``kedro run`` records it, and counts
towards the dataset's lifetime budget. ``sample`` draws from the basis, which is
post-processing: sampling again costs no budget.

It behaves like a library: ``fit`` prints nothing (no Kedro or MLflow logging; ``verbose=True``
shows Kedro's node-by-node log, and ``logging.basicConfig(level=logging.INFO)`` shows
dp-synth's own), a progress bar appears on a terminal only when a fit lasts more than
``PROGRESS_DELAY`` seconds, and a wrong setting, schema or privacy parameter stops it with the
project's own exception and one message.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from kedro.framework.hooks import hook_impl
from kedro.framework.hooks.manager import _create_hook_manager
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Node
from kedro.runner import SequentialRunner
from tqdm import tqdm

from dp_synth.modalities.tabular.settings import TabularSettings
from dp_synth.pe.accounting import PrivacyConfigError
from dp_synth.pe.ledger import PrivacyLedger
from dp_synth.pe.release import ReleaseBasis
from dp_synth.pe.report import PrivacyReport
from dp_synth.pe.schema import SchemaError
from dp_synth.pe.settings import SettingsError
from dp_synth.pipelines.tabular.pipeline import NAMESPACE, create_pipeline
from dp_synth.quiet import fit_logging

PROGRESS_DELAY = 5.0
"""Seconds a fit runs before its progress bar appears (on a terminal only)."""
USER_ERRORS = (SettingsError, SchemaError, PrivacyConfigError)
"""What a user's settings, schema or privacy parameters can be refused with (``LedgerError`` is a
``PrivacyConfigError``): ``fit`` raises them without the runner's frames."""


class TabularSynthesizer:
    """Differentially private synthetic tables by Private Evolution.

    Args:
        epsilon: Total privacy budget of ``fit``, > 0.
        delta: In (0, 1), or ``"auto"``: 1/(n ln n) with the schema's ``public_row_count``.
        seed: ``None``: secure noise (OpenDP's discrete Gaussian). An integer makes the run reproducible and NOT
            private against anyone who knows it: for experiments only.
        population_size: N candidate rows per iteration.
        iterations: T, the number of DP histograms.
        verbose: Log Kedro's run node by node and dp-synth's INFO lines (on stderr unless
            logging is configured), and keep the full traceback of a refused fit.
        **sections: Any other setting, by its section of ``TabularSettings``:
            ``generator={"structure": "independent"}``, ``pe={"candidates_per_bin": 1}``,
            ``dp={"class_proportions": "public"}``, ``release={"vary": True}``,
            ``dp={"lifetime_epsilon": 10}`` (the dataset's lifetime budget, see the README).

    Raises:
        SettingsError: for an unknown section or key (named with the nearest valid one) or a
            bad value.
    """

    def __init__(
        self,
        epsilon: float = 1.0,
        delta: float | str = "auto",
        seed: int | None = None,
        population_size: int | None = None,
        iterations: int | None = None,
        verbose: bool = False,
        **sections: Mapping[str, Any],
    ) -> None:
        raw: dict[str, dict[str, Any]] = {name: dict(values) for name, values in sections.items()}
        raw["dp"] = {**raw.get("dp", {}), "epsilon": epsilon, "delta": delta, "seed": seed}
        pe = raw.setdefault("pe", {})
        if population_size is not None:
            pe["population_size"] = population_size
        if iterations is not None:
            pe["iterations"] = iterations
        self.settings = TabularSettings.parse(raw, NAMESPACE)
        self.verbose = verbose
        self._fit: tuple[ReleaseBasis, PrivacyReport] | None = None
        self._draws = 0

    def fit(self, private: pd.DataFrame, schema: Mapping[str, Any] | str | Path) -> TabularSynthesizer:
        """Spend the budget: measure the DP statistics and class counts, run the T iterations.

        Args:
            private: The private table, one row per record, the schema's columns.
            schema: The public schema (a mapping, or the path of its JSON file): every
                category, bound and class declared from public knowledge, never read off
                ``private``; its ``dataset_id`` names the dataset in the privacy ledger.

        Returns:
            ``self``, ready to ``sample``.

        Raises:
            SchemaError: for a schema that is not valid (or a file that is not JSON).
            PrivacyConfigError: for privacy parameters the schema cannot support (``delta="auto"``
                without ``public_row_count``).
            LedgerError: if the fit would take the dataset past its lifetime budget (before any
                private row is read). A fit that fails gives back the budget it did not release.
            SettingsError: for a setting the schema makes invalid.
        """
        if not isinstance(private, pd.DataFrame):
            raise TypeError(f"private must be a pandas DataFrame, not {type(private).__name__}")
        schema = _schema_mapping(schema)
        catalog = DataCatalog()
        catalog[f"params:{NAMESPACE}"] = self.settings.model_dump()
        catalog[f"{NAMESPACE}.schema"] = dict(schema)
        catalog[f"{NAMESPACE}.private_data"] = private
        basis_name, report_name = f"{NAMESPACE}.release_basis", f"{NAMESPACE}.privacy_report"
        catalog[basis_name] = _KeptDataset(copy_mode="assign")  # the job's release reads it too
        ledger_run = catalog[f"{NAMESPACE}.ledger_run"] = _KeptDataset(copy_mode="assign")
        pipeline = create_pipeline(self.settings.pe.iterations).to_outputs(basis_name, report_name)
        try:
            with fit_logging(self.verbose), _Progress(pipeline.nodes) as progress:
                outputs = _LibraryRunner().run(pipeline, catalog, progress.hook_manager)
        except BaseException as error:
            if ledger_run.exists():  # admitted: give back what the failed fit did not release
                run = ledger_run.load()
                PrivacyLedger(run.path).give_back(run)
            if isinstance(error, USER_ERRORS) and not self.verbose:
                raise error.with_traceback(None) from None  # the message says it all: not Kedro's frames
            raise
        self._fit = catalog[basis_name].load(), PrivacyReport.from_dict(outputs[report_name].load())
        self._draws = 0
        return self

    def sample(self, rows: int | None = None) -> pd.DataFrame:
        """Draw a synthetic table (post-processing of ``fit``'s releases: no budget spent).

        Args:
            rows: Rows to draw; ``None``: ``release.rows``, whose ``auto`` is the schema's public
                row count, else the DP class count's total.

        Raises:
            SettingsError: for fewer rows than classes.
            RuntimeError: before ``fit``.
        """
        basis, _ = self._fitted()
        rows = basis.rows(self.settings.release.rows if rows is None else rows)
        if not isinstance(rows, int) or rows < len(basis.modality.classes):
            raise SettingsError(f"rows must be an integer >= the number of classes ({len(basis.modality.classes)})")
        table = basis.draw(rows, self.settings.release.vary, basis.release_rng(self._draws))
        self._draws += 1
        return table

    @property
    def privacy_report(self) -> PrivacyReport:
        """Every release of ``fit`` (sensitivity and sigma), the neighbouring relation, the
        accountant, epsilon and delta spent, whether the noise was seeded, and the dataset's
        lifetime spend when ``fit`` ended (the report ``kedro run`` saves beside its release)."""
        return self._fitted()[1]

    def _fitted(self) -> tuple[ReleaseBasis, PrivacyReport]:
        if self._fit is None:
            raise RuntimeError("call fit(private, schema) first: nothing has been released yet")
        return self._fit


def _schema_mapping(schema: Mapping[str, Any] | str | Path) -> Mapping[str, Any]:
    """The schema itself, or read from its JSON file."""
    if isinstance(schema, Mapping):
        return schema
    if not isinstance(schema, (str, Path)):
        raise TypeError(f"schema must be a mapping or the path of its JSON file, not {type(schema).__name__}")
    try:
        return json.loads(Path(schema).read_text())
    except json.JSONDecodeError as error:
        raise SchemaError(f"the schema file {schema} is not JSON: {error}") from None


class _LibraryRunner(SequentialRunner):
    """Kedro's sequential runner without its advice, on failure, to resume with
    ``kedro run --from-nodes``: a ``fit`` is not a command line, and resuming one would not
    reuse its releases. It logs as Kedro's does (``kedro.runner``), not as ``dp_synth``."""

    @property
    def _logger(self) -> logging.Logger:
        return logging.getLogger(SequentialRunner.__module__)

    def _suggest_resume_scenario(self, *args: Any, **kwargs: Any) -> None:
        pass


class _Progress:
    """A progress bar over the fit's nodes (one per DP histogram and per stage), shown on a
    terminal only and only once the fit has lasted ``PROGRESS_DELAY`` seconds."""

    def __init__(self, nodes: Iterable[Node]) -> None:
        self.bar = tqdm(
            total=len(list(nodes)),
            desc="fit",
            unit="step",
            file=sys.stderr,
            disable=None,
            delay=PROGRESS_DELAY,
            leave=False,
        )
        self.hook_manager = _create_hook_manager()
        self.hook_manager.register(self)

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()

    @hook_impl
    def after_node_run(self, node: Node) -> None:
        """One more node done."""
        self.bar.set_postfix_str(node.name, refresh=False)
        self.bar.update()


class _KeptDataset(MemoryDataset):
    """An in-memory dataset the runner does not empty after its last reader: ``fit`` keeps the
    release basis that the job's own release also reads."""

    def _release(self) -> None:
        pass
