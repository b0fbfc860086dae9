"""The Private Evolution loop as Kedro pipelines, written once for every modality.

``private_evolution_pipeline(T)`` expects these datasets from the modality's own pipeline:

- ``public_modality``: an object implementing ``dp_synth.pe.interfaces.Modality``, built from
  public knowledge only (the loop uses ``modality``: the same with its DP statistics, if any);
- ``private_table`` and ``private_embeddings`` (with their labels): in memory only, never saved,
  held where the engine holds the private rows (``pe.engine``);
- ``reference_summary``: what the modality's quality diagnostic compares against;
- ``privacy_plan`` and ``ledger_run``: the plan and the run, once the privacy ledger admits it;

and the parameters ``params:dp``, ``params:pe`` and ``params:release``. It produces
``calibrated_plan`` (the plan the admission checks, then saves as ``privacy_plan``),
``generator_statistics``, ``class_weights``, ``class_sizes`` (saved: a resumed
run loads them), ``initial_population``, for each iteration ``iter_NNN.histogram``,
``iter_NNN.survivors``, ``iter_NNN.metrics`` and (but the last) ``iter_NNN.population``, then
``synthetic_data`` and ``iteration_metrics`` (one row per iteration run). ``job_pipeline`` puts
the job's name before every dataset name (``tabular.iter_001.histogram``).

Every node belongs to one stage, a namespace that groups nodes without renaming their datasets,
so that kedro-viz draws a job as five boxes, whatever its T: ``prepare`` (settings, the
modality's inputs, the privacy plan and the run's admission), ``statistics`` (the DP generator
statistics and class counts, and the initial population drawn from them), ``iterations`` (one
namespace per iteration, ``iterations.iter_001``, ..., whose datasets are ``iter_001.*``, and
the table of their metrics), ``release`` (the synthetic data) and ``report`` (the privacy
report, which ends the run in the ledger, and the diagnostics). Node names are ``<stage>.<node>`` (``iterations.iter_001.embed``):
the stage is also the job's top-level namespace.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial, update_wrapper
from typing import Any

from kedro.pipeline import Node, Pipeline

from dp_synth.pe.settings import JobSettings
from dp_synth.pipelines.pe import nodes as pe_nodes

SHARED_INPUTS = {
    "modality",
    "private_embeddings",
    "privacy_plan",
    "ledger_run",
    "class_weights",
    "class_sizes",
    "reference_summary",
    "settings",
}


def bind(function: Callable[..., Any], **bound: Any) -> Callable[..., Any]:
    """``partial`` that keeps the function's name and docstring (Kedro and kedro-viz show them)."""
    return update_wrapper(partial(function, **bound), function)


