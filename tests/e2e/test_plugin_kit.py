"""Plugin authoring kit: the Python reader example (examples/plugins/reader-pyjsonl,
built on the `msgpack` package) through the engine into writer-oss on localcloud, and
`streamport test-plugin` passing both Python examples and the three real plugins
against localcloud."""

import base64
import csv
import io
import json
import os
import subprocess
import sys
import time

import pytest

from conftest import WORKSPACE, require

sys.path.insert(0, str(WORKSPACE / "examples" / "workload"))
import pipelines  # noqa: E402

EXAMPLES = WORKSPACE / "examples" / "plugins"
READER = EXAMPLES / "reader-pyjsonl"
WRITER = EXAMPLES / "writer-pyjsonl"


def python_env(extra=None):
    """The plugins' `#!/usr/bin/env python3` must find the interpreter running the tests
    (it has the `msgpack` package)."""
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    env.update(extra or {})
    return env


def rows(n):
    """JSON lines of typed values, as `--format jsonl` writes them."""
    out = []
    for i in range(n):
        out.append([i, "row-%d, \"é😀\"" % i, i * 1.5 + 0.25, {"decimal": "%d.50" % i},
                    {"date": "2024-01-15T08:30:%02d.000Z" % (i % 60)}, None, i % 2 == 0,
                    {"bytes": base64.b64encode(bytes([i % 256, 1, 2])).decode()},
                    # doubles of every form of DataX's plain text (their byte sizes): plain, huge, tiny, -0.0, one digit
                    1e20 * (i + 1), 1.5e-7, 0.001 * i, -0.0, 1e16 + i, i / 3, 12345678901234567.0 * i,
                    5e-4 * (i % 9 + 1), 1e7 * (i % 9 + 1), -1e-7 * (i % 3 + 1)])
    return out


def write_rows(path, n):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows(n)), encoding="utf-8")


def test_plugin(bins, plugin, config, *extra, env=None):
    """Runs `streamport test-plugin`; returns its report lines after checking it passed."""
    require(bins, "streamport")
    cmd = [str(bins / "streamport"), "test-plugin", str(plugin), "--config", json.dumps(config),
           "--timeout", "30"] + list(extra)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env or python_env(), timeout=240)
    report = proc.stdout
    assert proc.returncode == 0, "test-plugin %s failed:\n%s\n%s" % (plugin.name, report, proc.stderr[-2000:])
    assert "FAIL" not in report and "SKIP" not in report, report
    return report.splitlines()


test_plugin.__test__ = False  # a helper, not a test


def csv_rows(text):
    return list(csv.reader(io.StringIO(text)))


def passed(lines, check):
    return any(line.startswith("PASS  %s: " % check) for line in lines)


def test_reader_pyjsonl_through_the_engine_into_writer_oss(oss_bins, cloud, tmp_path):
    """Two tasks (split at a line start) of typed JSON lines end up, whole and in
    order, as one CSV object per task in OSS, read back with the official SDK."""
    src = tmp_path / "in.jsonl"
    write_rows(src, 300)
    job = {"job": {"setting": {"speed": {"channel": 2}, "errorLimit": {"record": 0}},
                   "content": [{"reader": {"name": "pyjsonlreader", "parameter": {"path": str(src), "batchRecords": 64}},
                                "writer": {"name": "osswriter", "parameter": {
                                    "datasource": "oss", "object": "kit/rows", "writeMode": "truncate",
                                    "fileFormat": "csv", "dateFormat": "yyyy-MM-dd HH:mm:ss"}}}]}}
    job_file = tmp_path / "job.json"
    job_file.write_text(json.dumps(job))
    summary = tmp_path / "summary.json"
    cmd = [str(oss_bins / "streamport"), "run", str(job_file), "--datasources", str(pipelines.DATASOURCES),
           "--plugin-dir", str(EXAMPLES), "--summary-json", str(summary), "--quiet"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=python_env(cloud.env()), timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    s = json.loads(summary.read_text())
    assert s["outcome"] == "succeeded" and s["records"] == 300, s
    bucket = cloud.oss_bucket()
    keys = sorted(o.key for o in __import__("oss2").ObjectIterator(bucket, prefix="kit/rows"))
    assert len(keys) == 2, keys
    got = []
    for key in keys:
        got += csv_rows(bucket.get_object(key).read().decode("utf-8"))
    assert len(got) == 300
    got.sort(key=lambda r: int(r[0]))
    for i, r in enumerate(got):
        assert r[0] == str(i)
        assert r[1] == "row-%d, \"é😀\"" % i
        assert float(r[2]) == i * 1.5 + 0.25
        assert r[3] == "%d.50" % i
        assert r[4] == time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(1705307400 + i % 60))  # the machine's zone
        assert r[6] == ("true" if i % 2 == 0 else "false")


