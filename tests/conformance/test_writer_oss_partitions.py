"""writer-oss time-partitioned paths ($yyyy $MM $dd $HH $mm in `object`) against
localcloud: window time and event time, late records, bounded open objects, bad inputs,
kill/abort/re-run and injected faults."""

import csv
import datetime
import io
import json
import re
import signal
import subprocess
import time

import pytest

from oss_helpers import *  # noqa: F401,F403
from writer_oss_helpers import (
    binary,
    jsonl,
    open_uploads,
    read_objects,
    run_jsonl,
    run_step,
    run_stream,
    writer_config,
)

HOUR_MS = 3_600_000
# 2024-11-21T08:00:00Z
T0 = int(datetime.datetime(2024, 11, 21, 8, tzinfo=datetime.timezone.utc).timestamp() * 1000)
TEMPLATE = "lake/dt=$yyyy$MM$dd/hour=$HH/part"


def in_job_file(template):
    """A job file's `$$` is a literal `$` (a lone `$name` is a job variable)."""
    return template.replace("$", "$$")


def partitioned(localcloud, prefix, template=TEMPLATE, **extra):
    extra.setdefault("writeMode", "append")
    extra.setdefault("suffix", "csv")
    return writer_config(localcloud, prefix + in_job_file(template), **extra)


def partition_of(prefix, key):
    """The `dt=…/hour=…` of a key under prefix, checking the name's shape."""
    m = re.fullmatch(re.escape(prefix) + r"lake/(dt=\d{8}/hour=\d\d)/part(?:-w\d)?__([0-9a-f]{24})([0-9a-f]{8})(_\d+)?\.csv", key)
    assert m, key
    return m.group(1)


def by_partition(prefix, objects):
    out = {}
    for key, data in objects.items():
        out.setdefault(partition_of(prefix, key), []).append(data)
    return out


def rows(data):
    return list(csv.reader(io.StringIO(data.decode(), newline="")))


def timed(start, count, step_ms, first_id=0):
    """[id, date, text] records every step_ms from start."""
    return [[first_id + i, {"date": start + i * step_ms}, f"r{first_id + i}"] for i in range(count)]


def test_records_spanning_three_hours_land_under_three_prefixes(localcloud, bucket, prefix, tmp_path):
    # 60 records three minutes apart: 08:00 to 10:57 UTC, 16:00 to 18:57 in Shanghai.
    records = timed(T0, 60, 180_000)
    cfg = partitioned(localcloud, prefix, eventTimeColumn=1, timeZone="Asia/Shanghai",
                      dateFormat="HH:mm")
    run_jsonl(tmp_path, records, cfg, time_zone="Asia/Shanghai")
    first = read_objects(bucket, prefix)
    parts = by_partition(prefix, first)
    assert sorted(parts) == ["dt=20241121/hour=16", "dt=20241121/hour=17", "dt=20241121/hour=18"]
    for partition, datas in parts.items():
        assert len(datas) == 1
        got = rows(datas[0])
        hour = partition[-2:]
        assert len(got) == 20 and all(r[1].startswith(hour + ":") for r in got), got
    assert sorted(int(r[0]) for d in first.values() for r in rows(d)) == list(range(60))
    # The same window again: the same three names and bytes, nothing added, nothing open.
    run_jsonl(tmp_path, records, cfg, time_zone="Asia/Shanghai")
    assert read_objects(bucket, prefix) == first
    assert open_uploads(localcloud, prefix) == []


