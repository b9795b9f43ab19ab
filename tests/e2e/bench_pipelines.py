#!/usr/bin/env python3
"""Throughput and cost of both pipelines on localcloud (`scripts/bench-e2e`).

Writes a bulk change workload (BatchWriteRow batches of 200 rows) into `users` and
`person`, inside one window, then runs each example job through the engine with its
speed limit removed (`mbps` dropped, `concurrent` kept) and measures:

* changes/s: row changes (stream records) in the window ÷ the engine's elapsed time, in
  a run of its own with the plugins started directly (the wrappers below are Python
  programs whose start-up, ten times a job, would count in the elapsed time);
* CPU time (user + system) per million changes, in a second run of the same window
  (another status table), of the engine process itself and of the plugin processes
  (every step and task process summed), each plugin measured exactly by a wrapper that
  waits for it with wait4;
* peak RSS of the engine (VmHWM sampled from /proc every 10 ms) and the largest of any
  plugin process (ru_maxrss);
* localcloud's CPU time while the timed run ran (its /proc/<pid>/stat before and
  after), the emulator serving the reads and the writes on the same cores.

`--shards 4` creates the tables with four independent stream shards and runs the OSS
job with `concurrent` 4 (the MaxCompute job's `concurrent` is 7 already): four tasks.

The engine's own CPU time is its wait4 total minus what the wrappers report (their
own time and their plugin's).

Every output is checked against the rows derived from the workload log before a figure
is reported. Usage: bench_pipelines.py [--changes N] [--keys N] [--shards 1|4] (binaries from $STREAMPORT_BIN_DIR).
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "examples" / "workload"))
sys.path.insert(0, str(HERE))

import expected_rows as er  # noqa: E402
import pipelines  # noqa: E402
from checks import check_odps, check_oss  # noqa: E402

PLUGINS = ["reader-otsstream", "writer-oss", "writer-odps"]

# The wrapper ends with os._exit: the interpreter's teardown would run after its own
# CPU time is taken, and so count in the engine's figure (the total minus what the
# wrappers report); -S skips the site module (a third of the start-up). It starts the
# plugin with posix_spawn, as the engine does: a fork's child would pay for copying this
# interpreter's memory before its exec, about 0.45 ms per process counted as the
# plugin's.
WRAPPER = r'''#!{python} -S
import json, os, resource, sys
real = {real!r}
pid = os.posix_spawn(real, [real] + sys.argv[1:], os.environ)
_, status, ru = os.wait4(pid, 0)
me = resource.getrusage(resource.RUSAGE_SELF)
with open({out!r}, "a") as f:
    f.write(json.dumps({{"plugin": {name!r}, "args": sys.argv[1:3], "cpu_s": ru.ru_utime + ru.ru_stime,
                        "wrapper_cpu_s": me.ru_utime + me.ru_stime, "maxrss_kib": ru.ru_maxrss}}) + "\n")
os._exit(os.waitstatus_to_exitcode(status))
'''


def unthrottled(job_path, out_dir, status_table=None):
    """The job with its byte limit removed (comments are stripped on the way), and with
    `status_table` as the reader's status table when given (a window runs again from its
    start under a status table of its own)."""
    sys.path.insert(0, str(HERE.parents[1] / "examples" / "plugins"))
    import importlib.machinery
    import importlib.util
    loader = importlib.machinery.SourceFileLoader("pyjsonl", str(HERE.parents[1] / "examples" / "plugins" / "writer-pyjsonl"))
    spec = importlib.util.spec_from_loader("pyjsonl", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    doc = json.loads(mod.strip_comments(job_path.read_text()))
    conf = mod.get_key(doc, "configuration")
    setting = mod.get_key(conf, "setting")
    speed = mod.get_key(setting, "speed")
    for k in list(speed):
        if k.strip().lower() == "mbps":
            del speed[k]
    if status_table:
        mod.get_key(mod.get_key(conf, "reader"), "parameter")["statusTable"] = status_table
    out = out_dir / job_path.name
    out.write_text(json.dumps(doc, indent=1))
    return out


def plugin_dir(tmp, bins, usage_file):
    d = tmp / "plugins"
    d.mkdir()
    for name in PLUGINS:
        if not (bins / name).exists():
            continue
        w = d / name
        w.write_text(WRAPPER.format(python=sys.executable, real=str(bins / name), out=str(usage_file), name=name))
        w.chmod(0o755)
    return d


def run_measured(cloud, job, params, window, plugins, summary):
    env = dict(os.environ, **cloud.env())
    cmd = pipelines.engine_command(job, params, window, summary=summary)
    cmd[cmd.index("--plugin-dir") + 1] = str(plugins)
    proc = subprocess.Popen(cmd + ["-q"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    hwm_kib = 0
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
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read()
    if proc.returncode != 0:
        raise RuntimeError("engine exited %d: %s" % (proc.returncode, err[-3000:]))
    # The engine's rusage from wait4 includes the processes it waited for: every plugin
    # wrapper (its own time plus its plugin's), which the wrappers report.
    return ru.ru_utime + ru.ru_stime, hwm_kib


def proc_cpu_s(pid):
    """User + system CPU seconds of a running process (all its threads), from /proc."""
    fields = pathlib.Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def check_sharded(cloud, ops, window, table):
    """The output of a job of several tasks (several OSS objects), compared as multisets."""
    import collections
    if table == pipelines.OSS_TABLE:
        want, _ = pipelines.expected_oss_records(ops, window)
        got = [r for t in pipelines.oss_objects(cloud, pipelines.oss_prefix(window)).values()
               for r in pipelines.split_csv_records(t)]
        assert collections.Counter(got) == collections.Counter(want), (len(got), len(want))
        return len(got)
    got = pipelines.odps_rows(cloud, window)["pt=%s" % window.bizdate]
    want = pipelines.expected_odps_rows(ops, window)
    assert sorted(got, key=pipelines.sort_key) == sorted(want, key=pipelines.sort_key), (len(got), len(want))
    return len(got)


def measure(changes, keys, shards=1, pipelines_wanted=("oss", "odps")):
    """Writes the workload into a fresh localcloud and runs each pipeline once; a list of
    result dicts (see the module's docstring), plus the workload's load time."""
    bins = pipelines.bin_dir()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    cloud = pipelines.Localcloud(str(bins / "localcloud"))
    results = []
    try:
        if shards == 1:
            # A window of an hour, ending five minutes ago, so that the bulk load fits.
            window = pipelines.Window()
            window.start_ms = window.end_ms - 3_600_000
        else:
            import scaleout
            assert shards == 4, "the sharded tables have four shards"
            window = pipelines.Window(int(time.time()) // 3600 * 3600)
            scaleout.four_shard_tables(cloud, window)
            window.start_ms = window.end_ms - 3_600_000
        log = tmp / "ops.jsonl"
        pipelines.create_person_table(cloud)
        t0 = time.time()
        pipelines.run_workload(cloud, log, window, changes=changes, outside=0, keys=keys, bulk=True,
                               reuse_tables=shards > 1)
        load_s = time.time() - t0
        ops = er.read_log(str(log))
        oss_job = pipelines.OSS_JOB
        if shards > 1:
            import scaleout
            oss_job = scaleout.oss_job(tmp, tasks=shards)
        for which, job, params, check, table in (
            ("OSS CSV", oss_job, pipelines.oss_params(window), check_oss, pipelines.OSS_TABLE),
            ("MaxCompute", pipelines.ODPS_JOB,
             {"startTime": window.local(window.start_ms // 1000), "endTime": window.local(window.end_ms // 1000)},
             check_odps, pipelines.ODPS_TABLE),
        ):
            writer = "writer-oss" if table == pipelines.OSS_TABLE else "writer-odps"
            if ("oss" if writer == "writer-oss" else "odps") not in pipelines_wanted:
                continue
            if not (bins / writer).exists():
                results.append({"pipeline": which, "skipped": "%s is not built" % writer})
                continue
            changes_in = len(er.changes_in_window(ops, table, window.start_ms, window.end_ms))
            usage = tmp / ("usage-%s.jsonl" % table)
            (tmp / table).mkdir()
            plugins = plugin_dir(tmp / table, bins, usage)
            summary = tmp / ("summary-%s.json" % table)
            # First the timed run, with the plugins themselves (a wrapper's start-up would
            # count in the elapsed time), then the measured run through the wrappers, each
            # under a status table of its own; the output is checked after each.
            (tmp / table / "timed").mkdir()
            timed_summary = tmp / ("summary-timed-%s.json" % table)
            cloud_cpu0 = proc_cpu_s(cloud.pid)
            run_measured(cloud, unthrottled(job, tmp / table / "timed", "st_timed"), params, window, bins,
                         timed_summary)
            cloud_cpu = proc_cpu_s(cloud.pid) - cloud_cpu0
            rows = check(cloud, ops, window) if shards == 1 else check_sharded(cloud, ops, window, table)
            elapsed = json.loads(timed_summary.read_text())["elapsed_secs"]
            engine_cpu, engine_hwm = run_measured(cloud, unthrottled(job, tmp / table, "st_measured"), params,
                                                  window, plugins, summary)
            again = check(cloud, ops, window) if shards == 1 else check_sharded(cloud, ops, window, table)
            assert again == rows, (again, rows)
            out_bytes = None
            if table == pipelines.OSS_TABLE:
                out_bytes = sum(len(t.encode("utf-8")) for t in
                                pipelines.oss_objects(cloud, pipelines.oss_prefix(window)).values())
            s = json.loads(summary.read_text())
            used = [json.loads(line) for line in usage.read_text().splitlines()]
            plugin_cpu = sum(u["cpu_s"] for u in used)
            engine_cpu -= plugin_cpu + sum(u["wrapper_cpu_s"] for u in used)
            by_plugin, rss_by_plugin = {}, {}
            for u in used:
                by_plugin[u["plugin"]] = by_plugin.get(u["plugin"], 0) + u["cpu_s"]
                rss_by_plugin[u["plugin"]] = max(rss_by_plugin.get(u["plugin"], 0), u["maxrss_kib"])
            results.append({
                "pipeline": which, "shards": shards, "changes": changes_in, "output_rows": rows,
                "output_bytes": out_bytes, "elapsed_s": elapsed,
                "changes_per_s": round(changes_in / elapsed),
                "rows_per_s": round(rows / elapsed),
                "elapsed_s_through_wrappers": s["elapsed_secs"],
                "engine_cpu_s": round(engine_cpu, 3),
                "engine_cpu_s_per_million_changes": round(engine_cpu / changes_in * 1e6, 2),
                "plugins_cpu_s_per_million_changes": round(plugin_cpu / changes_in * 1e6, 2),
                "cpu_s_by_plugin": {k: round(v, 3) for k, v in by_plugin.items()},
                "cpu_s_per_million_by_plugin": {k: round(v / changes_in * 1e6, 2) for k, v in by_plugin.items()},
                "localcloud_cpu_s": round(cloud_cpu, 3),
                "localcloud_cpu_s_per_million_changes": round(cloud_cpu / changes_in * 1e6, 2),
                "engine_peak_rss_mib": round(engine_hwm / 1024, 1),
                "plugin_peak_rss_mib": round(max(u["maxrss_kib"] for u in used) / 1024, 1),
                "peak_rss_mib_by_plugin": {k: round(v / 1024, 1) for k, v in rss_by_plugin.items()},
                "tasks": s.get("tasks"),
            })
    finally:
        cloud.stop()
    return {"workload_load_s": round(load_s, 1), "results": results}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--changes", type=int, default=100_000)
    p.add_argument("--keys", type=int, default=20_000)
    p.add_argument("--shards", type=int, default=1, choices=(1, 4),
                   help="1: the tables' single shard, one task; 4: four shards, `concurrent` 4")
    args = p.parse_args(argv)
    print(json.dumps(measure(args.changes, args.keys, args.shards), indent=1))


if __name__ == "__main__":
    main()