def test_test_plugin_passes_the_python_reader(bins, tmp_path):
    src = tmp_path / "in.jsonl"
    write_rows(src, 2500)
    lines = test_plugin(bins, READER, {"path": str(src), "batchRecords": 700})
    for check in ["--version", "check (bad config)", "read (bad task config)", "read (cancel before configure)",
                  "read: frames", "read: hello", "read: batches", "read: eos", "read: exit", "read task 1: eos", "post"]:
        assert passed(lines, check), (check, lines)
    batches = next(line for line in lines if line.startswith("PASS  read: batches"))
    assert "4 batches" in batches or "2 batches" in batches, batches


def test_test_plugin_passes_the_python_writer(bins, tmp_path):
    lines = test_plugin(bins, WRITER, {"path": str(tmp_path / "out")}, "--records", "1500")
    for check in ["write (input without eos)", "write (undecodable batch)", "write (cancel during the task)",
                  "write: done", "post"]:
        assert passed(lines, check), (check, lines)
    # post made the task's output visible: every record the suite sent.
    out = (tmp_path / "out" / "part-0.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in out] == [[i, "row-%d" % i] for i in range(1500)]


def test_test_plugin_passes_writer_oss(oss_bins, cloud):
    i = cloud.info
    config = {"endpoint": i["oss"]["endpoint"], "bucket": i["oss"]["bucket"], "accessId": i["access_key_id"],
              "accessKey": i["access_key_secret"], "object": "kit/test-plugin", "writeMode": "truncate",
              "fileFormat": "csv"}
    lines = test_plugin(oss_bins, oss_bins / "writer-oss", config)
    assert passed(lines, "write: done") and passed(lines, "abort") and passed(lines, "post"), lines
    keys = [o.key for o in __import__("oss2").ObjectIterator(cloud.oss_bucket(), prefix="kit/test-plugin")]
    assert len(keys) == 1, keys
    text = cloud.oss_bucket().get_object(keys[0]).read().decode()
    assert csv_rows(text) == [[str(n), "row-%d" % n] for n in range(1000)]


def test_test_plugin_passes_writer_odps(odps_bins, cloud):
    cloud.odps().execute_sql("CREATE TABLE IF NOT EXISTS kit (id BIGINT, name STRING) PARTITIONED BY (pt STRING)")
    i = cloud.info
    config = {"odpsServer": i["odps"]["service_endpoint"], "tunnelServer": i["odps"]["tunnel_endpoint"],
              "project": i["odps"]["project"], "accessId": i["access_key_id"], "accessKey": i["access_key_secret"],
              "table": "kit", "partition": "pt=20240101", "column": ["id", "name"], "truncate": True}
    lines = test_plugin(odps_bins, odps_bins / "writer-odps", config)
    assert passed(lines, "write: done") and passed(lines, "post"), lines
    with cloud.odps().get_table("kit").open_reader(partition="pt=20240101") as r:
        got = sorted((rec["id"], rec["name"]) for rec in r)
    assert got == [(n, "row-%d" % n) for n in range(1000)]


def test_test_plugin_passes_reader_otsstream(oss_bins, cloud, tmp_path):
    window = pipelines.Window()
    pipelines.run_workload(cloud, tmp_path / "ops.log", window, changes=60, keys=10)
    i = cloud.info
    config = {"endpoint": i["ots"]["endpoint"], "instanceName": i["ots"]["instance"],
              "accessId": i["access_key_id"], "accessKey": i["access_key_secret"],
              "dataTable": pipelines.OSS_TABLE, "statusTable": "TestPluginStatus",
              "startTimestampMillis": str(window.start_ms), "endTimestampMillis": str(window.end_ms),
              "mode": "single_version_and_update_only", "column": [{"name": "uid"}, {"name": "name"}]}
    lines = test_plugin(oss_bins, oss_bins / "reader-otsstream", config)
    for check in ["read (bad task config)", "read: batches", "read: eos", "post"]:
        assert passed(lines, check), (check, lines)
    eos = next(line for line in lines if line.startswith("PASS  read: eos"))
    assert "eos with 0 records" not in eos, eos


@pytest.mark.parametrize("mode,needle", [
    ("records_array", "FAIL  read: batches: frame 2: batch field records is an array"),
    ("cancel_exit_0", "FAIL  read (cancel before configure): the plugin exited 0 after cancel (documented: exit 1)"),
])
def test_test_plugin_names_what_a_plugin_got_wrong(bins, mode, needle):
    require(bins, "streamport", "reader-misbehave")
    proc = subprocess.run([str(bins / "streamport"), "test-plugin", str(bins / "reader-misbehave"), "--timeout", "5"],
                          capture_output=True, text=True, env=dict(os.environ, MISBEHAVE_MODE=mode), timeout=120)
    assert proc.returncode == 1, proc.stdout
    assert needle in proc.stdout, proc.stdout
