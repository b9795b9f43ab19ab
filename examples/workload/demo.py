#!/usr/bin/env python3
"""The demo behind `scripts/demo`: the documented pipelines against localcloud.

Starts localcloud; creates the MaxCompute table person (the OSS bucket exists); writes a
change workload into the Tablestore tables `users` and `person` (stream enabled),
placed in the five-minute window that ended five minutes ago by moving the emulator's
clock; runs examples/jobs/otsstream-to-oss.json, otsstream-to-odps.json and
otsstream-to-oss-parquet.json (read back with pyarrow) through the engine, and the
mirror (otsstream-to-odps-mirror.json: a Delta table kept equal to a Tablestore table); shows each summary, where the output is and a sample of it, checks it against
the rows derived from the workload's log, saves everything under the output directory
and stops localcloud.
"""

import argparse
import json
import pathlib
import shutil
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import expected_rows  # noqa: E402
import mirror  # noqa: E402
import pipelines  # noqa: E402


def say(text=""):
    print(text, flush=True)


def heading(text):
    say("\n=== %s" % text)


def show_summary(path):
    try:
        s = json.loads(pathlib.Path(path).read_text())
    except (OSError, ValueError):
        return
    keys = [k for k in ("outcome", "records", "bytes", "elapsed_secs", "records_per_sec", "dirty_records", "tasks") if k in s]
    say("summary: " + ", ".join("%s=%s" % (k, s[k]) for k in keys) + "  (full: %s)" % path)


def oss_pipeline(cloud, window, ops, out, args):
    heading("Tablestore Stream -> OSS (CSV, single_version_and_update_only)")
    params = pipelines.oss_params(window)
    summary = out / "oss.summary.json"
    say("$ engine run examples/jobs/otsstream-to-oss.json --datasources examples/datasources.json "
        + " ".join("-p %s=%s" % kv for kv in params.items()))
    pipelines.run_engine(cloud, pipelines.OSS_JOB, params, window, summary=summary, quiet=False)
    show_summary(summary)
    objects = pipelines.oss_objects(cloud, "tablestore/")
    want, _ = pipelines.expected_oss_records(ops, window)
    got = []
    for key, text in sorted(objects.items()):
        local = out / "oss" / key
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text(text, encoding="utf-8")
        say("oss://%s/%s (%d bytes), saved as %s" % (cloud.info["oss"]["bucket"], key, len(text.encode()), local))
        records = pipelines.split_csv_records(text)
        got += records
        for line in records[:args.sample]:
            say("  " + line.rstrip("\n").replace("\n", "\\n"))
        if len(records) > args.sample:
            say("  … %d more" % (len(records) - args.sample))
    match = got == want
    say("%d CSV records; the rows derived from the workload log: %d — %s" % (
        len(got), len(want), "identical" if match else "DIFFERENT"))
    return match


def parquet_pipeline(cloud, window, ops, out, args):
    heading("Tablestore Stream -> OSS (Parquet partitioned by hour, read back with pyarrow)")
    params = pipelines.oss_params(window)
    summary = out / "parquet.summary.json"
    say("$ streamport run examples/jobs/otsstream-to-oss-parquet.json --datasources examples/datasources.json "
        + " ".join("-p %s=%s" % kv for kv in params.items()))
    pipelines.run_engine(cloud, pipelines.PARQUET_JOB, params, window, summary=summary, quiet=False)
    show_summary(summary)
    objects = pipelines.parquet_objects(cloud, "datalake/")
    want = pipelines.expected_parquet_rows(ops, window)
    got = []
    for key, data in sorted(objects.items()):
        local = out / "oss" / key
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(data)
        table = pipelines.parquet_table(data)
        say("oss://%s/%s (%d bytes), saved as %s" % (cloud.info["oss"]["bucket"], key, len(data), local))
        say("  schema: " + ", ".join("%s %s" % (f.name, f.type) for f in table.schema))
        rows = [list(r.values()) for r in table.to_pylist()]
        got += rows
        for row in rows[:args.sample]:
            say("  " + " | ".join("NULL" if v is None else repr(v) for v in row))
        if len(rows) > args.sample:
            say("  … %d more" % (len(rows) - args.sample))
    match = got == want
    say("%d Parquet rows; the rows derived from the workload log: %d — %s" % (
        len(got), len(want), "identical" if match else "DIFFERENT"))
    return match


