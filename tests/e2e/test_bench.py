"""`scripts/bench --quick` on the binaries under test: every row of the summary table is
there with a number (no timing is asserted: the quick sizes say only that every measure
runs and is reported)."""

import os
import re
import subprocess

from conftest import WORKSPACE, require

# Every row the summary table must have (BENCHMARKS.md, "Summary table (scripts/bench)").
PIPE_ROWS = [
    "pipe: cat frames \\| cat",
    "pipe: cat → engine → cat (engine alone)",
    "pipe: engine alone ÷ cat",
    "pipe: reader-stream \\| writer-stream (direct)",
    "pipe: reader-stream → engine → writer-stream",
    "pipe: engine ÷ direct pipe",
    "pipe: engine's own CPU per GB forwarded",
    "empty job: wall, median",
    "empty job: CPU, engine and plugins",
    "machine: MD5 by OpenSSL through hashlib (compute-bound)",
    "machine: copies between two 32 MiB buffers (memory-bound)",
    "machine: pipe round trips between two processes (wake-ups)",
]
PIPELINE_MEASURES = {
    "OSS": ["changes/s", "engine's own CPU per M changes", "reader-otsstream CPU per M changes",
            "writer-oss CPU per GB of CSV", "localcloud CPU per M changes"],
    "MaxCompute": ["changes/s", "engine's own CPU per M changes", "reader-otsstream CPU per M changes",
                   "writer-odps CPU per M rows", "localcloud CPU per M changes"],
}


def expected_rows():
    rows = list(PIPE_ROWS)
    for name, measures in PIPELINE_MEASURES.items():
        for shards in ("1 task", "4 shards, 4 tasks"):
            rows += ["Stream → %s, %s: %s" % (name, shards, m) for m in measures]
        rows.append("Stream → %s: 4 tasks ÷ 1 task" % name)
    return rows


def test_bench_quick_prints_every_row_with_a_number(bins, tmp_path):
    require(bins, "engine", "localcloud", "reader-stream", "writer-stream", "reader-misbehave",
            "writer-misbehave", "reader-otsstream", "writer-oss", "writer-odps")
    env = dict(os.environ, STREAMPORT_BIN_DIR=str(bins))
    out = subprocess.run([str(WORKSPACE / "scripts" / "bench"), "--quick", "--json", str(tmp_path / "rows.json")],
                         cwd=WORKSPACE, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    table = {}
    for line in out.stdout.splitlines():
        m = re.fullmatch(r"\| (.+?) \| ([-0-9.,]+) \| (\S+) \| .*\|", line)
        if m:
            table[m.group(1)] = float(m.group(2).replace(",", ""))
    missing = [r for r in expected_rows() if r not in table]
    assert not missing, "rows missing or without a number: %s\n%s" % (missing, out.stdout)
    for name in expected_rows():
        if "CPU" not in name:
            # Throughputs, ratios and wall times of a run that happened are positive
            # (a CPU figure of a short quick run may round to 0).
            assert table[name] > 0, (name, out.stdout)
