#!/usr/bin/env python3
"""The reader alone (`scripts/bench-reader`): reader-otsstream's and localcloud's CPU per
million stream changes, on the workload of `scripts/bench-e2e`.

Loads the bench-e2e workload (BatchWriteRow batches of 200 rows into `users` and
`person`, inside one window of an hour ending five minutes ago) into a fresh
`localcloud serve`, then runs a standalone `reader-otsstream read` of `person` in
multi-version mode (the MaxCompute pipeline's reader configuration: five columns,
`isExportSequenceInfo` false) with its frames written to /dev/null, `--runs` times, each
with a status table of its own (no stored checkpoint: every shard read from its oldest
record, records filtered by time). For each run it prints:

* the reader's CPU time (user + system, from wait4) and peak RSS (ru_maxrss);
* localcloud's CPU time during the run (utime + stime from /proc/<pid>/stat, before
  and after), i.e. what serving the reader's requests cost the emulator;
* both per million changes (the row changes of `person` in the window, from the
  workload log).

`--wrap CMD` runs the reader under CMD (e.g. `valgrind --tool=callgrind
--callgrind-out-file=reader.cg`): its instruction counts do not depend on the load of
the machine. `--output-check` runs one more read with `--format jsonl` and compares its
rows (as a multiset) with the rows derived from the workload log.

Usage: bench_reader.py [--changes N] [--keys N] [--runs N] [--wrap CMD]
(binaries from $STREAMPORT_BIN_DIR).
"""

import argparse
import base64
import json
import os
import pathlib
import shlex
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "examples" / "workload"))

import expected_rows as er  # noqa: E402
import pipelines  # noqa: E402

TABLE = pipelines.ODPS_TABLE


def proc_cpu_s(pid):
    """utime + stime of a process, seconds, from /proc/<pid>/stat."""
    text = pathlib.Path("/proc/%d/stat" % pid).read_text()
    fields = text[text.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def parameter(cloud, window, status_table):
    i = cloud.info
    return {
        "endpoint": i["ots"]["endpoint"],
        "instanceName": i["ots"]["instance"],
        "accessId": i["access_key_id"],
        "accessKey": i["access_key_secret"],
        "dataTable": TABLE,
        "statusTable": status_table,
        "startTimestampMillis": window.start_ms,
        "endTimestampMillis": window.end_ms,
        "isExportSequenceInfo": False,
    }


def normal(row):
    """A row as comparable text, bytes (decoded, or JSON lines' {"bytes": …}) in one form."""
    out = []
    for v in row:
        if isinstance(v, dict) and set(v) == {"bytes"}:
            v = {"b": v["bytes"]}
        elif isinstance(v, bytes):
            v = {"b": base64.b64encode(v).decode()}
        out.append(v)
    return json.dumps(out)


def read_once(cloud, bins, conf, wrap=(), jsonl=False):
    cmd = list(wrap) + [str(bins / "reader-otsstream"), "read", "--config", str(conf)]
    if jsonl:
        cmd += ["--format", "jsonl"]
    out = subprocess.PIPE if jsonl else subprocess.DEVNULL
    before = proc_cpu_s(cloud.pid)
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE)
    lines = []
    if jsonl:
        lines = [json.loads(line) for line in proc.stdout]
    err = proc.stderr.read()
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    served = proc_cpu_s(cloud.pid) - before
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError("reader-otsstream exited %d: %s" % (code, err.decode(errors="replace")[-3000:]))
    return {"wall_s": round(wall, 2), "reader_cpu_s": ru.ru_utime + ru.ru_stime,
            "reader_user_s": ru.ru_utime, "reader_sys_s": ru.ru_stime,
            "reader_maxrss_kib": ru.ru_maxrss, "localcloud_cpu_s": served, "lines": lines}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--changes", type=int, default=150_000)
    p.add_argument("--keys", type=int, default=30_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--wrap", default="", help="a command to run the reader under (split like a shell)")
    p.add_argument("--output-check", action="store_true",
                   help="one more read as JSON lines, its line count checked against the workload log")
    args = p.parse_args(argv)
    bins = pipelines.bin_dir()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench-reader-"))
    cloud = pipelines.Localcloud(str(bins / "localcloud"))
    try:
        window = pipelines.Window()
        window.start_ms = window.end_ms - 3_600_000
        log = tmp / "ops.jsonl"
        t0 = time.time()
        pipelines.run_workload(cloud, log, window, changes=args.changes, outside=0, keys=args.keys, bulk=True)
        load_s = time.time() - t0
        ops = er.read_log(str(log))
        changes = len(er.changes_in_window(ops, TABLE, window.start_ms, window.end_ms))
        runs = []
        for n in range(args.runs):
            conf = tmp / ("reader-%d.json" % n)
            conf.write_text(json.dumps(parameter(cloud, window, "bench_status_%d" % n)))
            r = read_once(cloud, bins, conf, shlex.split(args.wrap))
            r.pop("lines")
            r["reader_cpu_s_per_million_changes"] = round(r["reader_cpu_s"] / changes * 1e6, 3)
            r["localcloud_cpu_s_per_million_changes"] = round(r["localcloud_cpu_s"] / changes * 1e6, 3)
            r["changes_per_s"] = round(changes / r["wall_s"])
            runs.append({k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()})
        result = {"workload_load_s": round(load_s, 1), "table": TABLE, "changes": changes, "runs": runs}
        if args.output_check:
            conf = tmp / "reader-check.json"
            conf.write_text(json.dumps(parameter(cloud, window, "bench_status_check")))
            got = sorted(normal(r) for r in read_once(cloud, bins, conf, jsonl=True)["lines"])
            want = sorted(normal(r) for r in er.multi_version_rows(ops, TABLE, window.start_ms, window.end_ms))
            if got != want:
                raise RuntimeError("the reader wrote %d rows, the workload log gives %d; they differ"
                                   % (len(got), len(want)))
            result["output_rows_checked"] = len(got)
        print(json.dumps(result, indent=1))
    finally:
        cloud.stop()


if __name__ == "__main__":
    main()
