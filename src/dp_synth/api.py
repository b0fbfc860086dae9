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
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from dp_synth.modalities.tabular.settings import TabularSettings
from dp_synth.pe.ledger import PrivacyLedger
from dp_synth.pe.release import ReleaseBasis
from dp_synth.pe.report import PrivacyReport
from dp_synth.pe.settings import SettingsError
from dp_synth.pipelines.tabular.pipeline import NAMESPACE, create_pipeline


class TabularSynthesizer:
    """Differentially private synthetic tables by Private Evolution.

    Args:
        epsilon: Total privacy budget of ``fit``, > 0.
        delta: In (0, 1), or ``"auto"``: 1/(n ln n) with the schema's ``public_row_count``.
        seed: ``None``: secure noise (OpenDP's discrete Gaussian). An integer makes the run reproducible and NOT
            private against anyone who knows it: for experiments only.
        population_size: N candidate rows per iteration.
        iterations: T, the number of DP histograms.
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
            LedgerError: if the fit would take the dataset past its lifetime budget (before any
                private row is read). A fit that fails gives back the budget it did not release.
        """
        if not isinstance(schema, Mapping):
            schema = json.loads(Path(schema).read_text())
        catalog = DataCatalog()
        catalog[f"params:{NAMESPACE}"] = self.settings.model_dump()
        catalog[f"{NAMESPACE}.schema"] = dict(schema)
        catalog[f"{NAMESPACE}.private_data"] = private
        basis_name, report_name = f"{NAMESPACE}.release_basis", f"{NAMESPACE}.privacy_report"
        catalog[basis_name] = _KeptDataset(copy_mode="assign")  # the job's release reads it too
        ledger_run = catalog[f"{NAMESPACE}.ledger_run"] = _KeptDataset(copy_mode="assign")
        pipeline = create_pipeline(self.settings.pe.iterations).to_outputs(basis_name, report_name)
        try:
            outputs = SequentialRunner().run(pipeline, catalog)
        except BaseException:
            if ledger_run.exists():  # admitted: give back what the failed fit did not release
                run = ledger_run.load()
                PrivacyLedger(run.path).give_back(run)
            raise
        self._fit = catalog[basis_name].load(), PrivacyReport.from_dict(outputs[report_name].load())
        self._draws = 0
        return self

    def sample(self, rows: int | None = None) -> pd.DataFrame:
        """Draw a synthetic table (post-processing of ``fit``'s releases: no budget spent).

        Args:
            rows: Rows to draw; ``None``: ``release.rows``, whose ``auto`` is the schema's public
                row count, else the DP class count's total.
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


class _KeptDataset(MemoryDataset):
    """An in-memory dataset the runner does not empty after its last reader: ``fit`` keeps the
    release basis that the job's own release also reads."""

    def _release(self) -> None:
        pass
