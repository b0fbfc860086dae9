"""Pipeline shape, T binding, parameter validation, and the PE template on a non-tabular modality."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Pipeline
from kedro.runner import SequentialRunner

from dp_synth.modalities.tabular.settings import TabularSettings
from dp_synth.pe import histogram as dp_hist
from dp_synth.pe import noise
from dp_synth.pe.accounting import GaussianPrivacyPlan, PrivacyConfigError
from dp_synth.pe.ledger import Admission, LedgerRun, PrivacyLedger
from dp_synth.pe.settings import JobSettings, SettingsError
from dp_synth.pipeline_registry import ITERATIONS_VARIABLE, RESUME_VARIABLE, pe_iterations, resume_point
from dp_synth.pipelines.pe import nodes as pe_nodes
from dp_synth.pipelines.pe.pipeline import (
    STAGES,
    ResumePoint,
    parse_resume_point,
    private_evolution_pipeline,
    resume_point_name,
)
from dp_synth.pipelines.tabular.pipeline import create_pipeline
from dp_synth.pipelines.text import pipeline as text_pipeline

PE = {
    "population_size": 40,
    "nearest_neighbours": 1,
    "threshold": 0.0,
    "sampling_iterations": 1,
    "variations_per_survivor": 3,
    "merge_duplicates": False,
    "candidates_per_bin": 1,
}
DP = {"epsilon": 1.0, "delta": "auto", "class_proportions": "dp", "generator_share": 0, "seed": 0}
RELEASE = {"rows": "auto", "vary": False}


def job_settings(
    dp: dict | None = None, pe: dict | None = None, release: dict | None = None, iterations: int = 3
) -> JobSettings:
    """Settings of a toy job: the module's defaults updated with ``dp``, ``pe`` and ``release``."""
    raw = {
        "dp": {**DP, **(dp or {})},
        "pe": {**PE, "iterations": iterations, **(pe or {})},
        "release": {**RELEASE, **(release or {})},
    }
    return JobSettings.parse(raw, "points")


def test_tabular_dag_has_one_namespaced_iteration_per_t():
    pipeline = create_pipeline(3)
    order = [node.name for node in pipeline.nodes]
    # The held-out table is fitted to the schema before the run is admitted, so that a refused
    # run (dp.on_invalid: stop) leaves no run in the ledger.
    assert order.index("prepare.load_reference_data") < order.index("prepare.admit_run")
    names = set(order)
    for t in (1, 2, 3):
        for step in ("embed", "dp_histogram", "resample", "evaluate_iteration"):
            assert f"iterations.iter_{t:03d}.{step}" in names
    assert {"iterations.iter_001.vary", "iterations.iter_002.vary"} <= names
    assert "iterations.iter_003.vary" not in names  # the release draws from the last candidates
    assert not any(name.startswith("iterations.iter_004") for name in names)
    for name in (
        "prepare.admit_run",
        "prepare.embed_private_data",
        "statistics.fit_generator",
        "statistics.generate_initial_population",
        "iterations.collect_iteration_metrics",
        "release.release_synthetic_data",
        "report.report_privacy",
        "report.evaluate",
        "report.plot_reports",
        "report.plot_iterations",
    ):
        assert name in names


