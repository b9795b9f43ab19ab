#!/usr/bin/env python3
"""Throughput and cost of the mirror pipeline on localcloud (`scripts/bench-e2e
--mirror`): examples/jobs/otsstream-to-odps-mirror.json (reader-otsstream mode
row_change -> writer-odps writeMode upsert) over one window holding a bulk workload
(BatchWriteRow batches of 200 changes: puts of some columns, updates with column
deletes, row deletes) of `--keys` keys.

Measured as bench_pipelines.py measures the other pipelines (each plugin process
through a wait4 wrapper): changes/s = row changes in the window / the engine's elapsed
time; CPU s per million changes of writer-odps (every step and task process), of the
reader and of the engine. The Delta table is checked equal to the Tablestore table
(row for row, cell for cell) before a figure is reported.
Usage: bench_mirror.py [--changes N] [--keys N] (binaries from $STREAMPORT_BIN_DIR).
"""

import argparse
import json
import pathlib
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "examples" / "workload"))
sys.path.insert(0, str(HERE))

import bench_pipelines as bp  # noqa: E402
import mirror  # noqa: E402
import pipelines  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--changes", type=int, default=100_000)
    p.add_argument("--keys", type=int, default=20_000)
    args = p.parse_args(argv)
    bins = pipelines.bin_dir()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench-mirror-"))
    cloud = pipelines.Localcloud(str(bins / "localcloud"))
    try:
        window = pipelines.Window()
        window.start_ms = window.end_ms - 3_600_000
        mirror.create_tables(cloud, window)
        work = mirror.Workload(cloud, seed=1, keys=args.keys)
        t0 = time.time()
        work.run(window, args.changes, bulk=True)
        load_s = time.time() - t0
        usage = tmp / "usage.jsonl"
        plugins = bp.plugin_dir(tmp, bins, usage)
        summary = tmp / "summary.json"
        params = {"startTime": window.local(window.start_ms // 1000), "endTime": window.local(window.end_ms // 1000)}
        engine_cpu, engine_hwm = bp.run_measured(cloud, mirror.MIRROR_JOB, params, window, plugins, summary)
        want, got = mirror.ots_table(cloud), mirror.odps_table(cloud)
        diff = mirror.differences(want, got)
        if diff:
            raise SystemExit("the Delta table differs from the Tablestore table:\n" + "\n".join(diff))
        s = json.loads(summary.read_text())
        used = [json.loads(line) for line in usage.read_text().splitlines()]
        plugin_cpu = sum(u["cpu_s"] for u in used)
        engine_cpu -= plugin_cpu + sum(u["wrapper_cpu_s"] for u in used)
        by_plugin = {}
        for u in used:
            by_plugin[u["plugin"]] = by_plugin.get(u["plugin"], 0) + u["cpu_s"]
        changes = s["records"]
        result = {
            "changes": changes, "keys_in_table": len(got), "workload": work.counts,
            "elapsed_s": s["elapsed_secs"], "changes_per_s": round(changes / s["elapsed_secs"]),
            "engine_cpu_s_per_million_changes": round(engine_cpu / changes * 1e6, 2),
            "cpu_s_per_million_changes_by_plugin": {k: round(v / changes * 1e6, 2) for k, v in by_plugin.items()},
            "plugin_peak_rss_mib": round(max(u["maxrss_kib"] for u in used) / 1024, 1),
            "engine_peak_rss_mib": round(engine_hwm / 1024, 1),
            "commit_detail": s.get("commit_detail"),
        }
    finally:
        cloud.stop()
    print(json.dumps({"workload_load_s": round(load_s, 1), "result": result}, indent=1))


if __name__ == "__main__":
    main()
