"""reader-stream → engine → writer-oss jobs (skipped while the workspace's engine cannot
run jobs; ENGINE_BIN may point at an engine binary)."""

import csv
import io
import json
import os
import signal
import subprocess
import time

import pytest

from oss_helpers import *  # noqa: F401,F403
from writer_oss_helpers import TARGET, WORKSPACE, binary, open_uploads, read_objects, task_name_re, writer_config


def engine_bin():
    explicit = os.environ.get("ENGINE_BIN")
    if explicit:
        return explicit
    subprocess.run(["cargo", "build", "--quiet", "-p", "engine"], cwd=WORKSPACE, check=True)
    return str(TARGET / "debug" / "engine")


@pytest.fixture(scope="module")
def engine():
    path = engine_bin()
    if not os.path.exists(path):
        pytest.skip("the workspace has no engine binary yet")
    probe = subprocess.run([path, "run", "--help"], capture_output=True, text=True)
    if probe.returncode != 0 or "--plugin-dir" not in probe.stdout:
        pytest.skip("the engine cannot run jobs yet")
    binary("writer-oss")  # builds writer-oss and reader-stream
    return path


def job(localcloud, obj, records, channels=4, speed=None, **writer):
    setting = {"speed": {"channel": channels}}
    if speed:
        setting["speed"].update(speed)
    return {"job": {"setting": setting, "content": [{
        "reader": {"name": "streamreader", "parameter": {
            "sliceRecordCount": records,
            "column": [{"type": "long", "sequence": 0},
                       {"type": "string", "value": 'v,"q"\r\nz' + "x" * 150},
                       {"type": "date", "value": "2024-01-02 03:04:05"}]}},
        "writer": {"name": "osswriter", "parameter": writer_config(localcloud, obj, **writer)},
    }]}}


def run_engine(engine, tmp_path, spec, check=True):
    path = tmp_path / "job.json"
    path.write_text(json.dumps(spec))
    r = subprocess.run([engine, "run", str(path), "--plugin-dir", str(TARGET / "debug"), "-q"],
                       capture_output=True, text=True, cwd=tmp_path)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def rows(data):
    return list(csv.reader(io.StringIO(data.decode(), newline="")))


def check_output(objects, obj, tasks, per_task, header=True):
    assert len(objects) == tasks, list(objects)
    ids = []
    for key, data in objects.items():
        assert task_name_re(obj, ".csv").match(key), key
        got = rows(data)
        if header:
            assert got[0] == ["n", "s", "d"]
            got = got[1:]
        assert len(got) == per_task
        ids += [int(r[0]) for r in got]
        assert all(r[1] == 'v,"q"\r\nz' + "x" * 150 and r[2] == "2024-01-02 03:04:05" for r in got)
    # reader-stream numbers the records of all its tasks in one sequence.
    assert sorted(ids) == list(range(tasks * per_task))


def test_engine_job_writes_one_object_per_channel(engine, localcloud, bucket, prefix, tmp_path):
    obj = prefix + "eng"
    spec = job(localcloud, obj, 2000, writeMode="append", suffix="csv", header=["n", "s", "d"])
    run_engine(engine, tmp_path, spec)
    first = read_objects(bucket, prefix)
    check_output(first, obj, 4, 2000)
    # The same window again: the same four names, nothing added.
    run_engine(engine, tmp_path, spec)
    assert read_objects(bucket, prefix) == first


def test_engine_single_object(engine, localcloud, bucket, prefix, tmp_path):
    obj = prefix + "one.csv"
    run_engine(engine, tmp_path, job(localcloud, obj, 500, writeSingleObject=True, header=["n", "s", "d"]))
    objects = read_objects(bucket, prefix)
    got = rows(objects[obj])
    assert got[0] == ["n", "s", "d"]
    assert sorted(int(r[0]) for r in got[1:]) == list(range(2000))


def children(pid):
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
        except OSError:
            continue
        if ppid == pid:
            out.append((int(entry), cmd))
    return out


def test_killed_writer_under_the_engine_is_aborted_and_a_rerun_completes(engine, localcloud, bucket, prefix, tmp_path):
    obj = prefix + "killed"
    # About 4 × 6 MB at 4 MB/s: the writers are killed while parts are uploading.
    spec = job(localcloud, obj, 35000, speed={"byte": 4_000_000}, writeMode="append",
               suffix="csv", blockSizeInMB=1, header=["n", "s", "d"])
    path = tmp_path / "job.json"
    path.write_text(json.dumps(spec))
    proc = subprocess.Popen([engine, "run", str(path), "--plugin-dir", str(TARGET / "debug"), "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    deadline = time.time() + 60
    while time.time() < deadline:
        uploads = open_uploads(localcloud, prefix)
        if len(uploads) == 4 and all(len(u["parts"]) >= 1 for u in uploads):
            break
        time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("the writers never uploaded a part each")
    writers = [pid for pid, cmd in children(proc.pid) if cmd[0].endswith(b"writer-oss") and b"write" in cmd]
    assert writers
    for pid in writers:
        os.kill(pid, signal.SIGKILL)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert read_objects(bucket, prefix) == {}
    assert open_uploads(localcloud, prefix) == [], stderr
    run_engine(engine, tmp_path, dict(spec, job=dict(spec["job"], setting={"speed": {"channel": 4}})))
    check_output(read_objects(bucket, prefix), obj, 4, 35000)
    assert open_uploads(localcloud, prefix) == []
