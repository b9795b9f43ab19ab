#!/usr/bin/env python3
"""Throughput of the scale-out simulation (issue 20) with 1, 2 and 4 task processes.

One localcloud, the two tables with four independent stream shards
(`scaleout.four_shard_tables`) and one bulk workload in a one-hour window; then for each
pipeline and each process count P: `streamport plan --tasks 4` (a new plan location), the four `streamport task` processes with at most P at
once (each in its own working directory, sharing only the plan in localcloud OSS), and
`streamport commit`. No kills or faults, and no speed limit (the jobs' `mbps` removed). Reported: the wall time of each phase, and
changes/s = row changes in the window ÷ (plan + tasks + commit). The committed output
is checked against the rows derived from the workload log before a figure is reported.

Usage: bench_scaleout.py [--changes N] [--keys N] [--processes 1,2,4]
(binaries from $STREAMPORT_BIN_DIR).
"""

import argparse
import collections
import pathlib
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "examples" / "workload"))
sys.path.insert(0, str(HERE))

import expected_rows as er  # noqa: E402
import pipelines  # noqa: E402
import scaleout  # noqa: E402


def run_tasks(sim, processes):
    pending, running = list(range(4)), []
    while pending or running:
        while pending and len(running) < processes:
            running.append(sim.start_task(pending.pop(0))[0])
        time.sleep(0.005)
        for proc in list(running):
            if proc.poll() is not None:
                running.remove(proc)
                err = proc.stderr.read()
                proc.stderr.close()
                if proc.returncode != 0:
                    raise SystemExit("a task failed:\n" + err[-3000:])


def unthrottled(job, tmp, name):
    """The job with its `mbps` line removed (no speed limit)."""
    lines = [line for line in job.read_text().splitlines(keepends=True) if '"mbps"' not in line]
    assert len(lines) == len(job.read_text().splitlines()) - 1
    out = tmp / name
    out.write_text("".join(lines))
    return out


def workload(cloud, changes, keys, tmp):
    """Both tables with four shards and one bulk workload in a one-hour window."""
    window = pipelines.Window(int(time.time()) // 3600 * 3600)
    scaleout.four_shard_tables(cloud, window)
    pipelines.create_person_table(cloud)
    log = tmp / "ops.jsonl"
    window.start_ms = window.end_ms - 3600 * 1000
    pipelines.run_workload(cloud, log, window, changes=changes, outside=5, keys=keys, seed=1,
                           bulk=True, reuse_tables=True)
    return window, er.read_log(str(log))


def one(cloud, window, ops, which, processes, tmp):
    """One window of `which` planned, run with `processes` task processes, committed
    (each run replaces the previous run's output: the jobs truncate)."""
    if which == "oss":
        job = unthrottled(scaleout.oss_job(tmp), tmp, "oss-unthrottled.json")
        params, table = pipelines.oss_params(window), pipelines.OSS_TABLE
    else:
        job, params, table = unthrottled(pipelines.ODPS_JOB, tmp, "odps-unthrottled.json"), {
            "startTime": window.local(window.start_ms // 1000),
            "endTime": window.local(window.end_ms // 1000)}, pipelines.ODPS_TABLE
    in_window = len(er.changes_in_window(ops, table, window.start_ms, window.end_ms))
    sim = scaleout.Simulation(cloud, job, params, window, tmp / ("pods-%s-%d" % (which, processes)),
                              "bench-%s-%d" % (which, processes))
    t0 = time.monotonic()
    planned = sim.plan(tasks=4)
    t1 = time.monotonic()
    run_tasks(sim, processes)
    t2 = time.monotonic()
    code, summary, err = sim.commit()
    t3 = time.monotonic()
    assert planned["tasks"] == 4 and code == 0, (planned, err[-2000:])
    if which == "oss":
        want, _ = pipelines.expected_oss_records(ops, window)
        got = [r for t in pipelines.oss_objects(cloud, pipelines.oss_prefix(window)).values()
               for r in pipelines.split_csv_records(t)]
        assert collections.Counter(got) == collections.Counter(want)
    else:
        got = pipelines.odps_rows(cloud, window)["pt=%s" % window.bizdate]
        want = pipelines.expected_odps_rows(ops, window)
        assert sorted(got, key=pipelines.sort_key) == sorted(want, key=pipelines.sort_key)
    return {"pipeline": which, "processes": processes, "changes": in_window, "rows": len(got),
            "plan_s": t1 - t0, "tasks_s": t2 - t1, "commit_s": t3 - t2, "total_s": t3 - t0}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--changes", type=int, default=200000)
    p.add_argument("--keys", type=int, default=50000)
    p.add_argument("--processes", default="1,2,4")
    p.add_argument("--pipelines", default="oss,odps")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = pathlib.Path(d)
        cloud = pipelines.Localcloud()
        try:
            window, ops = workload(cloud, args.changes, args.keys, tmp)
            results = [one(cloud, window, ops, which, int(n), tmp)
                       for which in args.pipelines.split(",") for n in args.processes.split(",")]
        finally:
            cloud.stop()
    print("| pipeline | task processes | changes | output rows | plan | tasks | commit | total | changes/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print("| %s | %d | %d | %d | %.2f s | %.2f s | %.2f s | %.2f s | %d |" % (
            r["pipeline"], r["processes"], r["changes"], r["rows"], r["plan_s"], r["tasks_s"],
            r["commit_s"], r["total_s"], r["changes"] / r["total_s"]))


if __name__ == "__main__":
    main()
