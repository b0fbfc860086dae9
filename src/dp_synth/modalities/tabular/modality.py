"""Tabular modality: PE over the rows of a table with a public schema.

Every bound and category comes from the ``TableSchema``. Optionally the generator is
informed by DP statistics: class-conditional one-way marginals of every feature, with
``refine_cells`` > 1 the counts of sub-cells of every binned feature's bins, and, with
``structure="tree"``, a dependency tree over the features (``dependency_tree``), measured once
with the Gaussian mechanism (``measure_statistics``) and paid from the run's budget. With them,
the random API draws each feature from its noisy marginal (given its tree parent) instead of
uniformly, at the released sub-cells, the variation API redraws cells from it (given its tree
neighbours), and the release is re-weighted to match the marginals.

``TabularModality`` composes the pieces, each in a module of its own: ``cells`` (the public
cells and the row embedding), ``statistics`` and ``tree_statistics`` (the budget split and the
releases), ``estimation`` (their post-processing into distributions) and ``generator`` (the
random and variation APIs, the raking).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from dp_synth.modalities.tabular.bounds import (
    located_columns,
    located_schema,
    loose_bounds_warnings,
    measure_locate_counts,
)
from dp_synth.modalities.tabular.cells import CellGrid, TableLayout, encode_rows
from dp_synth.modalities.tabular.dependency_tree import PairEstimate
from dp_synth.modalities.tabular.estimation import (
    MarginalEstimate,
    class_totals,
    marginal_distributions,
    refined_distributions,
)
from dp_synth.modalities.tabular.generator import TabularGenerator
from dp_synth.modalities.tabular.relations import PublicRelations
from dp_synth.modalities.tabular.schema import TableSchema
from dp_synth.modalities.tabular.statistics import (
    Release,
    TabularStatistics,
    gaussian_release,
    measure_one_way,
    measure_refinement,
    release_plan,
)
from dp_synth.modalities.tabular.tree_statistics import PairSplit, TreeDesign
from dp_synth.pe.interfaces import PublicSchemaFacts
from dp_synth.pe.noise import Noise
from dp_synth.pe.report import ReleaseRecord
from dp_synth.pe.schedule import VariationSchedule

logger = logging.getLogger(__name__)

Structure = Literal["independent", "tree"]
"""Generator structures: features drawn independently within a class, or along a DP tree."""


def _distribution(cells: np.ndarray, size: int) -> np.ndarray:
    """The share of the values in each of ``size`` cells."""
    counts = np.bincount(cells, minlength=size)
    return counts / max(counts.sum(), 1e-300)


@dataclass(frozen=True)
class TabularModality(PublicSchemaFacts):
    """PE over rows of a table with a public schema.

    Attributes:
        schema: The public domain of every column.
        schedule: Variation degree over iterations.
        categorical_weight: Scale of one-hot blocks in the embedding (numeric columns span [0, 1]).
        marginal_bins: Equal-width bins of a numeric column's marginal cells (see ``CellGrid``).
        marginal_estimate: How a binned numeric column's noisy marginal becomes counts, one of
            ``estimation.MarginalEstimate``.
        local_numeric_share: A numeric feature whose released marginals keep every cell at or
            below this share of a class varies by small moves (see ``TabularGenerator.moves_locally``);
            above it, the feature has a spike (``estimation.has_spike``).
        structure: ``"independent"``: features drawn independently within a class; ``"tree"``:
            along a DP dependency tree (``dependency_tree``) measured with the marginals.
        pair_cells: Coarse cells of a numeric feature in the tree's pair tables (one with at most
            twice as many cells keeps them all, see ``dependency_tree.coarse_cells``).
        pair_split: How those coarse cells group a numeric feature's fine cells, one of
            ``tree_statistics.PairSplit``.
        pair_estimate: How the tree turns a noisy pair table into a conditional (see
            ``dependency_tree.PairEstimate``).
        interactions: With the tree (the independent generator ignores it), at most this many
            disjoint triples of features whose joint distribution in each class departs from the
            tree's prediction by more than their table's noise are measured and drawn jointly
            (0: none).
        refine_cells: With more than 1, every bin of a binned numeric feature is cut into this
            many equal-width sub-cells whose class-conditional counts are released too
            (``statistics.refined_counts``), and a value drawn in a bin is the midpoint of a sub-cell drawn
            from ``estimation.refined_within``; with 1, a uniform draw in the bin.
        locate_bounds: Whether the statistics first locate where every binned numeric feature's
            data lies inside its declared bounds (``bounds``) and count everything else in the
            located domain.
        statistics: The released statistics the generator draws from (``measure_statistics``),
            ``None`` until ``with_statistics`` sets them.
        relations: The schema's public relations, honoured by every row drawn or varied.
    """

    schema: TableSchema
    schedule: VariationSchedule
    categorical_weight: float = 1.0 / 3.0
    marginal_bins: int = 32
    marginal_estimate: MarginalEstimate = "denoise"
    local_numeric_share: float = 0.2
    structure: Structure = "independent"
    pair_cells: int = 12
    pair_split: PairSplit = "auto"
    pair_estimate: PairEstimate = "posterior"
    interactions: int = 0
    refine_cells: int = 1
    locate_bounds: bool = False
    statistics: TabularStatistics | None = None
    relations: PublicRelations = field(default_factory=PublicRelations)

    @property
    def label_column(self) -> str:
        """The schema's label column."""
        return self.schema.label_column

    @property
    def domain(self) -> TableSchema:
        """The domain the generator draws in and the embedding scales to: the declared schema,
        with the located bounds of the released statistics if any (``bounds``)."""
        return self.statistics.schema if self.statistics is not None else self.schema

    @property
    def layout(self) -> TableLayout:
        """The classes and every feature's grid of marginal cells, in the ``domain``."""
        return TableLayout(self.domain, self.marginal_bins)

    @property
    def declared_grids(self) -> tuple[CellGrid, ...]:
        """Every feature's grid of marginal cells in the declared schema (the diagnostics' grid)."""
        return TableLayout(self.schema, self.marginal_bins).grids

    @property
    def grids(self) -> tuple[CellGrid, ...]:
        """The marginal cell grid of every feature."""
        return self.layout.grids

    @property
    def binned_features(self) -> tuple[int, ...]:
        """The features cut into equal-width bins in the declared domain (an integer column
        located to few values has a cell per value in the located one: ``bounds.located_schema``)."""
        return tuple(feature for feature, grid in enumerate(self.declared_grids) if grid.binned)

    @property
    def refined_features(self) -> tuple[int, ...]:
        """The features whose bins are refined: every binned feature, with ``refine_cells`` > 1."""
        return self.binned_features if self.refine_cells > 1 else ()

    @property
    def located_features(self) -> tuple[int, ...]:
        """The features whose data is located inside their bounds: every binned feature, with
        ``locate_bounds``."""
        return self.binned_features if self.locate_bounds else ()

    @property
    def statistics_sensitivity(self) -> float:
        """L2 sensitivity of ``statistics.marginal_counts``: a record adds 1 to one cell of each feature."""
        return math.sqrt(len(self.schema.features))

    def release_plan(self, sigma: float) -> dict[str, Release]:
        """The noise and sensitivity of each statistics release these settings make, given the
        plan's ``sigma`` for sensitivity ``statistics_sensitivity`` (``statistics.release_plan``)."""
        return release_plan(
            sigma,
            len(self.schema.features),
            tree=self.structure == "tree",
            interactions=self.interactions,
            refined_features=len(self.refined_features),
            located_features=len(self.located_features),
        )

    def measure_statistics(self, private: pd.DataFrame, sigma: float, rng: Noise) -> TabularStatistics:
        """Release the generator's statistics with the Gaussian mechanism.

        ``sigma`` is the noise the plan grants a release of L2 sensitivity
        ``statistics_sensitivity``. The independent generator spends it all on
        ``marginal_counts(private) + N(0, sigma^2)``. The tree generator splits it over three
        releases by ``TREE_BUDGET`` (``release_plan``), so their mu squared adds up to the same
        total: the marginals, then the dependence scores, then the chosen edge tables
        (``TreeDesign.measure``). With ``refine_cells`` > 1, ``REFINEMENT_SHARE`` of it goes to
        ``refined_counts``. With ``locate_bounds``, ``BOUNDS_SHARE`` of it first goes to
        ``bounds.locate_counts``, and every other release counts cells of the located domain
        (``bounds.located_schema``); a column whose declared bounds are far wider than its
        located ones is logged with what would help (``bounds.loose_bounds_warnings``).

        The noisy counts become distributions by post-processing (``estimation``). Returns the
        marginals, plus the tree for the tree generator and the sub-cells (see
        ``refined_within``) with ``refine_cells`` > 1, every release and the bounds' warnings.
        """
        plan = self.release_plan(sigma)
        schema, measurements = self.schema, []
        if "bounds" in plan:
            located = located_columns(self.schema, self.located_features)
            counts = measure_locate_counts(located, private)
            bounds = gaussian_release("bounds", [(f,) for f in self.located_features], [counts], plan["bounds"], rng)
            (noisy,) = bounds.noisy
            schema = located_schema(self.schema, self.located_features, noisy, bounds.sigma)
            measurements.append(bounds)
        layout = TableLayout(schema, self.marginal_bins)
        one_way = measure_one_way(layout, private, plan["one_way"], rng)
        marginals = marginal_distributions(layout, one_way, self.marginal_estimate)
        totals = class_totals(layout, one_way)
        measurements.append(one_way)
        refined = None
        if "refinement" in plan:
            binned = [feature for feature in self.refined_features if layout.grids[feature].binned]
            refinement = measure_refinement(layout, binned, self.refine_cells, private, plan["refinement"], rng)
            refined = refined_distributions(layout, refinement, self.refine_cells, marginals, totals)
            measurements.append(refinement)
        tree = None
        if "edges" in plan:
            design = TreeDesign(
                layout,
                self.pair_cells,
                self.pair_split,
                self.pair_estimate,
                self.local_numeric_share,
                self.interactions,
            )
            tree, marginals, releases = design.measure(private, marginals, totals, plan, rng)
            measurements.extend(releases)
        warnings = loose_bounds_warnings(self.schema, schema)
        for warning in warnings:
            logger.warning("Loose bounds: %s.", warning)
        return TabularStatistics(marginals, refined, tree, tuple(measurements), schema, warnings)

    def statistics_releases(self) -> tuple[ReleaseRecord, ...]:
        """The Gaussian releases of the statistics this generator uses, for the privacy report
        (empty before ``with_statistics``)."""
        if self.statistics is None:
            return ()
        return tuple(
            ReleaseRecord(f"generator statistics: {measurement.name}", measurement.sensitivity, measurement.sigma)
            for measurement in self.statistics.measurements
        )

    def with_statistics(self, statistics: TabularStatistics) -> TabularModality:
        """Return a copy whose generator draws from released statistics (``measure_statistics``),
        in the domain they were counted in (the located bounds, if any: ``domain``)."""
        return dataclasses.replace(self, statistics=statistics)

    @property
    def generator(self) -> TabularGenerator:
        """The random and variation APIs, informed by the released statistics if any."""
        return TabularGenerator(self.layout, self.schedule, self.local_numeric_share, self.statistics)

    def random_population(self, class_sizes: Mapping[str, int], rng: np.random.Generator) -> pd.DataFrame:
        """Draw ``class_sizes[c]`` rows per class (``TabularGenerator.random_population``); a row
        holding a combination the schema forbids is drawn again (``relations``), from the public
        domain if the statistics keep drawing forbidden ones (``_redrawn_uniformly``)."""
        generator = self.generator
        rows = generator.random_population(class_sizes, rng)
        labels = rows[self.label_column]
        return self.relations.honoured(
            rows,
            lambda bad: self._redrawn(generator, labels, bad, rng),
            lambda bad: self._redrawn_uniformly(generator, labels, bad, rng),
        )

    def _redrawn_uniformly(
        self, generator: TabularGenerator, labels: pd.Series, positions: np.ndarray, rng: np.random.Generator
    ) -> pd.DataFrame:
        """``_redrawn`` from the public domain alone, with a warning: the released statistics of
        these rows' classes put almost all their mass on rows the schema forbids (a declared class
        with few or no private rows, whose statistics are mostly noise)."""
        classes = sorted(set(labels.to_numpy()[positions]))
        logger.warning(
            "%d generated rows of class %s held a forbidden combination after every redraw from the "
            "statistics: drawn from the public domain instead (the class has too few rows for its "
            "statistics to rise above their noise; a larger epsilon or fewer columns would help)",
            len(positions),
            ", ".join(map(str, classes)),
        )
        return self._redrawn(dataclasses.replace(generator, statistics=None), labels, positions, rng)

    def _redrawn(
        self, generator: TabularGenerator, labels: pd.Series, positions: np.ndarray, rng: np.random.Generator
    ) -> pd.DataFrame:
        """Fresh rows for these positions, each of the class at its position, in order."""
        wanted = [self.classes.index(label) for label in labels.to_numpy()[positions]]
        sizes = {label: wanted.count(index) for index, label in enumerate(self.classes) if index in wanted}
        drawn = generator.random_population(sizes, rng)  # grouped by class, in the classes' order
        return drawn.iloc[np.argsort(np.argsort(wanted, kind="stable"))]

    def vary(self, survivors: pd.DataFrame, iteration: int, iterations: int, rng: np.random.Generator) -> pd.DataFrame:
        """Return one variation per survivor, label unchanged (``TabularGenerator.vary``); a
        variation holding a forbidden combination keeps its survivor unvaried (``relations``)."""
        varied = self.generator.vary(survivors, iteration, iterations, rng)
        return self.relations.honoured(varied, lambda bad: survivors.iloc[bad][varied.columns])

    def reweight(self, population: pd.DataFrame, weights: np.ndarray) -> np.ndarray:
        """Re-weight a population to the noisy marginals (``TabularGenerator.reweight``)."""
        return self.generator.reweight(population, weights)

    def embed(self, population: pd.DataFrame) -> np.ndarray:
        """Numeric features min-max scaled on the ``domain``'s bounds; categoricals one-hot x weight."""
        return encode_rows(population, self.domain.features, self.categorical_weight)

    def summarise_reference(self, reference: pd.DataFrame) -> dict[str, np.ndarray]:
        """One-way distributions of the held-out reference table over every feature's cells."""
        return {
            grid.column.name: _distribution(grid.cells(reference[grid.column.name]), grid.size)
            for grid in self.declared_grids
        }

    def quality(self, population: pd.DataFrame, reference_summary: Mapping[str, np.ndarray]) -> dict[str, float]:
        """Mean one-way total variation distance to the reference over the features' cells."""
        distances = [
            0.5
            * np.abs(
                _distribution(grid.cells(population[grid.column.name]), grid.size) - reference_summary[grid.column.name]
            ).sum()
            for grid in self.declared_grids
        ]
        return {"tvd_1way": float(np.mean(distances))}
