"""Public relations declared in a schema: checked against its columns, honoured by every row."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from dp_synth.modalities.tabular.modality import TabularModality
from dp_synth.modalities.tabular.relations import parse_relations
from dp_synth.modalities.tabular.schema import parse_schema
from dp_synth.pe.schedule import VariationSchedule
from dp_synth.pe.schema import SchemaError

SCHEMA = {
    "label_column": "label",
    "columns": {
        "level": {"type": "categorical", "categories": ["low", "mid", "high"]},
        "code": {"type": "integer", "min": 1, "max": 3},
        "role": {"type": "categorical", "categories": ["husband", "wife", "child"]},
        "sex": {"type": "categorical", "categories": ["female", "male"]},
        "label": {"type": "categorical", "categories": ["no", "yes"]},
    },
}
RELATIONS = {
    "determined": [{"column": "code", "by": "level", "map": {"low": 1, "mid": 2, "high": 3}}],
    "forbidden": [{"role": "husband", "sex": "female"}, {"role": "wife", "sex": "male"}],
}


def modality() -> TabularModality:
    schema = parse_schema(SCHEMA)
    return TabularModality(
        schema=schema, schedule=VariationSchedule(0.9, 0.9, 1.0), relations=parse_relations(RELATIONS, schema)
    )


def honours(table: pd.DataFrame) -> bool:
    codes = table["level"].map({"low": 1, "mid": 2, "high": 3})
    forbidden = ((table["role"] == "husband") & (table["sex"] == "female")) | (
        (table["role"] == "wife") & (table["sex"] == "male")
    )
    return bool((table["code"] == codes).all() and not forbidden.any())


def test_every_drawn_and_varied_row_honours_the_relations_and_keeps_its_class():
    generator, rng = modality(), np.random.default_rng(0)
    drawn = generator.random_population({"no": 300, "yes": 200}, rng)
    assert honours(drawn) and drawn["label"].value_counts().to_dict() == {"no": 300, "yes": 200}
    varied = generator.vary(drawn, 1, 2, rng)  # r = 0.9: most cells redrawn
    assert honours(varied) and (varied["label"] == drawn["label"]).all()
    assert {"husband", "wife"} <= set(drawn["role"]) and (drawn["code"].dtype.kind == "i")


@pytest.mark.parametrize(
    ("relations", "message"),
    [
        ({"implied": []}, "unknown keys ['implied']"),
        ({"determined": [{"column": "code", "by": "sex", "map": {"female": 1}}]}, "misses ['male']"),
        ({"determined": [{"column": "code", "by": "level", "map": {"low": 1, "mid": 2, "high": 9}}]}, "outside 'code'"),
        ({"determined": [{"column": "level", "by": "code", "map": {}}]}, "'code' must be categorical"),
        ({"forbidden": [{"role": "uncle"}]}, "role='uncle' is not a declared category"),
        ({"forbidden": [{"label": "yes"}]}, "'label' is not a feature"),
    ],
)
def test_bad_relations_are_named(relations, message):
    with pytest.raises(SchemaError, match=re.escape(message)):
        parse_relations(relations, parse_schema(SCHEMA))


def test_relations_that_leave_a_class_nothing_to_draw_stop_with_a_message():
    schema = parse_schema(SCHEMA)
    impossible = {"forbidden": [{"sex": "female"}, {"sex": "male"}]}
    generator = TabularModality(
        schema=schema, schedule=VariationSchedule(), relations=parse_relations(impossible, schema)
    )
    with pytest.raises(SchemaError, match="forbidden combination after 40 redraws"):  # 20 of them uniform
        generator.random_population({"no": 10, "yes": 10}, np.random.default_rng(0))


def test_rows_the_statistics_keep_drawing_forbidden_are_drawn_from_the_public_domain(caplog):
    """A declared class without private rows has statistics of pure noise, which can put all its
    mass on husbands who are female: the run goes on with those rows drawn uniformly."""
    relations = parse_relations(RELATIONS, parse_schema(SCHEMA))
    forbidden = pd.DataFrame({"level": ["low"], "code": [1], "role": ["husband"], "sex": ["female"], "label": ["yes"]})
    table = pd.concat([forbidden] * 3, ignore_index=True)

    def always_forbidden(bad: np.ndarray) -> pd.DataFrame:
        return table.iloc[bad]

    def allowed(bad: np.ndarray) -> pd.DataFrame:
        return table.iloc[bad].assign(sex="male")

    assert honours(relations.honoured(table.copy(), always_forbidden, allowed))
    with pytest.raises(SchemaError, match="after 20 redraws"):
        relations.honoured(table.copy(), always_forbidden)
    with caplog.at_level("WARNING"):
        drawn = modality()._redrawn_uniformly(
            modality().generator, table["label"], np.arange(3), np.random.default_rng(1)
        )
    assert len(drawn) == 3 and "drawn from the public domain" in caplog.text and "class yes" in caplog.text