def odps_pipeline(cloud, window, ops, out, args):
    heading("Tablestore Stream -> MaxCompute (multi-version, person partitioned by pt)")
    params = pipelines.odps_params()
    summary = out / "odps.summary.json"
    say("$ engine run examples/jobs/otsstream-to-odps.json --datasources examples/datasources.json "
        "--schedule-time %s " % window.schedule_time
        + " ".join("-p %s='%s'" % kv for kv in params.items()))
    pipelines.run_engine(cloud, pipelines.ODPS_JOB, params, window, summary=summary, quiet=False)
    show_summary(summary)
    parts = pipelines.odps_rows(cloud, window)
    want = pipelines.expected_odps_rows(ops, window)
    for spec, rows in parts.items():
        local = out / "odps" / ("person.%s.jsonl" % spec.replace("=", "_"))
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        say("table person partition %s: %d rows, saved as %s" % (spec, len(rows), local))
        say("  id | colname | version | colvalue | optype | sequenceinfo")
        for r in rows[:args.sample]:
            say("  " + " | ".join("NULL" if v is None else str(v).replace("\n", "\\n") for v in r))
        if len(rows) > args.sample:
            say("  … %d more" % (len(rows) - args.sample))
    got = parts.get("pt=%s" % window.bizdate, [])
    match = sorted(got, key=pipelines.sort_key) == sorted(want, key=pipelines.sort_key) and len(parts) == 1
    say("%d rows; the rows derived from the workload log: %d — %s" % (
        len(got), len(want), "identical" if match else "DIFFERENT"))
    return match


def mirror_pipeline(cloud, window, ops, out, args):
    heading("Tablestore Stream -> MaxCompute mirror (row_change -> Delta table upserts)")
    windows = mirror.windows(2)
    mirror.create_tables(cloud, windows[0])
    say(mirror.MIRROR_DDL)
    work = mirror.Workload(cloud, seed=5, keys=40)
    for w in windows:
        work.run(w, max(20, args.changes // 4))
    say("workload in two windows on Tablestore table mirror: %s" % ", ".join(
        "%s %d" % kv for kv in work.counts.items()))
    for i, w in enumerate(windows):
        summary = out / ("mirror.%d.summary.json" % i)
        say("$ engine run examples/jobs/otsstream-to-odps-mirror.json --datasources examples/datasources.json "
            "--schedule-time %s " % w.schedule_time
            + " ".join("-p %s='%s'" % kv for kv in pipelines.odps_params().items()))
        mirror.run_window(cloud, w, summary=summary)
        show_summary(summary)
        detail = json.loads(summary.read_text()).get("commit_detail")
        if detail:
            say("commit: %s" % detail)
    want, got = mirror.ots_table(cloud), mirror.odps_table(cloud)
    local = out / "mirror.jsonl"
    local.write_text("".join(json.dumps({"key": list(k), "columns": {c: (v.hex() if isinstance(v, bytes) else v)
                                                                      for c, v in got[k].items()}}) + "\n"
                             for k in sorted(got)), encoding="utf-8")
    say("Delta table mirror (pyodps, SELECT * FROM mirror): %d rows, saved as %s" % (len(got), local))
    for k in sorted(got)[:args.sample]:
        say("  %s | %s" % (k, got[k]))
    diff = mirror.differences(want, got)
    say("Tablestore table mirror (tablestore SDK, GetRange): %d rows — %s" % (
        len(want), "identical, row for row and cell for cell" if not diff else "DIFFERENT:\n  " + "\n  ".join(diff)))
    return not diff


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", default=str(pipelines.WORKSPACE / "target" / "demo"), help="output directory")
    p.add_argument("--changes", type=int, default=300, help="row changes inside the window")
    p.add_argument("--sample", type=int, default=8, help="lines of output to show")
    args = p.parse_args(argv)
    out = pathlib.Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)

    heading("starting localcloud (Tablestore, OSS, MaxCompute emulators)")
    cloud = pipelines.Localcloud()
    ok = True
    try:
        for svc in ("ots", "oss", "odps"):
            say("%-5s %s" % (svc, cloud.info[svc]["endpoint"]))
        window = pipelines.Window()
        say("schedule time %s: window [%s, %s) (start_time=$[yyyymmddhh24miss-10/24/60], "
            "end_time=$[yyyymmddhh24miss-5/24/60]); bizdate %s" % (
                window.schedule_time, window.local(window.start_ms // 1000),
                window.local(window.end_ms // 1000), window.bizdate))

        heading("creating the MaxCompute table person (pyodps)")
        pipelines.create_person_table(cloud)
        say(pipelines.PERSON_DDL)

        heading("writing the change workload (tablestore SDK) into users and person")
        log = out / "workload.ops.jsonl"
        pipelines.run_workload(cloud, log, window, changes=args.changes)
        ops = expected_rows.read_log(str(log))
        changes = [o for o in ops if o["op"] in ("put", "update", "delete")]
        by_phase = {ph: sum(1 for o in changes if o["phase"] == ph) for ph in ("before", "in", "after")}
        say("%d row changes (%d before the window, %d inside, %d after); log: %s" % (
            len(changes), by_phase["before"], by_phase["in"], by_phase["after"], log))

        for name, pipeline in (("OSS", oss_pipeline), ("MaxCompute", odps_pipeline),
                               ("OSS Parquet", parquet_pipeline), ("MaxCompute mirror", mirror_pipeline)):
            try:
                ok &= pipeline(cloud, window, ops, out, args)
            except Exception as e:  # show the other pipeline anyway
                ok = False
                say("the %s pipeline failed: %s" % (name, e))
    finally:
        heading("stopping localcloud")
        cloud.stop()
    say("\nEverything is in %s" % out)
    return 0 if ok else 1


if __name__ == "__main__":
    t0 = time.time()
    code = main()
    print("(%.1f s)" % (time.time() - t0))
    sys.exit(code)
