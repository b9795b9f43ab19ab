"""reader-stream → engine → writer-oss with time-partitioned paths: the window's time
from a job variable, event time from a date column over several tasks, and a writer
killed under the engine (the engine's abort finds every partition's upload)."""

import json
import os
import re
import signal
import subprocess
import time

import pytest

from oss_helpers import *  # noqa: F401,F403
from test_writer_oss_engine import children, engine  # noqa: F401 (fixture)
from writer_oss_helpers import TARGET, open_uploads, read_objects, writer_config

NAME = r"part__([0-9a-f]{24})([0-9a-f]{8})(_\d+)?\.csv"


def job(localcloud, obj, records, channels=3, speed=None, zone="UTC", **writer):
    setting = {"speed": {"channel": channels}, "timeZone": zone}
    if speed:
        setting["speed"].update(speed)
    return {"job": {"setting": setting, "content": [{
        "reader": {"name": "streamreader", "parameter": {
            "sliceRecordCount": records,
            "seed": 5,
            "column": [{"type": "long", "sequence": 0},
                       {"type": "date", "random": "2024-11-21 08:00:00, 2024-11-21 10:59:59"},
                       {"type": "string", "value": "x" * 150}]}},
        "writer": {"name": "osswriter", "parameter": writer_config(localcloud, obj, **dict(
            dict(suffix="csv", dateFormat="yyyy-MM-dd HH:mm:ss", writeMode="append"), **writer))},
    }]}}


def run_engine(engine, tmp_path, spec, *args):
    path = tmp_path / "job.json"
    path.write_text(json.dumps(spec))
    r = subprocess.run([engine, "run", str(path), "--plugin-dir", str(TARGET / "debug"), "-q", *args],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    return r


def by_hour(prefix, objects):
    """{hour: {task: [records]}} checking every record lies in its object's hour."""
    out = {}
    for key, data in objects.items():
        m = re.fullmatch(re.escape(prefix) + r"lake/dt=20241121/hour=(\d\d)/" + NAME, key)
        assert m, key
        lines = data.decode().splitlines()
        # timeZone UTC (the writer's), so the hour of the date column is the partition's.
        assert all(line.split(",")[1][11:13] == m.group(1) for line in lines), key
        out.setdefault(m.group(1), {}).setdefault(m.group(3), []).extend(
            int(line.split(",")[0]) for line in lines)
    return out


def test_event_time_over_three_tasks_and_window_time_from_a_variable(engine, localcloud, bucket, prefix, tmp_path):
    obj = prefix + "lake/dt=$yyyy$MM$dd/hour=$HH/part"
    spec = job(localcloud, obj, 3000, eventTimeColumn=1)
    run_engine(engine, tmp_path, spec)
    first = read_objects(bucket, prefix)
    hours = by_hour(prefix, first)
    # Three hours × three tasks, every record once.
    assert sorted(hours) == ["08", "09", "10"]
    assert all(len(tasks) == 3 for tasks in hours.values()), hours.keys()
    ids = sorted(i for tasks in hours.values() for got in tasks.values() for i in got)
    assert ids == list(range(9000))
    run_engine(engine, tmp_path, spec)
    assert read_objects(bucket, prefix) == first
    # The window's time from the job's variable (yyyyMMddHHmmss in the job's zone,
    # Asia/Shanghai), rendered in the writer's timeZone (UTC): hour 02.
    obj = prefix + "win/dt=$$yyyy$$MM$$dd/hour=$$HH/part"
    spec = job(localcloud, obj, 10, channels=2, zone="Asia/Shanghai", windowTime="${start_time}",
               writeMode="truncate")
    run_engine(engine, tmp_path, spec, "-p", "start_time=20241121102000")
    keys = sorted(k for k in read_objects(bucket, prefix) if "/win/" in k)
    assert len(keys) == 2 and all(k.startswith(prefix + "win/dt=20241121/hour=02/part__") for k in keys), keys


def test_killed_partitioned_writers_under_the_engine_leave_nothing(engine, localcloud, bucket, prefix, tmp_path):
    obj = prefix + "lake/dt=$$yyyy$$MM$$dd/hour=$$HH/part"
    # About 3 × 5 MB at 3 MB/s: the writers are killed while parts are uploading.
    spec = job(localcloud, obj, 30000, speed={"byte": 3_000_000}, eventTimeColumn=1, blockSizeInMB=1)
    path = tmp_path / "job.json"
    path.write_text(json.dumps(spec))
    proc = subprocess.Popen([engine, "run", str(path), "--plugin-dir", str(TARGET / "debug"), "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    deadline = time.time() + 60
    while time.time() < deadline:
        uploads = open_uploads(localcloud, prefix)
        if sum(1 for u in uploads if u["parts"]) >= 3:
            break
        time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("the writers never uploaded parts")
    killed = {u["key"] for u in open_uploads(localcloud, prefix)}
    assert len({k.split("/part__")[0] for k in killed}) >= 2, killed
    writers = [pid for pid, cmd in children(proc.pid) if cmd[0].endswith(b"writer-oss") and b"write" in cmd]
    assert writers
    for pid in writers:
        os.kill(pid, signal.SIGKILL)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert read_objects(bucket, prefix) == {}
    assert open_uploads(localcloud, prefix) == [], stderr
    # The re-run of the window writes the names the killed run had started, and more.
    run_engine(engine, tmp_path, dict(spec, job=dict(spec["job"], setting={"speed": {"channel": 3}, "timeZone": "UTC"})))
    objects = read_objects(bucket, prefix)
    assert killed <= set(objects)
    hours = by_hour(prefix, objects)
    assert sorted(i for tasks in hours.values() for got in tasks.values() for i in got) == list(range(90000))
    assert open_uploads(localcloud, prefix) == []
