"""``make bench-scale``: the tabular job on large private tables, with the pandas and Spark engines.

The tables are UCI Adult's training rows resampled with replacement and jittered (numeric
columns moved by a seeded step, inside the schema's bounds; ``education-num`` is kept, since the
schema declares it a function of ``education``), written once as parquet under
``data/01_raw/scale/``. Each (rows, engine) pair is one ``kedro run --pipelines=tabular`` in a
fresh process, in a copy of the project's configuration that points ``tabular.private_data``
at the table (``pandas.ParquetDataset`` or ``spark.SparkDataset``). It prints, per run, the
whole command's wall time, the time per stage (from the run's MLflow metrics), and the peak
resident memory of the driver (the ``kedro`` process, which runs the PE loop) and, on Spark,
of the local JVM that hosts the executors. ``release.rows`` is fixed (``--release-rows``) so
that the figures measure the private side; the evaluation reads its bounded sample.

Usage::

    python benchmarks/bench_scale.py [--rows 1000000,10000000] [--engines pandas,spark]
                                     [--release-rows 100000] [--seed 0]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ADULT = PROJECT_ROOT / "data" / "01_raw" / "adult"
SCALE = PROJECT_ROOT / "data" / "01_raw" / "scale"
CHUNK_ROWS = 1_000_000
"""Rows generated and written at a time (the generator's memory does not grow with the table)."""
JITTER = {"age": 2, "fnlwgt": 20_000, "hours-per-week": 3, "capital-gain": 500, "capital-loss": 100}
"""Largest step of each jittered column (capital gains and losses only where they are not 0)."""
POLL_SECONDS = 0.2


def scaled_adult(rows: int, seed: int, folder: Path = SCALE) -> Path:
    """The parquet table of ``rows`` resampled, jittered Adult rows in ``folder`` (written once,
    then reused)."""
    path = folder / f"adult_{rows}_seed{seed}.parquet"
    if path.exists():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    source = pd.read_csv(ADULT / "adult_train.csv", dtype=str, keep_default_na=False)
    numeric = [name for name in JITTER if name in source.columns]
    integers = [*numeric, "education-num"]
    source[integers] = source[integers].astype(np.int64)
    bounds = {name: (source[name].min(), source[name].max()) for name in numeric}
    rng = np.random.default_rng(seed)
    partial = path.with_suffix(".partial")
    with pq.ParquetWriter(partial, pa.Schema.from_pandas(source, preserve_index=False)) as writer:
        for start in range(0, rows, CHUNK_ROWS):
            chunk = source.iloc[rng.integers(len(source), size=min(CHUNK_ROWS, rows - start))].reset_index(drop=True)
            for name in numeric:
                values = chunk[name].to_numpy()
                step = rng.integers(-JITTER[name], JITTER[name], endpoint=True, size=len(values))
                moved = np.clip(values + step, *bounds[name])
                chunk[name] = np.where(values == 0, 0, moved) if name.startswith("capital") else moved
            writer.write_table(pa.Table.from_pandas(chunk, preserve_index=False))
    partial.rename(path)
    return path


@dataclass
class PeakMemory:
    """Samples the peak resident memory (VmHWM) of a process and of its Java descendants."""

    pid: int
    driver_kib: int = 0
    jvm_kib: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.driver_kib = max(self.driver_kib, _high_water_kib(self.pid))
            for child in _descendants(self.pid):
                if "java" in _command(child):
                    self.jvm_kib = max(self.jvm_kib, _high_water_kib(child))
            time.sleep(POLL_SECONDS)

    def __enter__(self) -> PeakMemory:
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def _high_water_kib(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    line = next((line for line in status.splitlines() if line.startswith("VmHWM:")), "VmHWM: 0 kB")
    return int(line.split()[1])


def _descendants(pid: int) -> list[int]:
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = [int(child) for child in (task / "children").read_text().split()]
            except OSError:
                continue
            found += children
            frontier += children
    return found


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def configuration(table: Path, engine: str, release_rows: int, directory: Path) -> Path:
    """A copy of the project's configuration whose tabular job reads ``table`` with ``engine``."""
    conf = directory / "conf"
    shutil.copytree(PROJECT_ROOT / "conf", conf, ignore=shutil.ignore_patterns("local"))
    (conf / "local").mkdir()
    dataset = "spark.SparkDataset\n  file_format: parquet" if engine == "spark" else "pandas.ParquetDataset"
    (conf / "local" / "catalog.yml").write_text(f"tabular.private_data:\n  type: {dataset}\n  filepath: {table}\n")
    (conf / "local" / "parameters_tabular.yml").write_text(
        f"tabular:\n  engine: {engine}\n  release:\n    rows: {release_rows}\n"
    )
    return conf


def stage_seconds(log: str) -> dict[str, float]:
    """The time per stage that the run logged (``StageTimingHook``), by stage."""
    block = log.rpartition("Wall time per stage")[2].splitlines()[1:]
    stages = {}
    for line in block:
        match = re.fullmatch(r"tabular\.(\S+)\s+([\d.]+) s", line.strip())
        if match is None:
            break
        stages[match.group(1)] = float(match.group(2))
    return stages


def run(table: Path, engine: str, release_rows: int) -> tuple[float, PeakMemory, dict[str, float]]:
    """One ``kedro run`` of the tabular job; its wall time, peak memory and time per stage."""
    with tempfile.TemporaryDirectory() as directory:
        conf = configuration(table, engine, release_rows, Path(directory))
        command = [str(Path(sys.executable).with_name("kedro")), "run", "--pipelines=tabular", f"--conf-source={conf}"]
        log = Path(directory) / "run.log"
        started = time.perf_counter()
        with log.open("w") as output:
            process = subprocess.Popen(
                command, cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT
            )
            with PeakMemory(process.pid) as memory:
                code = process.wait()
        wall = time.perf_counter() - started
        text = log.read_text()
    if code != 0:
        raise SystemExit(f"kedro run failed ({engine}, {table.name}):\n{text[-3000:]}")
    return wall, memory, stage_seconds(text)


def main() -> None:
    """Generate the tables, run every (rows, engine) pair, print one block each and a summary."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="1000000,10000000")
    parser.add_argument("--engines", default="pandas,spark")
    parser.add_argument("--release-rows", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    summary = []
    for rows in (int(value) for value in arguments.rows.split(",")):
        table = scaled_adult(rows, arguments.seed)
        for engine in arguments.engines.split(","):
            wall, memory, stages = run(table, engine, arguments.release_rows)
            print(f"\n{engine} engine, {rows:,} private rows: kedro run {wall:.1f} s")
            for stage, seconds in sorted(stages.items(), key=lambda item: -item[1]):
                if seconds >= 0.5:
                    print(f"  {stage:<32} {seconds:8.1f} s")
            print(f"  peak RSS: driver {memory.driver_kib / 2**20:.2f} GiB, JVM {memory.jvm_kib / 2**20:.2f} GiB")
            summary.append((engine, rows, wall, memory.driver_kib / 2**20, memory.jvm_kib / 2**20))
    print(f"\n{'engine':<8} {'rows':>12} {'wall s':>8} {'s per M rows':>13} {'driver GiB':>11} {'JVM GiB':>8}")
    for engine, rows, wall, driver, jvm in summary:
        print(f"{engine:<8} {rows:>12,} {wall:>8.1f} {wall / rows * 1e6:>13.1f} {driver:>11.2f} {jvm:>8.2f}")


if __name__ == "__main__":
    main()
