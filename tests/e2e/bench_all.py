#!/usr/bin/env python3
"""The whole benchmark set in one table (`scripts/bench`; BENCHMARKS.md, "Summary table").

Sections, each printed as rows of one Markdown table (measure | value | unit | how):

* **pipe**: `reader-stream` frames (5 columns, 43 wire bytes a record) moved by
  - `cat frames | cat > /dev/null` (the floor of any pipe);
  - the engine alone: a reader that is `cat frames` and a writer that is
    `cat > /dev/null` (plus its recorded hello and done), the engine forwarding between
    them with 1 channel: what the engine costs against `cat` of the same bytes;
  - the direct pipe `reader-stream read | writer-stream write` and the same two plugins
    through the engine (1 channel): engine ÷ direct pipe.
  The four measures run in turn, N rounds, so each ratio compares runs of the same
  minutes; best wall time of each; CPU = user + system of every process of the run (wait4),
  and for the engine runs the engine's own CPU (the total minus what the plugins used,
  each plugin timed by /usr/bin/time).
* **empty job**: wall time of a job that moves no record (reader-misbehave `records: 0`),
  by hyperfine when installed (else the best of N runs), and its CPU.
* **pipelines**: tests/e2e/bench_pipelines.py on localcloud: Stream → OSS CSV and Stream →
  MaxCompute with one task (the tables' one shard), and again with four shards and four
  tasks; changes/s, each plugin's CPU per unit of work and peak RSS, the engine's own CPU,
  localcloud's CPU, each the median of three runs (one with --quick), the runs shown
  beside it; then each writer alone (`scripts/bench-writers`, not with --quick).
* **machine** (always): the CPU of the same fixed work, compute-bound (MD5),
  memory-bound (copies) and wake-up-bound (pipe round trips between two processes), at
  the start and at the end of the run: how fast the machine was in those minutes, to
  read the other rows by.

Usage: bench_all.py [--quick] [--records N] [--runs N] [--changes N] [--keys N] [--sections pipe,empty,pipelines]
[--compare DIR] (the empty job of another build's binaries too, runs interleaved)
(binaries from $STREAMPORT_BIN_DIR). `--quick` uses small sizes (seconds on a debug
build): its figures say only that every measure runs.
"""

import argparse
import json
import os
import pathlib
import resource
import shutil
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "examples" / "workload"))
sys.path.insert(0, str(HERE))

import bench_pipelines  # noqa: E402
import pipelines  # noqa: E402

COLUMNS = [{"type": "long", "sequence": 0}, {"type": "string", "value": "hello, benchmark"},
           {"type": "double", "value": "3.25"}, {"type": "date", "value": "2024-01-01 00:00:00"},
           {"type": "bool", "value": "true"}]
PREAMBLE_LEN = 12


def run_timed(cmd, **kw):
    """Runs `cmd` (a list, or a string for bash -c); (wall s, CPU s of it and every
    descendant it waited for)."""
    if isinstance(cmd, str):
        cmd = ["bash", "-c", cmd]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError("%s failed: %s" % (cmd, err[-2000:]))
    return wall, ru.ru_utime + ru.ru_stime


def best_of(runs, cmd, before=None):
    best = None
    for _ in range(runs):
        if before:
            before()
        wall, cpu = run_timed(cmd)
        if best is None or wall < best[0]:
            best = (wall, cpu)
    return best


def write_script(path, text):
    path.write_text(text)
    path.chmod(0o755)


def frame_end(data, start):
    """The offset just past the frame starting at `start`."""
    length = int.from_bytes(data[start:start + 4], "big")
    return start + 4 + length + 4


