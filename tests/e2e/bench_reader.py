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

* the reader's CPU time (user + system, from wait4), its minor page faults (wait4's
  ru_minflt: fresh memory touched, each one a trip into the kernel), its context
  switches (ru_nvcsw + ru_nivcsw: each a sleep and a wake-up, which cost this VM
  15-20 µs of CPU each, BENCHMARKS.md) and peak RSS (VmHWM from /proc/<pid>/status,
  sampled every 10 ms);
* localcloud's CPU time during the run (utime + stime from /proc/<pid>/stat, before
  and after), i.e. what serving the reader's requests cost the emulator;
* both per million changes (the row changes of `person` in the window, from the
  workload log).

`--wrap CMD` runs the reader under CMD (e.g. `valgrind --tool=callgrind
--callgrind-out-file=reader-{n}.cg`, `{n}` the run's number): its instruction counts do
not depend on the load of the machine. `--reader PATH` (repeatable) measures other
builds on the same data, runs interleaved. `--callgrind DIR` adds one run of each
reader under valgrind's callgrind (instructions per change; the profile in DIR, for
`callgrind_annotate`); `--perf-localcloud FILE` samples the emulator with `perf record`
during the measured runs. `--output-check` runs one more read with `--format jsonl` and compares its
rows (as a multiset) with the rows derived from the workload log.

Usage: bench_reader.py [--changes N] [--keys N] [--runs N] [--wrap CMD] [--reader PATH]...
                       [--callgrind DIR] [--perf-localcloud FILE] [--output-check]
(binaries from $STREAMPORT_BIN_DIR).
"""

import argparse
import base64
import json
import os
import pathlib
import shlex
import shutil
import signal
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


def callgrind_total(path):
    """Instructions executed (the `totals:` or `summary:` line of a callgrind file)."""
    for line in path.read_text().splitlines():
        if line.startswith(("totals:", "summary:")):
            return int(line.split()[1])
    raise RuntimeError("%s has no totals line" % path)


def read_once(cloud, reader, conf, wrap=(), jsonl=False):
    cmd = list(wrap) + [str(reader), "read", "--config", str(conf)]
    if jsonl:
        cmd += ["--format", "jsonl"]
    out = subprocess.PIPE if jsonl else subprocess.DEVNULL
    before = proc_cpu_s(cloud.pid)
    t0 = time.monotonic()
    err_file = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, stdout=out, stderr=err_file)
    lines = []
    hwm_kib = 0
    if jsonl:
        lines = [json.loads(line) for line in proc.stdout]
        _, status, ru = os.wait4(proc.pid, 0)
    else:
        # Peak RSS from VmHWM: ru_maxrss would count the forked copy of this (large)
        # Python process before its exec.
        while True:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            try:
                for line in pathlib.Path("/proc/%d/status" % proc.pid).read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        hwm_kib = int(line.split()[1])
            except (OSError, ValueError, IndexError):
                pass
            time.sleep(0.01)
    err_file.seek(0)
    err = err_file.read()
    wall = time.monotonic() - t0
    served = proc_cpu_s(cloud.pid) - before
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError("reader-otsstream exited %d: %s" % (code, err.decode(errors="replace")[-3000:]))
    return {"wall_s": round(wall, 2), "reader_cpu_s": ru.ru_utime + ru.ru_stime,
            "reader_user_s": ru.ru_utime, "reader_sys_s": ru.ru_stime,
            "reader_minor_faults": ru.ru_minflt, "reader_context_switches": ru.ru_nvcsw + ru.ru_nivcsw,
            "reader_peak_rss_kib": hwm_kib, "localcloud_cpu_s": served, "lines": lines}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--changes", type=int, default=150_000)
    p.add_argument("--keys", type=int, default=30_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--wrap", default="", help="a command to run the reader under (split like a shell)")
    p.add_argument("--reader", action="append", default=[],
                   help="a reader-otsstream binary to measure (repeat to compare builds on the same data, "
                        "runs interleaved); default: the one in $STREAMPORT_BIN_DIR")
    p.add_argument("--callgrind", metavar="DIR",
                   help="then one run of each reader under callgrind, its profile written into DIR")
    p.add_argument("--perf-localcloud", metavar="FILE",
                   help="sample localcloud with `perf record -g` during the measured runs (for `perf report`)")
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
        readers = args.reader or [str(bins / "reader-otsstream")]
        runs = []
        perf = None
        if args.perf_localcloud:
            perf = subprocess.Popen(["perf", "record", "-F", "999", "-g", "-p", str(cloud.pid), "-o",
                                     args.perf_localcloud], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1)
        for reader in (r for _ in range(args.runs) for r in readers):
            conf = tmp / ("reader-%d.json" % len(runs))
            conf.write_text(json.dumps(parameter(cloud, window, "bench_status_%d" % len(runs))))
            r = read_once(cloud, reader, conf, shlex.split(args.wrap.replace("{n}", str(len(runs)))))
            if len(readers) > 1:
                r["reader"] = reader
            r.pop("lines")
            r["reader_cpu_s_per_million_changes"] = round(r["reader_cpu_s"] / changes * 1e6, 3)
            r["localcloud_cpu_s_per_million_changes"] = round(r["localcloud_cpu_s"] / changes * 1e6, 3)
            r["changes_per_s"] = round(changes / r["wall_s"])
            runs.append({k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()})
        if perf:
            perf.send_signal(signal.SIGINT)
            perf.wait()
        result = {"workload_load_s": round(load_s, 1), "table": TABLE, "changes": changes, "runs": runs}
        if args.callgrind:
            result["callgrind"] = []
            for n, reader in enumerate(readers):
                out = pathlib.Path(args.callgrind).resolve() / ("reader-%d.callgrind" % n)
                out.parent.mkdir(parents=True, exist_ok=True)
                conf = tmp / ("reader-cg-%d.json" % n)
                conf.write_text(json.dumps(parameter(cloud, window, "bench_status_cg_%d" % n)))
                read_once(cloud, reader, conf, ["valgrind", "--tool=callgrind", "--callgrind-out-file=%s" % out])
                ir = callgrind_total(out)
                result["callgrind"].append({"reader": reader, "file": str(out), "instructions": ir,
                                            "instructions_per_change": round(ir / changes)})
        if args.output_check:
            want = sorted(normal(r) for r in er.multi_version_rows(ops, TABLE, window.start_ms, window.end_ms))
            for n, reader in enumerate(readers):
                conf = tmp / ("reader-check-%d.json" % n)
                conf.write_text(json.dumps(parameter(cloud, window, "bench_status_check_%d" % n)))
                got = sorted(normal(r) for r in read_once(cloud, reader, conf, jsonl=True)["lines"])
                if got != want:
                    raise RuntimeError("%s wrote %d rows, the workload log gives %d; they differ"
                                       % (reader, len(got), len(want)))
            result["output_rows_checked"] = len(want)
        print(json.dumps(result, indent=1))
    finally:
        cloud.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