@pytest.mark.parametrize(("job", "create_job"), [("tabular", create_pipeline), ("text", text_pipeline.create_pipeline)])
def test_a_job_opens_in_kedro_viz_on_its_stages_each_iteration_in_its_own(job, create_job):
    """Every node is in one of five top-level namespaces, whatever T (kedro-viz draws each as a
    box), each iteration in its own inside ``iterations``; the datasets keep the job's name."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pipeline = create_job(3)
    assert not [warning for warning in caught if "interrupted" in str(warning.message)]  # each stage is contiguous
    assert {node.namespace.partition(".")[0] for node in pipeline.nodes} == set(STAGES)
    assert {node.namespace for node in pipeline.nodes if node.namespace.startswith("iterations.")} == {
        "iterations.iter_001",
        "iterations.iter_002",
        "iterations.iter_003",
    }
    datasets = {name for node in pipeline.nodes for name in (*node.inputs, *node.outputs)}
    assert {name for name in datasets if not name.startswith(f"{job}.")} == {f"params:{job}"}


def test_dag_inputs_and_outputs():
    pipeline = create_pipeline(2)
    assert pipeline.inputs() == {
        "tabular.schema",
        "tabular.private_data",
        "tabular.reference_data",
        "params:tabular",
    }
    assert pipeline.outputs() == {
        f"tabular.{name}"
        for name in (
            "evaluation_report",
            "iterations_plot",
            "marginals_plot",
            "associations_plot",
            "privacy_report",
        )
    }
    (plot,) = [node for node in pipeline.nodes if node.name == "report.plot_iterations"]
    assert "tabular.iter_002.histogram" in plot.inputs  # the last histogram, drawn when it is the only one
    assert "tabular.synthetic_data" in pipeline.all_outputs() and "tabular.release_basis" in pipeline.all_outputs()
    assert "tabular.iter_001.population" in pipeline.all_outputs()
    assert "tabular.iter_002.survivors" in pipeline.all_outputs()


def test_calibration_pays_for_exactly_the_iterations_in_the_dag():
    for iterations in (1, 4, 30):
        (settings,) = [n for n in create_pipeline(iterations).nodes if n.name == "prepare.parse_settings"]
        assert settings.func.keywords["iterations"] == iterations
        assert sum(n.name.endswith(".dp_histogram") for n in create_pipeline(iterations).nodes) == iterations


def test_t_comes_from_the_environment_else_the_parameter_files_else_the_code(monkeypatch, tmp_path):
    from dp_synth.pipeline_registry import _configured_parameters

    monkeypatch.delenv(ITERATIONS_VARIABLE, raising=False)
    monkeypatch.chdir(tmp_path)  # no conf/ here: the defaults in code
    _configured_parameters.cache_clear()
    assert [pe_iterations(job) for job in ("tabular", "text", "image")] == [1, 2, 10]
    (tmp_path / "conf/base").mkdir(parents=True)
    (tmp_path / "conf/local").mkdir()
    (tmp_path / "conf/base/parameters_text.yml").write_text("text:\n  pe:\n    iterations: 4\n")
    _configured_parameters.cache_clear()
    assert pe_iterations("text") == 4
    monkeypatch.setenv(RESUME_VARIABLE, "iter_002.survivors")
    assert resume_point(pe_iterations("text")).dataset == "iter_002.survivors"
    monkeypatch.setenv(ITERATIONS_VARIABLE, "3")
    assert pe_iterations("text") == 3
    _configured_parameters.cache_clear()


def test_params_cannot_change_t_but_the_environment_can():
    parameters = {"pe": {"iterations": 5}}
    with pytest.raises(SettingsError, match="built with T=2"):
        pe_nodes.parse_settings(
            parameters, model=JobSettings, job="points", iterations=2, iterations_from_environment=False
        )
    settings = pe_nodes.parse_settings(
        parameters, model=JobSettings, job="points", iterations=2, iterations_from_environment=True
    )
    assert settings.pe.iterations == 2


@pytest.mark.parametrize("value", ["0", "-2", "ten"])
def test_bad_iteration_count_is_rejected(monkeypatch, value):
    monkeypatch.setenv(ITERATIONS_VARIABLE, value)
    with pytest.raises(ValueError, match=ITERATIONS_VARIABLE):
        pe_iterations("tabular")


@dataclass(frozen=True)
class PointModality:
    """A one-dimensional toy modality: candidates are points in [0, 1]."""

    label_column: str = "label"
    classes: tuple[str, ...] = ("left", "right")
    public_row_count: int | None = 400
    public_class_proportions: dict | None = None
    privacy_unit: str | None = None

    def random_population(self, class_sizes, rng):
        size = sum(class_sizes.values())
        return pd.DataFrame(
            {"x": rng.uniform(size=size), "label": np.repeat(list(class_sizes), list(class_sizes.values()))}
        )

    def vary(self, survivors, iteration, iterations, rng):
        moved = np.clip(survivors["x"] + rng.normal(0, 0.1 / iteration, size=len(survivors)), 0, 1)
        return survivors.assign(x=moved).reset_index(drop=True)

    def embed(self, population):
        return population[["x"]].to_numpy(dtype=np.float32)

    def summarise_reference(self, reference):
        return reference.groupby("label")["x"].mean()

    def quality(self, population, reference_summary):
        means = population.groupby("label")["x"].mean()
        return {"mean_gap": float((means - reference_summary).abs().max())}


def open_ledger_run(ledger: Path, plan: GaussianPrivacyPlan) -> LedgerRun:
    """A run admitted in the privacy ledger at ``ledger``, as ``pe_nodes.admit_run`` admits one."""
    return PrivacyLedger(ledger).open_run(Admission("points", plan, "points"), fingerprint="points")


def points_catalog(ledger: Path, iterations: int = 4) -> DataCatalog:
    """The toy modality's inputs of the PE template, under the ``points`` namespace, with a run
    admitted in the privacy ledger at ``ledger``."""
    rng = np.random.default_rng(0)
    private = pd.DataFrame(
        {"x": np.r_[rng.normal(0.2, 0.02, 200), rng.normal(0.8, 0.02, 200)], "label": ["left"] * 200 + ["right"] * 200}
    )
    modality = PointModality()
    settings = job_settings({"epsilon": 20.0}, release={"rows": 100}, iterations=iterations)
    catalog = DataCatalog()
    for name, value in {
        "public_modality": modality,
        "private_table": private,
        "private_embeddings": pe_nodes.embed_private_data(modality, private, settings),
        "reference_summary": modality.summarise_reference(private),
    }.items():
        catalog[f"points.{name}"] = value
    catalog["points.settings"] = settings
    plan = pe_nodes.calibrate_privacy(modality, settings)
    catalog["points.privacy_plan"] = plan  # as the admission saves it
    catalog["points.ledger_run"] = open_ledger_run(ledger, plan)
    return catalog


def test_template_runs_any_modality_and_moves_towards_private_data(tmp_path):
    """The PE loop, unchanged, under another namespace with a non-tabular modality."""
    pipeline = Pipeline(private_evolution_pipeline(4), namespace="points")
    outputs = SequentialRunner().run(pipeline, points_catalog(tmp_path / "ledger.db"))
    synthetic = outputs["points.synthetic_data"].load()
    assert len(synthetic) == 100
    means = synthetic.groupby("label")["x"].mean()
    assert means["left"] == pytest.approx(0.2, abs=0.05)
    assert means["right"] == pytest.approx(0.8, abs=0.05)
    iteration_metrics = outputs["points.iteration_metrics"].load()
    assert iteration_metrics["iteration"].tolist() == [1, 2, 3, 4]
    assert iteration_metrics["epsilon_spent"].is_monotonic_increasing
    assert iteration_metrics["epsilon_spent"].iloc[-1] == pytest.approx(20.0)


def test_population_schedule_sizes():
    modality = PointModality()
    settings = job_settings()
    plan = pe_nodes.calibrate_privacy(modality, settings)
    survivors = modality.random_population({"left": 30, "right": 10}, np.random.default_rng(0))
    assert len(pe_nodes.vary(modality, survivors, plan, settings, iteration=1)) == 40  # sampling: replace
    grown = pe_nodes.vary(modality, survivors, plan, settings, iteration=2)  # after: keep + 3 variations
    assert len(grown) == 160
    assert grown.iloc[:40].equals(survivors.reset_index(drop=True))
    assert grown["label"].value_counts().to_dict() == {"left": 120, "right": 40}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"dp": {"epsilon": 0}}, "points.dp.epsilon: Input should be greater than 0"),
        ({"dp": {"delta": 1.0}}, "points.dp.delta: Input should be less than 1 or Input should be 'auto'"),
        ({"dp": {"class_proportions": "guess"}}, "points.dp.class_proportions: Input should be 'dp' or 'public'"),
        ({"pe": {"nearest_neighbors": 2}}, "unknown setting 'nearest_neighbors': did you mean 'nearest_neighbours'"),
        ({"pe": {"candidates_per_bin": 0}}, "points.pe.candidates_per_bin: Input should be greater than or equal to 1"),
        (
            {"release": {"vary": "often"}},
            "points.release.vary: Input should be a valid boolean, unable to interpret input or Input should be 'repeats'",
        ),
        ({"dp": {"generator_share": 1.0}}, "points.dp.generator_share: Input should be less than 1"),
        ({"evolution": {}}, "unknown setting 'evolution'"),
    ],
)
def test_bad_settings_are_named_with_what_is_expected(raw, message):
    with pytest.raises(SettingsError, match=re.escape(message)):
        JobSettings.parse(raw, "points")


@pytest.mark.parametrize(
    ("dp", "pe", "release", "message"),
    [
        ({"class_proportions": "public"}, {}, {}, "declares no class_proportions"),
        ({}, {"population_size": 1}, {}, "smaller than the number of classes"),
        ({}, {}, {"rows": 1}, "release.rows must be 'auto' or an integer >= the number of classes"),
        ({"generator_share": 0.2}, {}, {}, "this generator uses no DP statistics"),
    ],
)
def test_settings_that_contradict_the_schema_stop_the_run_before_any_private_data_is_used(dp, pe, release, message):
    with pytest.raises(ValueError, match=message):
        pe_nodes.calibrate_privacy(PointModality(), job_settings(dp, pe, release))


def test_tabular_defaults_are_valid_settings_and_the_committed_file_shows_few():
    import yaml

    from tests.conftest import PROJECT_ROOT

    committed = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_tabular.yml").read_text())["tabular"]
    settings = TabularSettings.parse(committed, "tabular")
    assert settings.pe.population_size == "auto" and settings.generator.structure == "auto"
    assert sum(len(section) for section in committed.values()) <= 7


def test_a_histogram_over_bins_shares_each_bin_count_among_similar_candidates(tmp_path):
    modality = PointModality()
    rng = np.random.default_rng(2)
    candidates = pd.DataFrame(
        {"x": np.r_[rng.uniform(0.0, 0.1, 50), rng.uniform(0.9, 1.0, 50)], "label": ["left"] * 100}
    )
    private = pd.DataFrame({"x": np.full(30, 0.05), "label": ["left"] * 30})  # every record near the first blob
    settings = job_settings(pe={"candidates_per_bin": 50})
    embeddings = pe_nodes.embed_private_data(modality, private, settings)
    plan = pe_nodes.calibrate_privacy(modality, job_settings({"epsilon": 1e6}, iterations=1))  # almost no noise
    histogram = pe_nodes.dp_histogram(
        modality,
        candidates,
        modality.embed(candidates),
        embeddings,
        plan,
        settings,
        open_ledger_run(tmp_path / "ledger.db", plan),
        iteration=1,
    )
    assert histogram.noisy[:50] == pytest.approx(np.full(50, 30 / 50), abs=1e-3)  # the blob's 30 votes, shared
    assert histogram.noisy[50:] == pytest.approx(np.zeros(50), abs=1e-3)


def test_an_unseeded_run_draws_the_class_count_and_the_histograms_from_opendp(tmp_path, monkeypatch):
    """The secure sampler (``noise.secure_gaussian``) draws every release of an unseeded run."""
    calls, real = [], noise.secure_gaussian

    def spy(values, sigma, sensitivity):
        calls.append((len(values), sigma, sensitivity))
        return real(values, sigma, sensitivity)

    monkeypatch.setattr(noise, "secure_gaussian", spy)
    modality, settings = PointModality(), job_settings({"seed": None}, iterations=1)
    plan = pe_nodes.calibrate_privacy(modality, settings)
    run = open_ledger_run(tmp_path / "ledger.db", plan)
    private = pd.DataFrame({"x": [0.1, 0.2, 0.8], "label": ["left", "left", "right"]})
    weights = pe_nodes.measure_class_distribution(modality, private, plan, run)
    candidates = pd.DataFrame({"x": [0.1, 0.5, 0.9], "label": ["left", "left", "right"]})
    embeddings = pe_nodes.embed_private_data(modality, private, settings)
    pe_nodes.dp_histogram(
        modality, candidates, modality.embed(candidates), embeddings, plan, settings, run, iteration=1
    )
    assert set(weights) == {"left", "right"}
    assert calls == [(2, plan.sigma, 1.0), (3, plan.sigma, 1.0)]


def test_auto_delta_needs_a_public_row_count():
    with pytest.raises(PrivacyConfigError, match="public_row_count"):
        pe_nodes.calibrate_privacy(PointModality(public_row_count=None), job_settings())
    plan = pe_nodes.calibrate_privacy(PointModality(), job_settings({"delta": 1e-4}))
    assert plan.delta == 1e-4


def test_public_class_proportions_cost_no_release(tmp_path):
    modality = PointModality(public_class_proportions={"left": 3, "right": 1})
    settings = job_settings({"class_proportions": "public"})
    plan = pe_nodes.calibrate_privacy(modality, settings)
    assert plan.releases == 3
    run = open_ledger_run(tmp_path / "ledger.db", plan)
    weights = pe_nodes.measure_class_distribution(modality, pd.DataFrame({"label": ["left"] * 5}), plan, run)
    assert pe_nodes.allocate_population(weights, settings) == {"left": 30, "right": 10}
    assert PrivacyLedger(run.path).entries(run.run_id) == []


def test_release_size_is_free_of_private_counts_and_follows_the_histogram():
    modality = PointModality()
    plan = pe_nodes.calibrate_privacy(modality, job_settings())
    candidates = pd.DataFrame({"x": [0.1, 0.2, 0.3, 0.9], "label": ["left", "left", "right", "right"]})
    histogram = dp_hist.NoisyHistogram(
        noisy=np.array([3.0, -1.0, 1.0, 3.0]), thresholded=np.array([3.0, 0.0, 1.0, 3.0])
    )
    weights = {"left": 310.4, "right": 99.2}
    basis = pe_nodes.prepare_release(modality, candidates, histogram, weights, plan)
    assert basis.default_rows() == 400  # the public row count
    no_public_count = pe_nodes.prepare_release(
        PointModality(public_row_count=None), candidates, histogram, weights, plan
    )
    assert no_public_count.default_rows() == 410  # DP estimate
    released = pe_nodes.release_synthetic_data(basis, job_settings(release={"rows": 2000}))
    assert len(released) == 2000
    counts = released.groupby("label")["x"].value_counts()
    assert set(released.loc[released["label"] == "left", "x"]) == {0.1}  # zero weight: never drawn
    assert counts["right"][0.9] / counts["right"].sum() == pytest.approx(0.75, abs=0.05)
    assert counts["left"].sum() == pytest.approx(2000 * 310.4 / 409.6, abs=2)


SAVED_BY_A_RUN = ("privacy_plan", "generator_statistics", "class_weights", "class_sizes")


class SavedDataset(MemoryDataset):
    """Stands in for a persisted catalog dataset: the runner's release keeps its data."""

    def _release(self) -> None:
        pass


