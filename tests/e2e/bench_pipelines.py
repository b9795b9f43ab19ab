#!/usr/bin/env python3
"""Throughput and cost of both pipelines on localcloud (`scripts/bench-e2e`).

Writes a bulk change workload (BatchWriteRow batches of 200 rows) into `users` and
`person`, inside one window, then runs each example job through the engine with its
speed limit removed (`mbps` dropped, `concurrent` kept) and measures:

* changes/s: row changes (stream records) in the window ÷ the engine's elapsed time, in
  runs of their own with the plugins started directly (the wrappers below are Python
  programs whose start-up, ten times a job, would count in the elapsed time);
* CPU time (user + system) per million changes, in further runs of the same window
  (each under a status table of its own), of the engine process itself and of the
  plugin processes (every step and task process summed), each plugin measured exactly
  by a wrapper that waits for it with wait4; and, apart, the CPU of each plugin's step
  processes (`check`, the step session), its fixed cost per job;
* peak RSS of the engine (VmHWM sampled from /proc every 10 ms) and the largest of any
  plugin process (ru_maxrss);
* localcloud's CPU time while a timed run ran (its /proc/<pid>/stat before and
  after), the emulator serving the reads and the writes on the same cores.

Each pipeline runs `--runs` times timed and as often measured (default 3), and every
figure is the median over its runs (peak RSS: the largest): on a machine whose speed
drifts from minute to minute, one run can land in a slow one.

`--shards 4` creates the tables with four independent stream shards and runs the OSS
job with `concurrent` 4 (the MaxCompute job's `concurrent` is 7 already): four tasks.

The engine's own CPU time is its wait4 total minus what the wrappers report (their
own time and their plugin's).

Every output is checked against the rows derived from the workload log before a figure
is reported. Usage: bench_pipelines.py [--changes N] [--keys N] [--shards 1|4] [--runs N]
[--pipelines oss,odps] (binaries from $STREAMPORT_BIN_DIR).
"""

import argparse
import json
import os
import pathlib
import statistics
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
                        "wrapper_cpu_s": me.ru_utime + me.ru_stime, "maxrss_kib": ru.ru_maxrss,
                        "switches": ru.ru_nvcsw + ru.ru_nivcsw}}) + "\n")
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


def summarize(which, shards, changes_in, rows, out_bytes, elapsed, cloud_cpus, runs_done):
    """One pipeline's result dict from its timed runs (elapsed time, localcloud's CPU) and
    its measured runs (each plugin process's CPU and peak RSS, the engine's own CPU):
    medians over the runs, each run's figures beside them."""
    n = changes_in / 1e6
    per_run = []
    for run in runs_done:
        by_plugin, steps_by_plugin, rss_by_plugin, switches = {}, {}, {}, {}
        for u in run["used"]:
            name = u["plugin"]
            by_plugin[name] = by_plugin.get(name, 0) + u["cpu_s"]
            switches[name] = switches.get(name, 0) + u["switches"]
            if u["args"][0] not in ("read", "write"):
                steps_by_plugin[name] = steps_by_plugin.get(name, 0) + u["cpu_s"]
            rss_by_plugin[name] = max(rss_by_plugin.get(name, 0), u["maxrss_kib"])
        per_run.append({"by_plugin": by_plugin, "steps_by_plugin": steps_by_plugin, "rss": rss_by_plugin,
                        "switches": switches,
                        "engine_cpu_s": run["engine_cpu_s"], "engine_hwm_kib": run["engine_hwm_kib"],
                        "plugin_cpu_s": sum(u["cpu_s"] for u in run["used"]),
                        "tasks": run["summary"].get("tasks")})
    names = sorted({k for r in per_run for k in r["by_plugin"]})
    by_plugin = {k: statistics.median([r["by_plugin"].get(k, 0) for r in per_run]) for k in names}
    steps = {k: statistics.median([r["steps_by_plugin"].get(k, 0) for r in per_run]) for k in names}
    rss = {k: max(r["rss"].get(k, 0) for r in per_run) for k in names}
    engine_cpu = statistics.median([r["engine_cpu_s"] for r in per_run])
    plugin_cpu = statistics.median([r["plugin_cpu_s"] for r in per_run])
    el = statistics.median(elapsed)
    cloud_cpu = statistics.median(cloud_cpus)
    return {
        "pipeline": which, "shards": shards, "changes": changes_in, "output_rows": rows,
        "output_bytes": out_bytes, "runs": len(per_run), "elapsed_s": el,
        "elapsed_s_by_run": elapsed,
        "changes_per_s": round(changes_in / el),
        "rows_per_s": round(rows / el),
        "engine_cpu_s": round(engine_cpu, 3),
        "engine_cpu_s_per_million_changes": round(engine_cpu / n, 2),
        "plugins_cpu_s_per_million_changes": round(plugin_cpu / n, 2),
        "cpu_s_by_plugin": {k: round(v, 4) for k, v in by_plugin.items()},
        "cpu_s_per_million_by_plugin": {k: round(v / n, 3) for k, v in by_plugin.items()},
        "cpu_s_per_million_by_plugin_by_run": {k: [round(r["by_plugin"].get(k, 0) / n, 3) for r in per_run]
                                               for k in names},
        "step_processes_cpu_s_by_plugin": {k: round(v, 4) for k, v in steps.items()},
        "context_switches_by_plugin": {k: statistics.median([r["switches"].get(k, 0) for r in per_run])
                                       for k in names},
        "localcloud_cpu_s": round(cloud_cpu, 3),
        "localcloud_cpu_s_per_million_changes": round(cloud_cpu / n, 2),
        "engine_peak_rss_mib": round(max(r["engine_hwm_kib"] for r in per_run) / 1024, 1),
        "plugin_peak_rss_mib": round(max(rss.values()) / 1024, 1),
        "peak_rss_mib_by_plugin": {k: round(v / 1024, 1) for k, v in rss.items()},
        "tasks": per_run[0]["tasks"],
    }


