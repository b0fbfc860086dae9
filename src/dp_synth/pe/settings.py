"""Typed settings of a PE job, with their defaults in code.

The committed parameter files show what users change (epsilon, delta, seed, T, N, released
rows); every other setting keeps the default written here, and can be overridden under the
same key (``--params tabular.pe.candidates_per_bin=1`` or ``conf/local``). A key that is not a
setting stops the run with a message naming it and the nearest valid key. Each job subclasses
these models where its defaults differ.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dp_synth.pe.engine import Engine, OnInvalid

_UNION_MEMBERS = {"bool", "int", "float", "str", "list", "dict", "tuple"}
"""Names pydantic gives the members of a union in an error's location (not setting names)."""


class SettingsError(ValueError):
    """A job's settings are invalid: the message names each bad key and what is expected."""


class Section(BaseModel):
    """A block of settings: frozen, strict about unknown keys (named with the nearest valid key)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)

    @model_validator(mode="before")
    @classmethod
    def _name_unknown_keys(cls, raw: Any) -> Any:
        if not isinstance(raw, Mapping):
            return raw
        known = set(cls.model_fields)
        unknown = [key for key in raw if key not in known]
        if unknown:
            raise ValueError("; ".join(_unknown_key_message(str(key), known) for key in unknown))
        return raw


def _unknown_key_message(key: str, known: set[str]) -> str:
    nearest = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.5)
    hint = f"did you mean {nearest[0]!r}?" if nearest else f"valid keys: {', '.join(sorted(known))}"
    return f"unknown setting {key!r}: {hint}"


PositiveInt = Annotated[int, Field(ge=1)]
Probability = Annotated[float, Field(ge=0.0, lt=1.0)]


class PrivacySettings(Section):
    """``dp``: the budget and where the noise comes from.

    Attributes:
        epsilon: Total epsilon of the run, > 0.
        delta: Total delta in (0, 1), or ``"auto"``: 1/(n ln n) with the schema's public row count.
        seed: ``None``: secure noise (private: OpenDP's discrete Gaussian from a cryptographically
            secure source, ``pe.noise``); an integer: a reproducible experiment with numpy's noise,
            not private against anyone who knows the seed.
        class_proportions: ``"dp"``: a noisy class count paid from the budget; ``"public"``:
            the proportions declared in the schema.
        generator_share: Share of the budget (in mu squared) spent on the generator's DP
            statistics; 0 for a generator that uses none.
        neighbouring: ``"add_remove"``: neighbouring datasets differ by one record added or
            removed; ``"replace_one"``: by one record replaced (larger sensitivities, more noise).
            With a privacy unit declared in the schema, a record is one unit's rows.
        max_rows_per_unit: With a privacy unit declared in the schema, the most rows of one unit
            the run reads (more are dropped at random): every sensitivity, and the noise, grows
            by this factor. Ignored without a privacy unit.
        lifetime_epsilon: The most epsilon the dataset may ever spend, all runs composed (the
            privacy ledger); a run that would pass it stops before reading a private row. The
            budget belongs to the dataset: stored in the ledger when first set, lowered by a
            lower setting, raised only by ``dp-synth ledger set-lifetime``. ``None``: the
            ledger's (no limit if it has none; the ledger still counts the lifetime spend).
        lifetime_delta: The delta the lifetime epsilon is stated at; ``"auto"``: the stored
            budget's, else the run's delta.
        ledger: The privacy ledger's SQLite file, relative to the project folder.
        ledger_id: The ledger's id (``dp-synth ledger show`` prints it): set, a missing ledger or
            another one at ``ledger`` stops the run instead of starting afresh.
        distinct_dataset: Admit private data that the ledger knows under another dataset_id
            (the same content, about other people); otherwise such a run is refused.
        tracking_diagnostics: Whether diagnostics computed from private or held-out data (quality
            metrics, evaluation reports and figures, stage timings) go to MLflow: ``"local"``
            only when the tracking store and the run's artifact location are both on this
            machine (``hooks.stores.stores_are_local``), ``"always"`` or ``"never"``.
        on_invalid: What a private value outside the declared schema does (``engine.ON_INVALID``):
            ``"clamp"`` (default) moves it into the domain or drops its row, ``"drop"`` drops its
            row, both inside the DP guarantee; ``"stop"`` stops the run before it is admitted,
            which depends on the private data and so is not DP.
    """

    epsilon: Annotated[float, Field(gt=0.0, allow_inf_nan=False)] = 1.0
    delta: Annotated[float, Field(gt=0.0, lt=1.0)] | Literal["auto"] = "auto"
    seed: int | None = None
    class_proportions: Literal["dp", "public"] = "dp"
    generator_share: Probability = 0.0
    neighbouring: Literal["add_remove", "replace_one"] = "add_remove"
    max_rows_per_unit: PositiveInt = 1
    lifetime_epsilon: Annotated[float, Field(gt=0.0, allow_inf_nan=False)] | None = None
    lifetime_delta: Annotated[float, Field(gt=0.0, lt=1.0)] | Literal["auto"] = "auto"
    ledger: Annotated[str, Field(min_length=1)] = "privacy_ledger.db"
    ledger_id: Annotated[str, Field(min_length=1)] | None = None
    distinct_dataset: bool = False
    tracking_diagnostics: Literal["local", "always", "never"] = "local"
    on_invalid: OnInvalid = "clamp"


class EvolutionSettings(Section):
    """``pe``: the population and the loop.

    Attributes:
        iterations: T, the number of DP histograms. It shapes the DAG, so it is read from the
            parameter files (or ``DP_SYNTH_ITERATIONS``) when the pipelines are built.
        population_size: N candidates per iteration, split across classes.
        nearest_neighbours: k votes per private record, each of weight 1/sqrt(k).
        threshold: H, subtracted from the noisy histogram before sampling.
        sampling_iterations: Iterations that sample survivors in proportion to the histogram;
            afterwards the top N are kept, with ``variations_per_survivor`` variations each.
        variations_per_survivor: See ``sampling_iterations``.
        merge_duplicates: Identical candidates share one bin of the histogram.
        candidates_per_bin: 1: a bin per (distinct) candidate; c > 1: k-means groups of about c
            similar candidates of a class share one noisy count.
    """

    iterations: PositiveInt = 10
    population_size: PositiveInt = 300
    nearest_neighbours: PositiveInt = 1
    threshold: Annotated[float, Field(ge=0.0)] = 0.0
    sampling_iterations: Annotated[int, Field(ge=0)] = 100
    variations_per_survivor: PositiveInt = 1
    merge_duplicates: bool = True
    candidates_per_bin: PositiveInt = 1


class ReleaseSettings(Section):
    """``release``: post-processing of the last histogram (costs no privacy).

    Attributes:
        rows: Rows released, or ``"auto"``: the schema's public row count, else the total of
            the DP class counts.
        vary: Pass released rows once through the variation API at r(T): ``True`` every row,
            ``"repeats"`` every row that repeats one drawn before it, ``"distinct"`` the same and
            then a row whose variation still repeats an earlier row replaced by a candidate not
            released yet (``ReleaseBasis.draw``), ``False`` none.
    """

    rows: PositiveInt | Literal["auto"] = "auto"
    vary: bool | Literal["repeats", "distinct"] = False


class ScheduleSettings(Section):
    """A variation schedule r(t) = r0 - (r0 - rf) (t/T)^gamma (``pe.schedule.VariationSchedule``)."""

    r0: float = 0.5
    rf: float = 0.01
    gamma: Annotated[float, Field(gt=0.0)] = 0.2


class PrivateJobSettings(Section):
    """The settings every job that reads private data shares: where its rows are read and its
    privacy budget. The PE jobs add their loop (``JobSettings``); the DP few-shot job its own
    sections.

    Attributes:
        engine: Where the private rows are read: ``"pandas"`` (in this process) or ``"spark"``
            (in the executors of the session ``conf/base/spark.yml`` describes; the job's
            ``private_data`` is then a ``spark.SparkDataset``). See ``pe.engine``.
    """

    engine: Engine = "pandas"
    dp: PrivacySettings = PrivacySettings()

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None, job: str) -> Self:
        """Validate a job's parameters.

        Raises:
            SettingsError: naming every invalid key as ``<job>.<section>.<key>``.
        """
        try:
            return cls.model_validate(dict(raw or {}))
        except ValidationError as error:
            problems: dict[str, list[str]] = {}
            for problem in error.errors():
                where = ".".join(
                    [
                        job,
                        *(
                            str(part)
                            for part in problem["loc"]
                            if str(part).isidentifier() and str(part) not in _UNION_MEMBERS
                        ),
                    ]
                )
                problems.setdefault(where, []).append(problem["msg"].removeprefix("Value error, "))
            lines = [f"{where}: {' or '.join(dict.fromkeys(messages))}" for where, messages in problems.items()]
            raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None


class JobSettings(PrivateJobSettings):
    """The settings every PE job shares; a job adds its own sections."""

    pe: EvolutionSettings = EvolutionSettings()
    release: ReleaseSettings = ReleaseSettings()
