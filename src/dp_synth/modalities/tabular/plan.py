"""The adaptive plan: the generator's cells, structure and population, chosen from public
quantities only (the declared row count and class proportions, the columns and their
domains, epsilon, delta, T), before any private row is read.

Every released count is useful only where its expected value stands above its noise. With n
rows, C classes and a release of noise sigma, a class's smallest expected share of rows n_c
(declared proportions, else n / C) spread over m cells gives a cell about n_c / m rows: the
plan keeps a release, and chooses how many cells it measures, so that n_c / m >= ``SIGNAL_TO_NOISE``
x sigma. Dropping a release hands its share of the budget to the others (the shares of
``statistics.release_plan`` are renormalised), so the plan is solved to a fixed point:

- one-way marginals: the most equal-width bins (``BIN_CHOICES``) of a wide numeric column;
- dependency tree: the most coarse cells per numeric column in a pair table
  (``PAIR_CELL_CHOICES``; m = the square of the median feature's cells in the tables, a
  categorical keeping its categories), or no tree (independent features);
- interaction cliques: kept when a 4 x 4 x 4 table clears the bar;
- sub-cells of bins: kept when a bin's rows clear ``SIGNAL_TO_NOISE`` x the sub-cells' noise
  x sqrt(sub-cells) (their mass concentrates on a few values);
- population N: about ``candidates_per_bin`` x n / (``SIGNAL_TO_NOISE`` x sigma) candidates,
  so that a histogram bin collects enough votes to stand above the histogram's noise;
- located bounds (``bounds``): where binned numeric columns' data lies inside their declared
  bounds is measured when a side's detection threshold (``bounds.bounds_threshold``) stays
  below ``bounds.MAX_UNDETECTED_SHARE`` of the rows.

On Adult (n = 32,561, epsilon = 1) the plan is the measured default: 32 bins, a tree over 12
coarse cells, one clique, 32 sub-cells, N = 30,000.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dp_synth.modalities.tabular.bounds import MAX_UNDETECTED_SHARE, bounds_threshold
from dp_synth.modalities.tabular.cells import CellGrid
from dp_synth.modalities.tabular.dependency_tree import coarse_cells
from dp_synth.modalities.tabular.schema import TableSchema
from dp_synth.modalities.tabular.statistics import release_plan
from dp_synth.pe.accounting import Neighbouring, calibrate, default_delta

SIGNAL_TO_NOISE = 2.0
"""Expected cell count a release must reach, in multiples of its noise's standard deviation."""
BIN_CHOICES = (32, 16, 8, 4)
PAIR_CELL_CHOICES = (12, 8, 6, 4, 3, 2)
INTERACTION_CELLS = 4**3
"""Cells of a clique's table per class (three features in 4 groups each)."""
REFINE_CELLS = 32
POPULATION_BOUNDS = (1000, 30_000)
"""Least and most candidates N the plan chooses."""
_FIXED_POINT_PASSES = 5


@dataclass(frozen=True)
class GeneratorPlan:
    """What the plan chose, and why it may be weak.

    Attributes:
        marginal_bins: Equal-width bins of a wide numeric column's marginal.
        structure: ``tree`` or ``independent``.
        pair_cells: Coarse cells of a numeric column in the tree's pair tables.
        interactions: Interaction cliques (0 or 1).
        refine_cells: Sub-cells per bin (1: none).
        population_size: N candidates per iteration.
        locate_bounds: Whether binned numeric columns' data is located inside their bounds.
        rows_per_class: The smallest class's expected rows n_c.
        warnings: What the plan predicts will be dominated by noise, and what would help.
    """

    marginal_bins: int
    structure: str
    pair_cells: int
    interactions: int
    refine_cells: int
    population_size: int
    locate_bounds: bool
    rows_per_class: float
    warnings: tuple[str, ...]


def read_rows(schema: TableSchema, rows_per_unit: int = 1) -> int | None:
    """The rows a run reads, from public quantities: the declared row count, at most the declared
    persons times the rows read per person (``dp.max_rows_per_unit``) when the schema has a
    privacy unit; ``None`` without a declared row count."""
    if schema.public_row_count is None or schema.public_unit_count is None:
        return schema.public_row_count
    return min(schema.public_row_count, schema.public_unit_count * rows_per_unit)


def rows_per_class(schema: TableSchema, rows_per_unit: int = 1) -> float | None:
    """The smallest class's expected rows from the rows a run reads (``read_rows``) and the
    declared proportions (equal shares when none are declared), or ``None`` without a declared
    row count."""
    rows = read_rows(schema, rows_per_unit)
    if rows is None:
        return None
    if schema.class_proportions:
        total = sum(schema.class_proportions.values())
        return rows * min(schema.class_proportions.values()) / total
    return rows / len(schema.classes)


def _largest(choices: tuple[int, ...], rows: float, cells: Callable[[int], int], sigma: float) -> int | None:
    """The first of ``choices`` whose ``cells(choice)`` cells keep ``rows / cells`` above the bar."""
    for choice in choices:
        if rows / cells(choice) >= SIGNAL_TO_NOISE * sigma:
            return choice
    return None