def test_late_records_land_in_their_own_older_hour(localcloud, bucket, prefix, tmp_path):
    # Each window's run names its objects after the window (as `part-${start_time}`
    # would); through the engine the window's fingerprint alone keeps them apart.
    def cfg(window):
        return partitioned(localcloud, prefix, TEMPLATE + f"-w{window}", eventTimeColumn="ts",
                           header=["id", "ts", "text"], dateFormat="yyyy-MM-dd HH:mm")

    # Window 1 (10:00-10:05) has its own records; window 2 (11:00-11:05) brings two late
    # records of 10:xx and one of 08:xx, as a Stream delivers changes late.
    window1 = timed(T0 + 2 * HOUR_MS, 5, 60_000)
    run_jsonl(tmp_path, window1, cfg(1))
    before = read_objects(bucket, prefix)
    assert list(by_partition(prefix, before)) == ["dt=20241121/hour=10"]
    late = [[100, {"date": T0 + 2 * HOUR_MS + 1_800_000}, "late 10:30"],
            [101, {"date": T0 + 5 * 60_000}, "late 08:05"],
            [102, {"date": T0 + 2 * HOUR_MS + 3_540_000}, "late 10:59"]]
    window2 = timed(T0 + 3 * HOUR_MS, 5, 60_000, first_id=10)
    window2 = window2[:2] + late + window2[2:]
    run_jsonl(tmp_path, window2, cfg(2))
    after = read_objects(bucket, prefix)
    parts = by_partition(prefix, after)
    assert sorted(parts) == ["dt=20241121/hour=08", "dt=20241121/hour=10", "dt=20241121/hour=11"]
    # Window 1's object is untouched; the late records are a second object in hour 10.
    for key, data in before.items():
        assert after[key] == data
    assert len(parts["dt=20241121/hour=10"]) == 2
    tens = [rows(d)[1:] for d in parts["dt=20241121/hour=10"] if d not in before.values()]
    assert tens == [[["100", "2024-11-21 10:30", "late 10:30"], ["102", "2024-11-21 10:59", "late 10:59"]]]
    assert [rows(d)[1:] for d in parts["dt=20241121/hour=08"]] == [[["101", "2024-11-21 08:05", "late 08:05"]]]
    assert [int(r[0]) for r in rows(parts["dt=20241121/hour=11"][0])[1:]] == list(range(10, 15))
    # Window 2 again: it replaces exactly its own three objects.
    run_jsonl(tmp_path, window2, cfg(2))
    assert read_objects(bucket, prefix) == after


def test_window_time_truncate_replaces_only_the_windows_partition(localcloud, bucket, prefix, tmp_path):
    bucket.put_object(prefix + "lake/dt=20241121/hour=09/part__other.csv", b"keep\n")
    bucket.put_object(prefix + "lake/dt=20241121/hour=10/part__older.csv", b"old\n")
    cfg = partitioned(localcloud, prefix, writeMode="truncate", windowTime="20241121102000",
                      header=["n", "text"])
    run_jsonl(tmp_path, [[i, f"t{i}"] for i in range(10)], cfg)
    objects = read_objects(bucket, prefix)
    assert objects.pop(prefix + "lake/dt=20241121/hour=09/part__other.csv") == b"keep\n"
    assert [partition_of(prefix, k) for k in objects] == ["dt=20241121/hour=10"]
    assert rows(next(iter(objects.values()))) == [["n", "text"]] + [[str(i), f"t{i}"] for i in range(10)]
    # The window's start in epoch milliseconds names the same partition; with no record,
    # generateEmptyFile writes the header-only object there.
    ms = T0 + 2 * HOUR_MS + 20 * 60_000
    cfg = partitioned(localcloud, prefix, windowTime=str(ms), header=["n", "text"])
    run_jsonl(tmp_path, [], cfg)
    empty = [d for k, d in read_objects(bucket, prefix).items() if k not in objects and "hour=10" in k]
    assert empty == [b"n,text\n"]