@contextmanager
def _reading_sibling_namespaces() -> Iterator[None]:
    """Silence Kedro's warning about dotted dataset names while building nodes that read an
    iteration's outputs (``iter_001.population``, ``iter_001.metrics``): that is intended."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="One or more dataset names contain '.'", category=UserWarning)
        yield


STAGES = ("prepare", "statistics", "iterations", "release", "report")
"""The stages of a job, in the order they run: its top-level namespaces."""
PREPARE, STATISTICS, ITERATIONS, RELEASE, REPORT = STAGES


def stage(name: str, nodes: list[Node | Pipeline]) -> Pipeline:
    """``nodes`` grouped under the stage ``name``: their names gain the prefix ``name.``, the
    names of their datasets do not."""
    with _reading_sibling_namespaces():
        return Pipeline(nodes, namespace=name, prefix_datasets_with_namespace=False)


def iteration_namespace(iteration: int) -> str:
    """Namespace of iteration ``iteration``: ``iter_001``, ``iter_002``, ..."""
    return f"iter_{iteration:03d}"


@dataclass(frozen=True)
class ResumePoint:
    """Where a resumed run starts: after the releases made before the loop, a saved population,
    a saved histogram or a saved set of survivors. The privacy ledger lets a run resume only from
    its last release (``pe_nodes.admit_resumed_run``).

    Attributes:
        iteration: t of the saved dataset (0 before the loop).
        stage: ``"setup"`` (the plan, generator statistics and class sizes are saved: draw the
            initial population), ``"population"`` (iteration t is finished: start at t + 1),
            ``"histogram"`` (iteration t released its histogram: select its survivors, then go
            on) or ``"survivors"`` (they are selected too: vary them, then go on).
    """

    iteration: int
    stage: str

    @property
    def dataset(self) -> str:
        """The saved dataset the run starts from, e.g. ``iter_003.survivors``."""
        if self.stage == "setup":
            return "class_sizes"
        if self.iteration == 0:
            return "initial_population"
        return f"{iteration_namespace(self.iteration)}.{self.stage}"


_RESUME_POINT = re.compile(r"^(?:(class_sizes)|(initial_population)|iter_(\d{3})\.(population|histogram|survivors))$")


def job_of(dataset_name: str) -> str:
    """The job whose dataset this is (``job_pipeline`` names them ``<job>.*``): ``tabular.ledger_run``
    -> ``tabular``."""
    return dataset_name.partition(".")[0]


def resume_point_name(dataset_name: str) -> str | None:
    """The resume point that a saved dataset provides, with or without its job's namespace
    (``text.iter_002.survivors`` -> ``iter_002.survivors``), or ``None`` if there is none."""
    for name in (dataset_name, dataset_name.partition(".")[2]):
        if _RESUME_POINT.match(name):
            return name
    return None


def parse_resume_point(text: str, iterations: int) -> ResumePoint:
    """Parse ``class_sizes``, ``initial_population`` or ``iter_NNN.{population,histogram,survivors}``.

    Raises:
        ValueError: for another text, or a point this DAG of ``iterations`` iterations cannot
            start from (the last iteration has no population; its histogram and survivors lead
            to the release).
    """
    match = _RESUME_POINT.match(text.strip())
    if match is None:
        raise ValueError(
            f"cannot resume from {text!r}: name a saved dataset, 'class_sizes', 'initial_population', "
            "'iter_NNN.population', 'iter_NNN.histogram' or 'iter_NNN.survivors' (the failed run's log names "
            "the right one)"
        )
    if match.group(1) or match.group(2):
        point = ResumePoint(0, "setup" if match.group(1) else "population")
    else:
        point = ResumePoint(int(match.group(3)), match.group(4))
    released = point.stage in ("histogram", "survivors")  # saved once iteration t released its histogram
    first, last = (1, iterations) if released else (0, iterations - 1)
    if not first <= point.iteration <= last:
        raise ValueError(f"cannot resume from {text!r} in a run of T={iterations} iterations")
    return point


def _vary_node(iteration: int) -> Node:
    return Node(
        bind(pe_nodes.vary, iteration=iteration),
        ["modality", "survivors", "privacy_plan", "settings"],
        "population",
        name="vary",
    )


def _namespaced(nodes: list[Node], iteration: int) -> Pipeline:
    """Wrap one iteration's nodes in its namespace: its ``candidates`` are the population it
    votes on; shared inputs keep their names."""
    used = {name for node in nodes for name in node.inputs}
    candidates = {"candidates": _previous_population(iteration)} if "candidates" in used else {}
    with _reading_sibling_namespaces():
        return Pipeline(
            nodes,
            namespace=iteration_namespace(iteration),
            inputs={**candidates, **{name: name for name in SHARED_INPUTS & used}},
        )


def _previous_population(iteration: int) -> str:
    """The population iteration ``iteration`` votes on."""
    return "initial_population" if iteration == 1 else f"{iteration_namespace(iteration - 1)}.population"


def _after_histogram(iteration: int, final: bool) -> list[Node]:
    """What follows an iteration's released histogram: its metrics, then the variation of its
    survivors, but in the last iteration (the release draws from its candidates instead)."""
    metrics = Node(
        bind(pe_nodes.summarise_iteration, iteration=iteration),
        ["modality", "survivors", "histogram", "reference_summary", "privacy_plan"],
        "metrics",
        name="evaluate_iteration",
    )
    return [metrics] if final else [metrics, _vary_node(iteration)]


def _release_nodes(iterations: int) -> list[Node]:
    """The release: ``synthetic_data`` drawn from the last iteration's candidates by its
    histogram."""
    with _reading_sibling_namespaces():
        return [
            Node(
                pe_nodes.prepare_release,
                [
                    "modality",
                    _previous_population(iterations),
                    f"{iteration_namespace(iterations)}.histogram",
                    "class_weights",
                    "privacy_plan",
                ],
                "release_basis",
                name="prepare_release",
            ),
            Node(
                pe_nodes.release_synthetic_data,
                ["release_basis", "settings"],
                "synthetic_data",
                name="release_synthetic_data",
            ),
        ]


def _resample_node(iteration: int) -> Node:
    return Node(
        bind(pe_nodes.resample, iteration=iteration),
        ["modality", "candidates", "histogram", "class_sizes", "privacy_plan", "settings"],
        "survivors",
        name="resample",
    )


def iteration_template(iteration: int, *, final: bool) -> Pipeline:
    """One PE iteration: embed -> DP histogram -> resample -> vary, plus its metrics.

    Args:
        iteration: t, from 1.
        final: The last iteration does not vary its survivors: the release (``_release_nodes``)
            draws from its candidates by its histogram.
    """
    nodes = [
        Node(pe_nodes.embed_population, ["modality", "candidates"], "candidate_embeddings", name="embed"),
        Node(
            bind(pe_nodes.dp_histogram, iteration=iteration),
            [
                "modality",
                "candidates",
                "candidate_embeddings",
                "private_embeddings",
                "privacy_plan",
                "settings",
                "ledger_run",
            ],
            "histogram",
            name="dp_histogram",
        ),
        _resample_node(iteration),
        *_after_histogram(iteration, final),
    ]
    return _namespaced(nodes, iteration)


def _initial_population_node() -> Node:
    return Node(
        pe_nodes.generate_initial_population,
        ["modality", "class_sizes", "privacy_plan"],
        "initial_population",
        name="generate_initial_population",
    )


def _measured_setup() -> Pipeline:
    """A fresh run's setup: calibrate (a step of the preparation: the run's admission checks the
    plan), release the generator statistics and the class counts, draw the initial population."""
    calibrate = Node(
        pe_nodes.calibrate_privacy,
        ["public_modality", "settings"],
        "calibrated_plan",
        name="calibrate_privacy",
    )
    statistics = [
        Node(
            pe_nodes.measure_generator_statistics,
            ["public_modality", "private_table", "privacy_plan", "ledger_run"],
            "generator_statistics",
            name="dp_generator_statistics",
        ),
        Node(
            pe_nodes.measure_class_distribution,
            ["public_modality", "private_table", "privacy_plan", "ledger_run"],
            "class_weights",
            name="dp_class_counts",
        ),
        Node(pe_nodes.allocate_population, ["class_weights", "settings"], "class_sizes", name="allocate_population"),
        _initial_population_node(),
    ]
    return Pipeline([stage(PREPARE, [calibrate]), stage(STATISTICS, statistics)])


def _settings_node(
    job: str, model: type[JobSettings], iterations: int, iterations_from_environment: bool, output: str
) -> Node:
    """The job's first node: its parameters validated into typed settings (see
    ``pe_nodes.parse_settings``), with T bound from the DAG."""
    return Node(
        bind(
            pe_nodes.parse_settings,
            model=model,
            job=job,
            iterations=iterations,
            iterations_from_environment=iterations_from_environment,
        ),
        f"params:{job}",
        output,
        name="parse_settings",
    )


def preparation_pipeline(
    build_modality: Callable[..., Any],
    load_reference_data: Callable[..., Any],
    *,
    modality_inputs: tuple[str, ...] = (),
    reference_inputs: tuple[str, ...] = (),
) -> Pipeline:
    """The modality's inputs of the loop: its public object, the private rows embedded (in
    memory only) and the held-out data's summary. The private rows themselves come from the
    privacy ledger's admission of the run (``private_table``), which checks them first.

    Args:
        build_modality: ``(schema, settings, *modality_inputs) -> public_modality``, from public
            knowledge only.
        load_reference_data: ``(reference_data, public_modality, *reference_inputs) ->
            reference_table``: the held-out file fitted to the schema. It needs only public
            inputs, so the runner's order puts it before the admission, which waits for the
            calibrated plan.
        modality_inputs: Extra inputs of ``build_modality`` (e.g. an API key).
        reference_inputs: Extra inputs of ``load_reference_data`` (e.g. ``settings``).
    """
    return Pipeline(
        [
            Node(build_modality, ["schema", "settings", *modality_inputs], "public_modality", name="build_modality"),
            Node(
                pe_nodes.embed_private_data,
                ["public_modality", "private_table", "settings"],
                "private_embeddings",
                name="embed_private_data",
            ),
            Node(
                load_reference_data,
                ["reference_data", "public_modality", *reference_inputs],
                "reference_table",
                name="load_reference_data",
            ),
            Node(
                pe_nodes.summarise_reference,
                ["public_modality", "reference_table"],
                "reference_summary",
                name="summarise_reference",
            ),
        ]
    )


def _resumed_setup(resume: ResumePoint, iterations: int) -> tuple[Pipeline, int, int]:
    """What a resumed run does before its first new iteration, that iteration, and the first
    iteration whose metrics it computes. Everything it starts from is a saved release (or
    public): it releases nothing."""
    t = resume.iteration
    if resume.stage == "setup":
        return stage(STATISTICS, [_initial_population_node()]), 1, 1
    if resume.stage == "survivors" and t < iterations:
        return stage(ITERATIONS, [_namespaced([_vary_node(t)], t)]), t + 1, t + 1
    if resume.stage == "population":
        return Pipeline([]), t + 1, t + 1
    # The histogram of t is saved: its survivors (if not saved), metrics and variation (but in the
    # last iteration) are post-processing, as the release is.
    after = _after_histogram(t, final=t == iterations)
    if resume.stage == "histogram":
        after = [_resample_node(t), *after]
    return stage(ITERATIONS, [_namespaced(after, t)]), t + 1, t


def private_evolution_pipeline(iterations: int, resume: ResumePoint | None = None) -> Pipeline:
    """Calibration, class sizes, initial population, T iterations and their metrics, and the
    release, each node in its stage.

    Args:
        iterations: T. It is bound into the calibration node, so the budget pays for exactly
            the histograms this DAG releases.
        resume: Start after this saved dataset of a failed run instead of from scratch. The
            privacy plan, generator statistics, class weights and sizes are then loaded (they
            are saved releases, never measured again) and only the histograms not yet
            released are released, so the run as a whole still spends exactly its budget.
    """
    if not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"the number of iterations T must be an integer >= 1, got {iterations!r}")
    generator = Node(
        pe_nodes.apply_generator_statistics,
        ["public_modality", "generator_statistics"],
        "modality",
        name="fit_generator",
    )
    setup, first, measured_from = _measured_setup(), 1, 1
    if resume is not None:
        setup, first, measured_from = _resumed_setup(resume, iterations)
    loop = [iteration_template(t, final=t == iterations) for t in range(first, iterations + 1)]
    with _reading_sibling_namespaces():
        collect = Node(
            pe_nodes.collect_iteration_metrics,
            [f"{iteration_namespace(t)}.metrics" for t in range(measured_from, iterations + 1)],
            "iteration_metrics",
            name="collect_iteration_metrics",
        )
    return Pipeline(
        [
            setup,
            stage(STATISTICS, [generator]),
            stage(ITERATIONS, [*loop, collect]),
            stage(RELEASE, _release_nodes(iterations)),
        ]
    )


def job_pipeline(
    job: str,
    model: type[JobSettings],
    prepare: Pipeline,
    load_private_data: pe_nodes.LoadPrivateData,
    evaluate: Pipeline,
    iterations: int,
    resume: ResumePoint | None,
    iterations_from_environment: bool,
    plan_settings: Callable[..., Any] | None = None,
) -> Pipeline:
    """A whole job, its datasets named ``<job>.*``, in stages: its settings, its preparation
    (``preparation_pipeline``) and the run's admission in the privacy ledger (``prepare``), the PE
    loop and the release (``private_evolution_pipeline``), and the reports: its privacy report,
    the figure of its iterations (``iterations_plot``) and its evaluation (``report``).

    Args:
        job: The job's name, before its datasets' (``tabular``, ``text``, ``image``).
        model: The job's settings model.
        prepare: The modality's inputs of the loop.
        load_private_data: ``(private_data, public_modality, on_invalid) -> private_table``: fits
            the private rows to the public schema (``pe_nodes.load_private_rows``); the admission
            runs it before the run is opened.
        evaluate: The reports on the release.
        iterations: T.
        resume: Where to resume a failed run, or ``None`` for a fresh run.
        iterations_from_environment: T came from ``DP_SYNTH_ITERATIONS`` (it then wins over
            ``pe.iterations``).
        plan_settings: ``(requested settings, schema) -> (settings, plan)``: a plan that resolves
            settings from public quantities before anything else runs; ``None``: none.
    """
    if plan_settings is None:
        settings = Pipeline([_settings_node(job, model, iterations, iterations_from_environment, "settings")])
    else:
        settings = Pipeline(
            [
                _settings_node(job, model, iterations, iterations_from_environment, "requested_settings"),
                Node(plan_settings, ["requested_settings", "schema"], ["settings", "generator_plan"], name="plan"),
            ]
        )
    stages = Pipeline(
        [
            stage(PREPARE, [settings, prepare, _admission_node(job, resume, load_private_data)]),
            private_evolution_pipeline(iterations, resume),
            stage(REPORT, [privacy_report_node(), _iterations_plot_node(iterations), evaluate]),
        ]
    )
    return _datasets_under(job, stages)


def _datasets_under(job: str, stages: Pipeline) -> Pipeline:
    """``stages`` with ``job.`` before the name of every dataset (not of the parameters, which
    already name the job). Unlike a namespace, it leaves the nodes' namespaces alone: the stages
    stay the top-level namespaces, which kedro-viz opens on."""
    with _reading_sibling_namespaces():
        return Pipeline(
            stages,
            inputs={name: f"{job}.{name}" for name in stages.inputs() if not name.startswith("params:")},
            outputs={name: f"{job}.{name}" for name in stages.all_outputs()},
        )


def _iterations_plot_node(iterations: int) -> Node:
    """``iterations_plot``: the metrics over the iterations, or, for a single one, what its
    histogram did (``pe_nodes.plot_iterations``), read from the last iteration's saved release."""
    with _reading_sibling_namespaces():
        return Node(
            pe_nodes.plot_iterations,
            ["iteration_metrics", f"{iteration_namespace(iterations)}.histogram", "privacy_plan", "settings"],
            "iterations_plot",
            name="plot_iterations",
        )


def _admission_node(job: str, resume: ResumePoint | None, load_private_data: pe_nodes.LoadPrivateData) -> Node:
    """The run's admission in the privacy ledger (a fresh run's, or a resumed run's), which alone
    passes the private rows, checked, on to the job (``private_table``). A fresh run's plan is
    saved by its admission: a refused run leaves none."""
    if resume is None:
        return Node(
            bind(pe_nodes.admit_run, job=job, load=load_private_data),
            ["schema", "private_data", "public_modality", "calibrated_plan", "settings"],
            ["ledger_run", "privacy_plan", "private_table"],
            name="admit_run",
        )
    return Node(
        bind(
            pe_nodes.admit_resumed_run,
            resume_from=resume.dataset,
            iteration=resume.iteration,
            load=load_private_data,
        ),
        ["ledger_run", "private_data", "public_modality", "privacy_plan", "settings"],
        "private_table",
        name="admit_resumed_run",
    )


def privacy_report_node() -> Node:
    """The run's privacy report, saved beside the release, which ends the run in the ledger."""
    return Node(
        pe_nodes.report_privacy,
        ["ledger_run", "privacy_plan", "synthetic_data"],
        "privacy_report",
        name="report_privacy",
    )
