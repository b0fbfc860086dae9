"""Fingerprints of seeded releases, pinned so that a refactoring cannot change what a job
releases: same seed, same settings, same rows."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

PINNED = {
    # kedro run --pipelines=tabular, seed 0, N = 3,000, T = 1, 2,000 rows (also TabularSynthesizer);
    # with Adult's bounds located (fnlwgt's and capital-loss's narrowed), its public relations and repeats
    # varied, the tree's marginals and edge tables estimated jointly, a marginal's groups kept by
    # hysteresis, pair cells of equal width over where the marginals hold data, nearest neighbours
    # ranked in float64 (8eb52469... before that ranking, e9925c83... before those pair cells,
    # e34a8bba... before the hysteresis, 24e31eb4... before the joint estimate, 60d5e4c3... before
    # the located bounds)
    "tabular": "9f25a47e606c52bdd92ce5d5fdd5841d19544aa533c13fec773fb7da814e647a",
    # the text job on the tests' tiny GPT-2 (tests/pipelines/test_text_run.py), seed 0, T = 2; with
    # completions cleaned and checked, batches planned by prompt, repeats paraphrased (60652c5f... before)
    "text": "99f815063af9fd807747cba76e8b8db30736bbb590687b1f87e97556243d842b",
    # the image job with the glyph simulator and lookahead 2 (tests/pipelines/test_image_run.py)
    "image": "aef30bca21ad00413de339f7a2b54a78952097bda02655b9f662e277fd4f4675",
}


def fingerprint(table: pd.DataFrame) -> str:
    """SHA-256 of a table's column names and values: numbers as float64 bytes, text as its
    characters, array cells (images) stacked as float64 bytes."""
    digest = hashlib.sha256()
    for name in table.columns:
        digest.update(str(name).encode())
        values = table[name]
        if isinstance(values.iloc[0], np.ndarray):
            digest.update(np.stack(values.to_list()).astype(np.float64).tobytes())
        elif not pd.api.types.is_numeric_dtype(values):
            digest.update("\x1f".join(map(str, values)).encode())
        else:
            digest.update(values.to_numpy(dtype=np.float64).tobytes())
    return digest.hexdigest()