class PipeBench:
    """The pipe section's files: configs, jobs, the frames, and plugin wrappers."""

    def __init__(self, bins, tmp, records):
        self.bins, self.tmp, self.records = bins, tmp, records
        self.reader, self.writer = bins / "reader-stream", bins / "writer-stream"
        (tmp / "r.json").write_text(json.dumps({"sliceRecordCount": records, "column": COLUMNS}))
        (tmp / "w.json").write_text(json.dumps({"print": False}))
        self.frames = tmp / "frames.bin"
        with open(self.frames, "wb") as out:
            subprocess.run([str(self.reader), "read", "--config", str(tmp / "r.json")], stdout=out,
                           stderr=subprocess.DEVNULL, check=True)
        self.bytes = self.frames.stat().st_size
        self.plugins = tmp / "plugins"
        self.plugins.mkdir()
        self.usage = tmp / "usage"
        # The timed plugins: the real ones under /usr/bin/time (their CPU is subtracted
        # from the engine's total).
        for name, real in (("reader-stream", self.reader), ("writer-stream", self.writer)):
            write_script(self.plugins / name, '#!/bin/sh\nexec /usr/bin/time -a -o "%s" -f "%%U %%S %%M" "%s" "$@"\n'
                         % (self.usage, real))
        # writer-capture records what writer-stream answers on a task's stdout.
        self.captured = tmp / "writer-out.bin"
        write_script(self.plugins / "writer-capture", '#!/bin/sh\nif [ "$1" = write ]; then\n'
                     '  "%s" "$@" > "%s"; st=$?; cat "%s"; exit $st\nfi\nexec "%s" "$@"\n'
                     % (self.writer, self.captured, self.captured, self.writer))
        self.job(tmp / "job-stream.json", "stream", "stream")
        self.job(tmp / "job-capture.json", "stream", "capture")
        self.job(tmp / "job-cat.json", "cat", "discard")
        self.engine = bins / "engine"
        # One run with the real writer, recording its answer (hello … done).
        run_timed([str(self.engine), "run", str(tmp / "job-capture.json"), "-q", "--plugin-dir", str(self.plugins)])
        data = self.captured.read_bytes()
        hello_end = frame_end(data, PREAMBLE_LEN)
        (tmp / "writer-hello.bin").write_bytes(data[:hello_end])
        (tmp / "writer-rest.bin").write_bytes(data[hello_end:])
        # reader-cat: `cat frames` for a task, reader-stream for the job's steps;
        # writer-discard: its hello, `cat > /dev/null`, the rest of its answer.
        write_script(self.plugins / "reader-cat", '#!/bin/sh\nif [ "$1" = read ]; then\n'
                     '  exec /usr/bin/time -a -o "%s" -f "%%U %%S %%M" cat "%s"\nfi\nexec "%s" "$@"\n'
                     % (self.usage, self.frames, self.reader))
        write_script(self.plugins / "writer-discard", '#!/bin/sh\nif [ "$1" = write ]; then\n'
                     '  cat "%s"\n  /usr/bin/time -a -o "%s" -f "%%U %%S %%M" cat > /dev/null\n'
                     '  exec cat "%s"\nfi\nexec "%s" "$@"\n'
                     % (tmp / "writer-hello.bin", self.usage, tmp / "writer-rest.bin", self.writer))

    def job(self, path, reader, writer):
        path.write_text(json.dumps({"job": {"setting": {"speed": {"channel": 1}}, "content": [{
            "reader": {"name": reader, "parameter": {"sliceRecordCount": self.records, "column": COLUMNS}},
            "writer": {"name": writer, "parameter": {"print": False}}}]}}))

    def clear_usage(self):
        self.usage.unlink(missing_ok=True)

    def plugin_usage(self):
        """(CPU s, peak RSS KiB) of the timed plugin processes of the last run."""
        lines = self.usage.read_text().split("\n") if self.usage.exists() else []
        cpu, rss = 0.0, 0
        for line in lines:
            parts = line.split()
            if len(parts) == 3:
                cpu += float(parts[0]) + float(parts[1])
                rss = max(rss, int(parts[2]))
        return cpu, rss

    def engine_run(self, runs, job):
        """Best of `runs` engine runs: (wall, total CPU, the engine's own CPU)."""
        best = None
        for _ in range(runs):
            self.clear_usage()
            wall, cpu = run_timed([str(self.engine), "run", str(self.tmp / job), "-q", "--plugin-dir",
                                   str(self.plugins)])
            plugin_cpu, _ = self.plugin_usage()
            if best is None or wall < best[0]:
                best = (wall, cpu, cpu - plugin_cpu)
        return best