def test_more_partitions_than_open_objects_roll_to_the_next_name(localcloud, bucket, prefix, tmp_path):
    # Blocks of ten records cycling through three hours, at most two objects open.
    records = [[i, {"date": T0 + ((i // 10) % 3) * HOUR_MS + i * 1000}, "x"] for i in range(90)]
    cfg = partitioned(localcloud, prefix, eventTimeColumn=1, maxOpenPartitions=2,
                      fileFormat="text", dateFormat="HH")
    w = run_jsonl(tmp_path, records, cfg)
    assert "maxOpenPartitions" in w.stderr
    first = read_objects(bucket, prefix)
    parts = by_partition(prefix, first)
    assert sorted(parts) == ["dt=20241121/hour=08", "dt=20241121/hour=09", "dt=20241121/hour=10"]
    assert len(first) > 3 and any(re.search(r"_\d+\.csv$", k) for k in first)
    for partition, datas in parts.items():
        ids = sorted(int(line.split(",")[0]) for d in datas for line in d.decode().splitlines())
        hour = int(partition[-2:]) - 8
        assert ids == [i for i in range(90) if (i // 10) % 3 == hour]
    run_jsonl(tmp_path, records, cfg)
    assert read_objects(bucket, prefix) == first


@pytest.mark.parametrize("change, words", [
    ({"object": "lake/$$yy/x"}, "object: unknown placeholder \"$yy/x\""),
    ({"object": "lake/$$HH/x$$"}, "object: unterminated $"),
    ({"eventTimeColumn": None}, "give windowTime"),
    ({"eventTimeColumn": "when", "header": ["id", "ts"]}, "eventTimeColumn \"when\" is not a column"),
    ({"writeMode": "truncate"}, "writeMode truncate cannot be used with eventTimeColumn"),
    ({"writeMode": "nonConflict"}, "writeMode nonConflict cannot be used with eventTimeColumn"),
    ({"eventTimeColumn": 2}, "eventTimeColumn: column 2 holds a string value"),
    ({"eventTimeColumn": 5}, "eventTimeColumn: the record has no column 5"),
])
def test_bad_inputs_exit_2_naming_the_parameter(localcloud, bucket, prefix, tmp_path, change, words):
    cfg = partitioned(localcloud, prefix, eventTimeColumn=1)
    for key, value in change.items():
        if key == "object":
            value = prefix + value
        cfg[key] = value
    w = run_jsonl(tmp_path, timed(T0, 3, 1000), cfg, check=False)
    assert w.returncode == 2, w.stderr
    assert words in w.stderr, w.stderr
    assert read_objects(bucket, prefix) == {}
    assert open_uploads(localcloud, prefix) == []


def test_a_record_without_a_time_is_a_dirty_record(localcloud, bucket, prefix, tmp_path):
    cfg = partitioned(localcloud, prefix, eventTimeColumn=1)
    records = timed(T0, 3, 1000) + [[9, None, "no time"], [10, "soon", "text time"]]
    w = run_jsonl(tmp_path, records, cfg, check=False)
    assert w.returncode != 0
    assert "eventTimeColumn: column 1 is null" in w.stderr, w.stderr
    assert read_objects(bucket, prefix) == {} and open_uploads(localcloud, prefix) == []
    path = tmp_path / "w.json"
    path.write_text(json.dumps(cfg))
    w = subprocess.run([binary("writer-oss"), "write", "--config", str(path), "--input-format", "jsonl",
                        "--time-zone", "UTC", "--error-limit", "2"],
                       input=jsonl(records), capture_output=True, text=True)
    assert w.returncode == 0, w.stderr
    assert "column 1 holds a string value" in w.stderr
    assert [int(r[0]) for d in read_objects(bucket, prefix).values() for r in rows(d)] == [0, 1, 2]


def interleaved(n):
    """n records of ~200 bytes whose times cycle through three hours."""
    return [[i, {"date": T0 + (i % 3) * HOUR_MS + i}, "x" * 200] for i in range(n)]


def test_killed_partitioned_writer_leaves_nothing_and_a_rerun_writes_the_same_names(localcloud, bucket, prefix, tmp_path):
    cfg = partitioned(localcloud, prefix, eventTimeColumn=1, blockSizeInMB=1, fileFormat="text",
                      suffix=None)
    path = tmp_path / "w.json"
    path.write_text(json.dumps(cfg))
    records = interleaved(24000)  # ~5 MiB over three partitions: several parts each
    writer = subprocess.Popen(
        [binary("writer-oss"), "write", "--config", str(path), "--input-format", "jsonl"],
        stdin=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    writer.stdin.write(jsonl(records[:18000]).encode())
    writer.stdin.flush()
    deadline = time.time() + 30
    while time.time() < deadline:
        uploads = open_uploads(localcloud, prefix)
        if len(uploads) == 3 and all(u["parts"] for u in uploads):
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the writer never uploaded a part of each partition: {open_uploads(localcloud, prefix)}")
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    writer.stdin.close()
    writer.stderr.close()
    assert read_objects(bucket, prefix) == {}
    killed = sorted(u["key"] for u in open_uploads(localcloud, prefix))
    assert len({k.split("/part__")[0] for k in killed}) == 3
    # Standalone abort finds the job's uploads in every partition by the template.
    a = run_step(tmp_path, "abort", cfg)
    assert a.returncode == 0, a.stderr
    assert open_uploads(localcloud, prefix) == []
    for _ in range(2):
        run_jsonl(tmp_path, records, cfg)
        objects = read_objects(bucket, prefix)
        assert sorted(objects) == killed
        lines = sorted(int(line.split(",")[0]) for d in objects.values() for line in d.decode().splitlines())
        assert lines == list(range(24000))
        assert open_uploads(localcloud, prefix) == []


def test_a_rerun_without_abort_cleans_up_the_killed_uploads_of_every_partition(localcloud, bucket, prefix, tmp_path):
    cfg = partitioned(localcloud, prefix, eventTimeColumn=1, blockSizeInMB=1)
    path = tmp_path / "w.json"
    path.write_text(json.dumps(cfg))
    writer = subprocess.Popen(
        [binary("writer-oss"), "write", "--config", str(path), "--input-format", "jsonl"],
        stdin=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    writer.stdin.write(jsonl(interleaved(12000)).encode())
    writer.stdin.flush()
    deadline = time.time() + 30
    while len(open_uploads(localcloud, prefix)) < 3 and time.time() < deadline:
        time.sleep(0.1)
    writer.kill()
    writer.wait()
    writer.stdin.close()
    assert len(open_uploads(localcloud, prefix)) == 3
    # A different run of the same parameter (same window) writes only hour 08 now: its
    # post still aborts the killed uploads of hours 09 and 10.
    run_jsonl(tmp_path, [[0, {"date": T0}, "x"]], cfg)
    assert [partition_of(prefix, k) for k in read_objects(bucket, prefix)] == ["dt=20241121/hour=08"]
    assert open_uploads(localcloud, prefix) == []


PARTITIONED_READER = {
    "sliceRecordCount": 40000,
    "seed": 7,
    "column": [{"type": "long", "sequence": 0},
               {"type": "date", "random": "2024-11-21 08:00:00, 2024-11-21 10:59:59"},
               {"type": "string", "random": "40, 120"}],
}


def test_injected_faults_do_not_change_the_partitioned_output(localcloud, admin, bucket, prefix, tmp_path):
    cfg = partitioned(localcloud, prefix, eventTimeColumn=1, blockSizeInMB=1, maxFileSize=1)
    run_stream(tmp_path, PARTITIONED_READER, cfg)
    clean = read_objects(bucket, prefix)
    assert sorted(by_partition(prefix, clean)) == [
        "dt=20241121/hour=08", "dt=20241121/hour=09", "dt=20241121/hour=10"]
    assert len(clean) >= 6  # several objects (_1, _2) per partition
    oss = admin["oss"]
    before = len(oss.faults()["injected"])
    # 10 % of all requests fail at random: 5xx answers and dropped connections.
    oss.add_fault(rate=0.04, kind="error", status=503, code="ServiceUnavailable")
    oss.add_fault(rate=0.03, kind="error", status=500, code="InternalError")
    oss.add_fault(rate=0.03, kind="drop")
    # Whatever the dice say, some requests of every kind fail: a part upload, an
    # initiate, and a Complete that takes effect but whose answer is lost.
    oss.add_fault(operation="UploadPart", times=1, kind="error", status=503, code="ServiceUnavailable")
    oss.add_fault(operation="InitiateMultipartUpload", times=1, kind="drop")
    oss.add_fault(operation="CompleteMultipartUpload", times=1, after_apply=True, kind="drop")
    run_stream(tmp_path, PARTITIONED_READER, cfg)
    injected = oss.faults()["injected"][before:]
    oss.clear_faults()
    assert read_objects(bucket, prefix) == clean
    assert open_uploads(localcloud, prefix) == []
    kinds = sorted({(f["operation"], f["action"]["kind"]) for f in injected})
    print(f"{len(injected)} faults injected: {kinds}")
    for kind in [("UploadPart", "error"), ("InitiateMultipartUpload", "drop"),
                 ("CompleteMultipartUpload", "drop")]:
        assert kind in kinds, injected
