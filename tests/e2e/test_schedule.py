"""Scheduling five-minute windows (issue 14, item 5).

The vendor's MaxCompute job writes `pt=${bdp.system.bizdate}` with `"truncate": true`:
run every five minutes, each run replaces the whole day's partition with its own five
minutes. The engine must say so (`check` and `run`: one WARN naming the target and both
windows), and the schedule the README documents
(examples/jobs/otsstream-to-odps-per-window.json, one partition per window) must keep
every window when consecutive windows run one after the other."""

import subprocess

import expected_rows as er
import pipelines
from checks import first_difference

PER_WINDOW_JOB = pipelines.WORKSPACE / "examples" / "jobs" / "otsstream-to-odps-per-window.json"
WARNING = "consecutive runs of this job overwrite each other"


def engine_check(cloud, bins, job, window):
    cmd = [str(bins / "engine"), "check", str(job), "--datasources", str(pipelines.DATASOURCES),
           "--schedule-time", window.schedule_time, "--plugin-dir", str(bins)]
    for k, v in pipelines.odps_params().items():
        cmd += ["-p", "%s=%s" % (k, v)]
    env = dict(__import__("os").environ, **cloud.env())
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)


def warnings_about_overwrites(stderr):
    return [line for line in stderr.splitlines() if WARNING in line]


def test_check_and_run_warn_once_about_the_vendor_daily_partition(cloud, odps_bins, tmp_path):
    window = pipelines.Window()
    pipelines.create_person_table(cloud)
    pipelines.run_workload(cloud, tmp_path / "ops.jsonl", window, changes=20, outside=2)
    checked = engine_check(cloud, odps_bins, pipelines.ODPS_JOB, window)
    assert checked.returncode == 0, checked.stderr[-3000:]
    ran = pipelines.run_engine(cloud, pipelines.ODPS_JOB, pipelines.odps_params(), window)
    fmt = "%Y-%m-%d %H:%M:%S"
    for stderr in (checked.stderr, ran.stderr):
        lines = warnings_about_overwrites(stderr)
        assert len(lines) == 1, stderr[-3000:]
        assert " WARN " in lines[0]
        assert "partition pt=%s of localcloud.person" % window.bizdate in lines[0], lines[0]
        this = "[%s, %s)" % (window.local(window.start_ms // 1000, fmt), window.local(window.end_ms // 1000, fmt))
        assert this in lines[0], lines[0]
        neighbours = ["[%s, %s)" % (window.local(window.start_ms // 1000 + d, fmt),
                                    window.local(window.end_ms // 1000 + d, fmt)) for d in (-300, 300)]
        assert any(n in lines[0] for n in neighbours), lines[0]


def test_the_documented_schedule_keeps_every_window(cloud, odps_bins, tmp_path):
    """Two consecutive five-minute windows through the per-window job: each has its own
    partition with exactly its rows (with the vendor's job the second run would have
    replaced the first one's rows), and the engine does not warn."""
    second = pipelines.Window()
    first = pipelines.Window(second.schedule_s - 300)
    pipelines.create_person_table(cloud)
    log = tmp_path / "ops.jsonl"
    # The workload's changes "before" the second window land in the first one.
    pipelines.run_workload(cloud, log, second, changes=60, outside=20, seed=21)
    ops = er.read_log(str(log))
    assert not warnings_about_overwrites(engine_check(cloud, odps_bins, PER_WINDOW_JOB, second).stderr)
    for window in (first, second):
        ran = pipelines.run_engine(cloud, PER_WINDOW_JOB, pipelines.odps_params(), window)
        assert not warnings_about_overwrites(ran.stderr), ran.stderr[-3000:]
    parts = pipelines.odps_rows(cloud, second)
    for window in (first, second):
        spec = "pt=%s" % window.local(window.start_ms // 1000)
        want = sorted(er.odps_person_rows(ops, pipelines.ODPS_TABLE, window.start_ms, window.end_ms),
                      key=pipelines.sort_key)
        got = sorted(parts.get(spec, []), key=pipelines.sort_key)
        assert want, "the workload put nothing into %s" % spec
        assert got == want, "%s: %s" % (spec, first_difference(got, want))
    assert len(parts) == 2, sorted(parts)