def pipe_section(bins, tmp, records, runs, rows):
    b = PipeBench(bins, tmp, records)
    mb = b.bytes / 1e6
    # The four measures take turns, run after run, so that each ratio compares runs
    # made in the same minutes of a machine whose speed drifts; the best of each is kept.
    best = {}
    for _ in range(runs):
        for name, measure in (
                ("cat", lambda: best_of(1, "cat '%s' | cat > /dev/null" % b.frames)),
                ("alone", lambda: b.engine_run(1, "job-cat.json")),
                ("direct", lambda: best_of(1, "'%s' read --config '%s' 2>/dev/null | '%s' write --config '%s'"
                                           % (b.reader, tmp / "r.json", b.writer, tmp / "w.json"))),
                ("engine", lambda: b.engine_run(1, "job-stream.json"))):
            got = measure()
            if name not in best or got[0] < best[name][0]:
                best[name] = got
    cat_wall, cat_cpu = best["cat"]
    alone_wall, alone_cpu, alone_own = best["alone"]
    direct_wall, direct_cpu = best["direct"]
    eng_wall, eng_cpu, eng_own = best["engine"]
    how = "best of %d, the four measures in turn; %d records, %.1f MB of frames" % (runs, records, mb)
    rows += [
        ("pipe: cat frames | cat", mb / cat_wall, "MB/s", "%s; CPU %.2f s" % (how, cat_cpu)),
        ("pipe: cat → engine → cat (engine alone)", mb / alone_wall, "MB/s",
         "%s; CPU %.2f s, the engine's own %.2f s" % (how, alone_cpu, alone_own)),
        ("pipe: engine alone ÷ cat", 100 * cat_wall / alone_wall, "%", "throughput ratio (goal ≥ 70 %)"),
        ("pipe: reader-stream | writer-stream (direct)", records / direct_wall, "records/s",
         "%s; CPU %.2f s" % (how, direct_cpu)),
        ("pipe: reader-stream → engine → writer-stream", records / eng_wall, "records/s",
         "%s; CPU %.2f s, the engine's own %.2f s" % (how, eng_cpu, eng_own)),
        ("pipe: engine ÷ direct pipe", 100 * direct_wall / eng_wall, "%", "throughput ratio (goal ≥ 100 %)"),
        ("pipe: engine's own CPU per GB forwarded", eng_own / (b.bytes / 1e9), "s/GB",
         "reader-stream → engine → writer-stream run"),
    ]