@pytest.mark.parametrize(
    "resume_from",
    [
        "class_sizes",
        "initial_population",
        "iter_001.population",
        "iter_002.histogram",
        "iter_002.survivors",
        "iter_003.histogram",
        "iter_003.survivors",
    ],
)
def test_a_resumed_run_releases_only_the_missing_histograms_and_matches_an_uninterrupted_one(resume_from, tmp_path):
    """With a seed, resuming from any saved dataset gives the uninterrupted run's release."""
    point = parse_resume_point(resume_from, 3)
    full = points_catalog(tmp_path / "ledger.db", 3)
    full_pipeline = Pipeline(private_evolution_pipeline(3), namespace="points")
    for name in full_pipeline.all_outputs():  # every dataset a run writes stays readable
        full[name] = SavedDataset()
    SequentialRunner().run(full_pipeline, full)
    resumed_pipeline = Pipeline(private_evolution_pipeline(3, point), namespace="points")
    histograms = sorted(node.name for node in resumed_pipeline.nodes if node.name.endswith("dp_histogram"))
    assert histograms == [f"points.iterations.iter_{t:03d}.dp_histogram" for t in range(point.iteration + 1, 4)]
    released = point.stage in ("histogram", "survivors")  # iteration t's histogram is saved
    last = released and point.iteration == 3  # only the post-processing of the last histogram runs again
    stages = {node.name.rsplit(".", 1)[-1] for node in resumed_pipeline.nodes}
    assert not {"calibrate_privacy", "dp_class_counts", "dp_generator_statistics"} & stages  # releases: loaded
    assert ("generate_initial_population" in stages) == (resume_from == "class_sizes")
    assert ("resample" in stages) == (not last or point.stage == "histogram")
    saved = {
        f"points.{name}"
        for name in (*SAVED_BY_A_RUN, point.dataset, *(["iter_003.histogram", "iter_002.population"] if last else []))
    }
    assert (
        saved - ({"points.class_sizes"} if last and point.stage == "survivors" else set()) <= resumed_pipeline.inputs()
    )

    resumed = points_catalog(tmp_path / "ledger.db", 3)  # a new run: the ledger never records a histogram twice
    for name in resumed_pipeline.inputs() & full_pipeline.all_outputs():
        resumed[name] = full[name].load()
    outputs = SequentialRunner().run(resumed_pipeline, resumed)
    assert outputs["points.synthetic_data"].load().equals(full["points.synthetic_data"].load())
    first_metrics = point.iteration + (not (point.stage == "histogram" or last))
    assert outputs["points.iteration_metrics"].load()["iteration"].tolist() == list(range(first_metrics, 4))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("iter_3.population", "cannot resume from"),
        ("iter_003.population", "T=3"),
        ("iter_000.survivors", "T=3"),
        ("iter_004.survivors", "T=3"),
        ("histogram", "name a saved dataset"),
        ("privacy_plan", "'class_sizes'"),
    ],
)
def test_bad_resume_points_are_refused(text, message):
    with pytest.raises(ValueError, match=message):
        parse_resume_point(text, 3)
    assert parse_resume_point(" iter_002.survivors ", 3) == ResumePoint(2, "survivors")
    assert parse_resume_point("class_sizes", 3) == ResumePoint(0, "setup")