def measure(changes, keys, shards=1, pipelines_wanted=("oss", "odps"), runs=3):
    """Writes the workload into a fresh localcloud and runs each pipeline `runs` times
    timed and `runs` times measured; a list of result dicts (see the module's docstring
    and `summarize`), plus the workload's load time."""
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
            (tmp / table).mkdir()
            # First the timed runs, with the plugins themselves (a wrapper's start-up would
            # count in the elapsed time), then the measured runs through the wrappers, each
            # under a status table of its own (the window is read again from its start);
            # the output is checked after each. Figures are medians over the runs: the
            # machine's speed drifts from minute to minute.
            elapsed, cloud_cpus, runs_done = [], [], []
            rows = None
            for k in range(runs):
                timed_summary = tmp / ("summary-timed-%s-%d.json" % (table, k))
                (tmp / table / ("timed%d" % k)).mkdir()
                cloud_cpu0 = proc_cpu_s(cloud.pid)
                run_measured(cloud, unthrottled(job, tmp / table / ("timed%d" % k), "st_timed%d" % k), params,
                             window, bins, timed_summary)
                cloud_cpus.append(proc_cpu_s(cloud.pid) - cloud_cpu0)
                got = check(cloud, ops, window) if shards == 1 else check_sharded(cloud, ops, window, table)
                assert rows is None or got == rows, (got, rows)
                rows = got
                elapsed.append(json.loads(timed_summary.read_text())["elapsed_secs"])
            for k in range(runs):
                usage = tmp / ("usage-%s-%d.jsonl" % (table, k))
                (tmp / table / ("measured%d" % k)).mkdir()
                plugins = plugin_dir(tmp / table / ("measured%d" % k), bins, usage)
                summary = tmp / ("summary-%s-%d.json" % (table, k))
                engine_cpu, engine_hwm = run_measured(cloud, unthrottled(job, tmp / table / ("measured%d" % k),
                                                                         "st_measured%d" % k),
                                                      params, window, plugins, summary)
                again = check(cloud, ops, window) if shards == 1 else check_sharded(cloud, ops, window, table)
                assert again == rows, (again, rows)
                used = [json.loads(line) for line in usage.read_text().splitlines()]
                engine_cpu -= sum(u["cpu_s"] + u["wrapper_cpu_s"] for u in used)
                runs_done.append({"used": used, "engine_cpu_s": engine_cpu, "engine_hwm_kib": engine_hwm,
                                  "summary": json.loads(summary.read_text())})
            out_bytes = None
            if table == pipelines.OSS_TABLE:
                out_bytes = sum(len(t.encode("utf-8")) for t in
                                pipelines.oss_objects(cloud, pipelines.oss_prefix(window)).values())
            results.append(summarize(which, shards, changes_in, rows, out_bytes, elapsed, cloud_cpus, runs_done))
    finally:
        cloud.stop()
    return {"workload_load_s": round(load_s, 1), "results": results}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--changes", type=int, default=100_000)
    p.add_argument("--keys", type=int, default=20_000)
    p.add_argument("--shards", type=int, default=1, choices=(1, 4),
                   help="1: the tables' single shard, one task; 4: four shards, `concurrent` 4")
    p.add_argument("--runs", type=int, default=3, help="timed and measured runs of each pipeline (medians)")
    p.add_argument("--pipelines", default="oss,odps", help="which pipelines: oss, odps or both")
    args = p.parse_args(argv)
    print(json.dumps(measure(args.changes, args.keys, args.shards, tuple(args.pipelines.split(",")), args.runs),
                     indent=1))


if __name__ == "__main__":
    main()