def empty_section(bins, tmp, runs, rows, compare=None):
    job = tmp / "empty.json"
    job.write_text(json.dumps({"job": {"content": [{"reader": {"name": "misbehave", "parameter": {"records": 0}},
                                                    "writer": {"name": "misbehave", "parameter": {}}}]}}))

    def command(d):
        return [str(d / "engine"), "run", str(job), "-q", "--plugin-dir", str(d)]

    if compare:
        # Two builds, their runs interleaved (the machine's drift hits both alike).
        timed = {d: [] for d in (compare, bins)}
        for _ in range(runs):
            for d in timed:
                timed[d].append(run_timed(command(d)))
        for d, label in ((compare, "compared build"), (bins, "this build")):
            walls = sorted(w for w, _ in timed[d])
            cpus = sorted(c for _, c in timed[d])
            how = "%s (%s); %d runs interleaved with the other build" % (label, d, runs)
            rows += [
                ("empty job: wall, median, %s" % label, walls[len(walls) // 2] * 1e3, "ms",
                 "%s; min %.1f ms" % (how, walls[0] * 1e3)),
                ("empty job: CPU, median, %s" % label, cpus[len(cpus) // 2] * 1e3, "ms",
                 "%s (wait4: the engine and its plugins)" % how),
            ]
        return
    cmd = command(bins)
    cpus = []
    for _ in range(max(3, runs // 3)):
        cpus.append(run_timed(cmd)[1])
    cpu = sorted(cpus)[len(cpus) // 2]
    hyperfine = shutil.which("hyperfine")
    if hyperfine:
        out = tmp / "hyperfine.json"
        subprocess.run([hyperfine, "-N", "--warmup", "3", "--runs", str(runs), "--export-json", str(out),
                        " ".join(cmd)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        r = json.loads(out.read_text())["results"][0]
        median, low, how = r["median"], r["min"], "hyperfine -N, %d runs" % runs
    else:
        walls = sorted(run_timed(cmd)[0] for _ in range(runs))
        median, low, how = walls[len(walls) // 2], walls[0], "%d runs (hyperfine not installed)" % runs
    rows += [
        ("empty job: wall, median", median * 1e3, "ms", "%s; min %.1f ms (goal < 15 ms)" % (how, low * 1e3)),
        ("empty job: CPU, engine and plugins", cpu * 1e3, "ms", "median of %d runs (wait4)" % len(cpus)),
    ]


def pipeline_rows(result, label, rows):
    r = result
    n = r["changes"] / 1e6
    by = r["cpu_s_by_plugin"]
    by_run = r["cpu_s_per_million_by_plugin_by_run"]
    steps = r["step_processes_cpu_s_by_plugin"]
    rss = r["peak_rss_mib_by_plugin"]
    med = "median of %d runs" % r["runs"]

    def runs_of(name, scale=1.0):
        return "runs " + " ".join("%.2f" % (v * scale) for v in by_run.get(name, []))

    how = "%d changes, %d rows, %s tasks; %s (%s s)" % (
        r["changes"], r["output_rows"], r.get("tasks"), med, " ".join("%.3f" % e for e in r["elapsed_s_by_run"]))
    rows.append(("%s: changes/s" % label, r["changes_per_s"], "changes/s", how))
    rows.append(("%s: engine's own CPU per M changes" % label, r["engine_cpu_s_per_million_changes"], "s/M",
                 "%s; engine peak RSS %.1f MiB" % (med, r["engine_peak_rss_mib"])))
    rows.append(("%s: reader-otsstream CPU per M changes" % label, by.get("reader-otsstream", 0) / n, "s/M",
                 "%s (%s); its check and step session %.1f ms of it; peak RSS %.1f MiB"
                 % (med, runs_of("reader-otsstream"), steps.get("reader-otsstream", 0) * 1e3,
                    rss.get("reader-otsstream", 0))))
    if "writer-oss" in by:
        gb = (r["output_bytes"] or 0) / 1e9
        rows.append(("%s: writer-oss CPU per GB of CSV" % label, by["writer-oss"] / gb if gb else 0, "s/GB",
                     "%s (%s); %.1f MB of CSV; peak RSS %.1f MiB"
                     % (med, runs_of("writer-oss", n / gb if gb else 0), gb * 1e3, rss.get("writer-oss", 0))))
    if "writer-odps" in by:
        m_rows = r["output_rows"] / 1e6
        rows.append(("%s: writer-odps CPU per M rows" % label, by["writer-odps"] / m_rows, "s/M",
                     "%s (%s); peak RSS %.1f MiB" % (med, runs_of("writer-odps", n / m_rows),
                                                     rss.get("writer-odps", 0))))
    rows.append(("%s: localcloud CPU per M changes" % label, r["localcloud_cpu_s_per_million_changes"], "s/M",
                 "%s; %.2f s while the job ran" % (med, r["localcloud_cpu_s"])))


def pipelines_section(changes, keys, rows, runs=3):
    one = bench_pipelines.measure(changes, keys, shards=1, runs=runs)
    four = bench_pipelines.measure(changes, keys, shards=4, runs=runs)
    by_name = {}
    for shards, got in ((1, one), (4, four)):
        for r in got["results"]:
            if "skipped" in r:
                raise SystemExit("%s: %s" % (r["pipeline"], r["skipped"]))
            name = "OSS" if r["pipeline"] == "OSS CSV" else "MaxCompute"
            label = "Stream → %s, %s" % (name, "1 task" if shards == 1 else "4 shards, 4 tasks")
            pipeline_rows(r, label, rows)
            by_name[(name, shards)] = r
    for name in ("OSS", "MaxCompute"):
        a, b = by_name[(name, 1)], by_name[(name, 4)]
        rows.append(("Stream → %s: 4 tasks ÷ 1 task" % name, b["changes_per_s"] / a["changes_per_s"], "×",
                     "changes/s scaling on %d CPUs" % os.cpu_count()))


def perf_commands(rows, quick):
    """The plugin helpers' own commands, when this checkout has them: `scripts/bench-writers`
    (each writer alone against localcloud, on target/release; not in --quick, which
    measures the binaries of $STREAMPORT_BIN_DIR).

    Each case runs WRITER_RUNS times and the median of the runs after the first is
    reported, the first one's figure beside it: on this VM the first run of a series
    costs the writer up to 1.8 times the CPU of the runs after it (and localcloud up to
    3.5 times), though each run has a fresh localcloud (`BENCHMARKS.md`, issue 19's
    seventh and ninth rounds: the kernel zeroing fresh pages was most of localcloud's
    extra)."""
    writers = HERE.parents[1] / "scripts" / "bench-writers"
    if quick or not writers.exists():
        return
    out = subprocess.run([str(writers), "--no-build", "--json", "--runs", str(WRITER_RUNS)],
                         capture_output=True, text=True, check=True)
    by_case = {}
    for line in out.stdout.splitlines():
        if line.startswith("{"):
            r = json.loads(line)
            by_case.setdefault((r["writer"], r.get("case", "")), []).append(r)
    for (writer, case), runs in by_case.items():
        first, rest = runs[0], runs[1:] or runs
        label = "%s alone (%s)" % (writer, case)

        def median(key):
            values = sorted(r[key] for r in rest)
            return values[len(values) // 2]

        peak = max(r.get("writer_peak_rss_MiB", 0) for r in runs)

        def how(key):
            return "scripts/bench-writers; %s records, median of runs 2-%d (run 1: %s); peak RSS %.1f MiB" % (
                first.get("records"), len(runs), number(first[key]), peak)

        for key, cloud_key, unit, what, cloud_what in (
                ("writer_cpu_s_per_GB", "localcloud_cpu_s_per_GB", "s/GB", "GB of CSV", "GB"),
                ("writer_cpu_s_per_M_rows", "localcloud_cpu_s_per_M_rows", "s/M", "M rows", "M rows")):
            if key in first:
                rows.append(("%s: CPU per %s" % (label, what), median(key), unit, how(key)))
                rows.append(("%s: localcloud CPU per %s" % (label, cloud_what), median(cloud_key), unit,
                             how(cloud_key)))


WRITER_RUNS = 4

# The machine's own speed, for reading the other rows: the same fixed work in a child
# process (its CPU from wait4) at the start and at the end of the run. On a VM whose
# speed drifts, a plugin's figure that moved with these did not change itself.
SPEED_PROBES = (
    # (row, code, work per round, its unit, rounds)
    ("machine: MD5 by OpenSSL through hashlib (compute-bound)",
     "import hashlib\nb, h = bytes(range(256)) * 8192, hashlib.md5()\nfor _ in range(ROUNDS):\n    h.update(b)",
     2, "MiB", 128),
    ("machine: copies between two 32 MiB buffers (memory-bound)",
     "a, b = bytearray(32 << 20), bytearray(32 << 20)\nfor _ in range(ROUNDS):\n    b[:] = a",
     32, "MiB", 32),
    # A byte sent back and forth between two processes through two pipes: each trip
    # wakes a process that sleeps, as the plugins, the engine and localcloud wake one
    # another. The child's CPU counts (wait4 folds it into the parent's).
    ("machine: pipe round trips between two processes (wake-ups)",
     "import os\nn = ROUNDS * 1000\nr1, w1 = os.pipe()\nr2, w2 = os.pipe()\npid = os.fork()\n"
     "if pid == 0:\n    for _ in range(n):\n        os.read(r1, 1)\n        os.write(w2, b'x')\n    os._exit(0)\n"
     "for _ in range(n):\n    os.write(w1, b'x')\n    os.read(r2, 1)\nos.waitpid(pid, 0)",
     1000, "round trips", 20),
)


def speed_probes(quick):
    """CPU seconds of each probe, Python's start-up included (16 times less work with
    --quick)."""
    out = []
    for name, code, work, unit, rounds in SPEED_PROBES:
        rounds = max(1, rounds // 16) if quick else rounds
        cpu = run_timed([sys.executable, "-c", code.replace("ROUNDS", str(rounds))])[1]
        out.append((name, cpu, "%d %s" % (work * rounds, unit)))
    return out


def speed_rows(start, end, rows):
    for (name, cpu, work), (_, cpu_end, _) in zip(start, end):
        rows.append((name, cpu, "s", "CPU for %s at the start of the run; %.3f s at its end" % (work, cpu_end)))


def number(v):
    if isinstance(v, float):
        return "{:,.2f}".format(v) if abs(v) < 100 else "{:,.0f}".format(v)
    return "{:,}".format(v)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes: every row, figures of no weight")
    p.add_argument("--records", type=int, help="records of the pipe section (default 5,000,000; quick 100,000)")
    p.add_argument("--runs", type=int, help="runs of each pipe measure, best kept (default 3; quick 1)")
    p.add_argument("--changes", type=int, help="changes of each pipeline workload (default 150,000; quick 600)")
    p.add_argument("--keys", type=int, help="primary keys of the workload (default 30,000; quick 200)")
    p.add_argument("--json", help="also write the rows as JSON to this file")
    p.add_argument("--compare", type=pathlib.Path, metavar="DIR",
                   help="empty section: also time the binaries in DIR (engine, reader-misbehave, writer-misbehave "
                        "of another build), runs interleaved with this build's")
    p.add_argument("--sections", default="pipe,empty,pipelines",
                   help="which sections to run (comma-separated; default all: pipe,empty,pipelines)")
    args = p.parse_args(argv)
    q = args.quick
    records = args.records or (100_000 if q else 5_000_000)
    runs = args.runs or (1 if q else 3)
    changes = args.changes or (600 if q else 150_000)
    keys = args.keys or (200 if q else 30_000)
    bins = pipelines.bin_dir()
    rows = []
    started = time.time()
    load = os.getloadavg()
    sections = set(args.sections.split(","))
    speed_at_start = speed_probes(q)
    with tempfile.TemporaryDirectory(prefix="bench-") as d:
        tmp = pathlib.Path(d)
        if "pipe" in sections:
            pipe_section(bins, tmp, records, runs, rows)
        if "empty" in sections:
            empty_section(bins, tmp, 10 if q else 30, rows, args.compare)
    if "pipelines" in sections:
        pipelines_section(changes, keys, rows, 1 if q else 3)
        perf_commands(rows, q)
    speed_rows(speed_at_start, speed_probes(q), rows)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print("binaries: %s; %d CPUs; load average %.1f %.1f %.1f at the start, %.1f at the end; %.0f s"
          % (bins, os.cpu_count(), *load, os.getloadavg()[0], time.time() - started))
    print("(CPU of everything this run started: %.1f s)" % (usage.ru_utime + usage.ru_stime))
    print()
    print("| measure | value | unit | how |")
    print("|---|---|---|---|")
    for name, value, unit, how in rows:
        print("| %s | %s | %s | %s |" % tuple(c.replace("|", "\\|") for c in (name, number(value), unit, how)))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps([dict(zip(("measure", "value", "unit", "how"), r))
                                                       for r in rows], indent=1))


if __name__ == "__main__":
    main()