def test_saved_datasets_name_their_resume_point():
    assert resume_point_name("text.iter_002.survivors") == "iter_002.survivors"
    assert resume_point_name("tabular.class_sizes") == resume_point_name("class_sizes") == "class_sizes"
    assert resume_point_name("image.initial_population") == "initial_population"
    assert resume_point_name("text.iter_002.metrics") is None and resume_point_name("text.privacy_plan") is None


def test_a_saved_plan_for_another_t_is_refused():
    plan = pe_nodes.calibrate_privacy(PointModality(), job_settings())
    with pytest.raises(PrivacyConfigError, match="T=3 iterations but this DAG has T=5"):
        pe_nodes.check_resumed_plan(plan, job_settings(iterations=5))


def test_text_dag_reuses_the_template_and_reads_only_its_declared_inputs():
    pipeline = text_pipeline.create_pipeline(2)
    assert pipeline.inputs() == {
        "text.schema",
        "text.private_data",
        "text.reference_data",
        "text.llm_api_key",
        "params:text",
    }
    template_stages = {node.name.split(".", 2)[-1] for node in create_pipeline(2).nodes if ".iter_" in node.name}
    assert {node.name.split(".", 2)[-1] for node in pipeline.nodes if ".iter_" in node.name} == template_stages
    assert pipeline.outputs() == {
        "text.evaluation_report",
        "text.synthetic_samples",
        "text.iterations_plot",
        "text.privacy_report",
    }


