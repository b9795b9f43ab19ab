"""Issue 14 items 3 and 4: a standalone pipe with no engine commits only a whole input.

`reader-otsstream read | writer-odps write` (or `| writer-oss write`) where the reader
fails in `prepare` (its data table does not exist): the reader sends an `error` frame,
the writer exits non-zero and commits nothing, so a `truncate` partition keeps its rows
and OSS gets no object. All-dirty input with `truncate: true` fails under the default
error limit (0) and leaves the partition as it was.
"""

import json
import subprocess
import time

from conftest import require


def write_json(path, value):
    path.write_text(json.dumps(value))
    return str(path)


def reader_config(cloud, tmp_path):
    info = cloud.info
    now_ms = int(time.time()) * 1000
    return write_json(tmp_path / "r.json", {
        "endpoint": info["ots"]["endpoint"], "instanceName": info["ots"]["instance"],
        "accessId": info["access_key_id"], "accessKey": info["access_key_secret"],
        "dataTable": "no_such_table", "statusTable": "st_standalone_pipe",
        "startTimestampMillis": now_ms - 3_600_000, "endTimestampMillis": now_ms - 600_000,
        "maxRetries": 0,
    })


def pipe(bins, reader_cfg, writer, writer_cfg):
    reader = subprocess.Popen([str(bins / "reader-otsstream"), "read", "--config", reader_cfg],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = subprocess.run([str(bins / writer), "write", "--config", writer_cfg],
                         stdin=reader.stdout, capture_output=True, text=True, timeout=120)
    reader.stdout.close()
    reader_stderr = reader.stderr.read().decode()
    return reader.wait(timeout=60), reader_stderr, out


def odps_writer_config(cloud, tmp_path, table):
    info = cloud.info
    return write_json(tmp_path / "w.json", {
        "odpsServer": info["odps"]["service_endpoint"], "project": info["odps"]["project"],
        "accessId": info["access_key_id"], "accessKey": info["access_key_secret"],
        "table": table, "partition": "pt=1", "column": ["id", "s"], "truncate": True,
    })


def odps_table_with_three_rows(cloud, bins, tmp_path, table):
    o = cloud.odps()
    o.execute_sql("create table %s (id bigint, s string) partitioned by (pt string)" % table)
    config = odps_writer_config(cloud, tmp_path, table)
    subprocess.run([str(bins / "writer-odps"), "write", "--input-format", "jsonl", "--config", config],
                   input='[1, "a"]\n[2, "b"]\n[3, "c"]\n', text=True, check=True, capture_output=True)
    return o


def rows(o, table):
    with o.get_table(table).open_reader(partition="pt=1") as reader:
        return sorted(r["id"] for r in reader)


def test_a_reader_failing_in_prepare_leaves_the_truncate_partition(cloud, odps_bins, tmp_path):
    o = odps_table_with_three_rows(cloud, odps_bins, tmp_path, "safe_pipe")
    assert rows(o, "safe_pipe") == [1, 2, 3]
    code, reader_err, out = pipe(odps_bins, reader_config(cloud, tmp_path), "writer-odps",
                                 odps_writer_config(cloud, tmp_path, "safe_pipe"))
    assert code != 0, reader_err
    assert out.returncode != 0, out.stderr
    assert "the reader failed" in out.stderr and "nothing was committed" in out.stderr, out.stderr
    assert "no_such_table" in out.stderr, out.stderr
    assert rows(o, "safe_pipe") == [1, 2, 3]


def test_a_reader_failing_in_prepare_makes_no_oss_object(cloud, oss_bins, tmp_path):
    info = cloud.info
    writer = write_json(tmp_path / "w.json", {
        "endpoint": info["oss"]["endpoint"], "bucket": info["oss"]["bucket"],
        "accessId": info["access_key_id"], "accessKey": info["access_key_secret"],
        "object": "safe-pipe/out", "writeMode": "append", "fileFormat": "csv",
    })
    code, reader_err, out = pipe(oss_bins, reader_config(cloud, tmp_path), "writer-oss", writer)
    assert code != 0, reader_err
    assert out.returncode != 0, out.stderr
    assert "the reader failed" in out.stderr and "nothing was committed" in out.stderr, out.stderr
    assert cloud.oss_bucket().list_objects_v2(prefix="safe-pipe/").object_list == []


def test_all_dirty_input_fails_and_keeps_the_truncate_partition(cloud, odps_bins, tmp_path):
    o = odps_table_with_three_rows(cloud, odps_bins, tmp_path, "safe_dirty")
    writer = odps_writer_config(cloud, tmp_path, "safe_dirty")
    cmd = [str(odps_bins / "writer-odps"), "write", "--input-format", "jsonl", "--config", writer]
    dirty = '["x", "a"]\n["y", "b"]\n'
    out = subprocess.run(cmd, input=dirty, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stderr
    assert "error limit exceeded: 1 dirty records, the limit (--error-limit) is 0" in out.stderr
    assert rows(o, "safe_dirty") == [1, 2, 3]
    # --error-limit 2 allows both: the (empty) write then replaces the partition.
    out = subprocess.run(cmd + ["--error-limit", "2"], input=dirty, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert rows(o, "safe_dirty") == []