def plan_generator(
    schema: TableSchema,
    *,
    epsilon: float,
    delta: float | str,
    iterations: int,
    class_count_releases: int,
    generator_share: float,
    candidates_per_bin: int,
    neighbouring: Neighbouring = "add_remove",
    rows_per_unit: int = 1,
    locate_bounds: bool | None = None,
) -> GeneratorPlan | None:
    """Choose the generator's cells, structure and N from public quantities (module docstring).

    Args:
        schema: The public schema; its ``public_row_count`` is required.
        epsilon: The run's epsilon.
        delta: The run's delta, or ``"auto"`` (1/(n ln n)).
        iterations: T.
        class_count_releases: 1 with a DP class count, 0 with public proportions.
        generator_share: The statistics' share of mu squared.
        candidates_per_bin: Candidates per histogram bin.
        neighbouring: The neighbouring relation the noise is calibrated for.
        rows_per_unit: The most rows of one privacy unit (the noise grows with it).
        locate_bounds: Whether bounds are located, if set; ``None``: the plan decides.

    Returns:
        The plan, or ``None`` when the schema declares no row count (nothing public to plan from).
    """
    rows = rows_per_class(schema, rows_per_unit)
    if rows is None or generator_share <= 0:
        return None
    n = read_rows(schema, rows_per_unit)
    delta = default_delta(schema.public_row_count) if delta == "auto" else delta
    features = len(schema.features)
    plan = calibrate(
        epsilon=epsilon,
        delta=delta,
        iterations=iterations,
        preliminary_releases=class_count_releases,
        statistics_sensitivity=math.sqrt(features),
        statistics_share=generator_share,
        neighbouring=neighbouring,
        rows_per_unit=rows_per_unit,
    )
    grids = [CellGrid(column, BIN_CHOICES[0]) for column in schema.features]
    binned = sum(grid.binned for grid in grids)

    def pair_table_cells(pair_cells: int) -> int:
        """Cells of a typical pair table: the median feature's coarse cells, squared."""
        sizes = [
            len(np.unique(coarse_cells(grid.size, pair_cells))) if grid.column.is_numeric else grid.size
            for grid in grids
        ]
        return int(np.median(sizes)) ** 2

    bins, pair_cells, interactions, refine = BIN_CHOICES[0], PAIR_CELL_CHOICES[0], 1, REFINE_CELLS
    tree, locate = features >= 2, binned > 0 and locate_bounds is not False
    undetected = 0.0  # rows a located side can hold unnoticed, when the plan decides
    for _ in range(_FIXED_POINT_PASSES):
        noise = release_plan(
            plan.statistics_sigma,
            features,
            tree=tree,
            interactions=interactions,
            refined_features=binned if refine > 1 else 0,
            located_features=binned if locate else 0,
        )
        if locate and locate_bounds is None:
            undetected = bounds_threshold(noise["bounds"].sigma)
            locate = undetected <= MAX_UNDETECTED_SHARE * n
        chosen_bins = _largest(BIN_CHOICES, rows, lambda cells: cells, noise["one_way"].sigma)
        bins = chosen_bins or BIN_CHOICES[-1]
        if tree:
            chosen_pairs = _largest(PAIR_CELL_CHOICES, rows, pair_table_cells, noise["edges"].sigma)
            tree, pair_cells = chosen_pairs is not None, chosen_pairs or PAIR_CELL_CHOICES[0]
        if interactions and "cliques" in noise:
            interactions = int(rows / INTERACTION_CELLS >= SIGNAL_TO_NOISE * noise["cliques"].sigma and tree)
        if refine > 1 and "refinement" in noise:
            bar = SIGNAL_TO_NOISE * noise["refinement"].sigma * math.sqrt(REFINE_CELLS)
            refine = REFINE_CELLS if rows / bins >= bar else 1
    population = candidates_per_bin * n / (SIGNAL_TO_NOISE * plan.sigma)
    population = int(min(max(population // 1000 * 1000, POPULATION_BOUNDS[0]), POPULATION_BOUNDS[1]))
    warnings = []
    if chosen_bins is None:
        warnings.append(
            f"the DP one-way marginals are mostly noise: a class's {rows:.0f} expected rows over "
            f"{bins} cells stand below {SIGNAL_TO_NOISE:g} x their noise ({noise['one_way'].sigma:.1f})"
        )
    if binned and locate_bounds is None and not locate:
        warnings.append(
            f"the declared bounds of {binned} numeric columns are used as declared: at this budget, locating "
            f"their data would miss up to {undetected:.0f} of the {n} rows at each end; declare bounds close to "
            "the data's range"
        )
    votes = candidates_per_bin * n / population
    if votes < SIGNAL_TO_NOISE * plan.sigma:
        warnings.append(
            f"the DP histogram is mostly noise: about {votes:.0f} votes per bin against noise {plan.sigma:.1f}"
        )
    return GeneratorPlan(
        marginal_bins=bins,
        structure="tree" if tree else "independent",
        pair_cells=pair_cells,
        interactions=interactions if tree else 0,
        refine_cells=refine if binned else 1,
        population_size=population,
        locate_bounds=locate,
        rows_per_class=rows,
        warnings=tuple(warnings),
    )