def test_a_resumed_tabular_run_reuses_the_saved_generator_statistics(adult_schema_json, tmp_path):
    """The tabular generator's DP marginals are a saved release: a run that stopped after its
    first iteration resumes (the ledger admits it: it goes forward) without measuring them again
    and, with a seed, releases what an uninterrupted run releases."""
    import yaml

    from tests.conftest import ADULT_DIR, PROJECT_ROOT

    settings = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_tabular.yml").read_text())["tabular"]
    settings["dp"]["seed"], settings["pe"]["population_size"], settings["release"]["rows"] = 5, 200, 300
    settings["pe"]["iterations"] = 2
    settings["dp"]["ledger"] = str(tmp_path / "ledger.db")

    def catalog(saved: dict | None = None) -> DataCatalog:
        entries = DataCatalog()
        entries["tabular.schema"] = adult_schema_json
        entries["tabular.private_data"] = pd.read_csv(ADULT_DIR / "adult_train.csv").head(3000)
        entries["tabular.reference_data"] = pd.read_csv(ADULT_DIR / "adult_test.csv").head(500)
        entries["params:tabular"] = settings
        for name, value in (saved or {}).items():
            entries[name] = value
        return entries

    kept = (*SAVED_BY_A_RUN, "ledger_run", "iter_001.survivors")
    stopped = catalog({f"tabular.{name}": SavedDataset() for name in kept})
    SequentialRunner().run(create_pipeline(2).to_outputs("tabular.iter_001.survivors"), stopped)
    assert stopped["tabular.generator_statistics"].load()  # the DP statistics were released and kept
    full = catalog({"tabular.synthetic_data": SavedDataset()})
    SequentialRunner().run(create_pipeline(2).to_outputs("tabular.synthetic_data"), full)

    resumed_pipeline = create_pipeline(2, parse_resume_point("iter_001.survivors", 2)).to_outputs(
        "tabular.synthetic_data"
    )
    assert not any(
        node.name.endswith(("dp_generator_statistics", "dp_class_counts")) for node in resumed_pipeline.nodes
    )
    resumed = catalog({f"tabular.{name}": stopped[f"tabular.{name}"].load() for name in kept})
    outputs = SequentialRunner().run(resumed_pipeline, resumed)
    assert outputs["tabular.synthetic_data"].load().equals(full["tabular.synthetic_data"].load())
