"""writer-oss write modes, kill/abort/re-run, injected faults, bad inputs, V4 and STS."""

import json
import os
import signal
import subprocess
import time

import pytest
import requests

from oss_helpers import *  # noqa: F401,F403
from writer_oss_helpers import (
    binary,
    jsonl,
    open_uploads,
    read_objects,
    run_jsonl,
    run_step,
    run_stream,
    task_name_re,
    writer_config,
)

RECORDS = [[i, f"row {i}", i * 0.5] for i in range(20)]


def rows_of(data):
    return data.decode().splitlines()


def test_truncate_deletes_every_key_starting_with_object(localcloud, bucket, prefix, tmp_path):
    obj = prefix + "data"
    for key in [obj, obj + ".csv", obj + "x/y", obj + "__old"]:
        bucket.put_object(key, b"old")
    bucket.put_object(prefix + "other", b"keep")
    w = run_jsonl(tmp_path, RECORDS, writer_config(localcloud, obj))
    # The older objects go in post, once the new one is complete (never in prepare).
    assert "deleted 4 older objects" in w.stderr
    objects = read_objects(bucket, prefix)
    assert objects.pop(prefix + "other") == b"keep"
    key, data = objects.popitem()
    assert not objects
    assert task_name_re(obj).match(key)
    assert len(rows_of(data)) == 20


def test_append_keeps_objects_and_a_rerun_does_not_duplicate(localcloud, bucket, prefix, tmp_path):
    obj = prefix + "data"
    bucket.put_object(obj + "__existing", b"old\n")
    cfg = writer_config(localcloud, obj, writeMode="append")
    run_jsonl(tmp_path, RECORDS, cfg)
    first = read_objects(bucket, prefix)
    run_jsonl(tmp_path, RECORDS, cfg)
    second = read_objects(bucket, prefix)
    assert first == second
    assert len(second) == 2
    assert second[obj + "__existing"] == b"old\n"
    # Another window (other parameters) adds its own object.
    run_jsonl(tmp_path, RECORDS[:5], dict(cfg, nullFormat="NULL"))
    assert len(read_objects(bucket, prefix)) == 3


def test_non_conflict_fails_when_the_prefix_is_taken(localcloud, bucket, prefix, tmp_path):
    obj = prefix + "data"
    cfg = writer_config(localcloud, obj, writeMode="nonConflict")
    run_jsonl(tmp_path, RECORDS, cfg)
    first = read_objects(bucket, prefix)
    assert len(first) == 1
    # A re-run of the same window is not a conflict: it converges to the same output.
    run_jsonl(tmp_path, RECORDS, cfg)
    assert read_objects(bucket, prefix) == first
    # Another window (other parameters) finds the prefix taken.
    w = run_jsonl(tmp_path, RECORDS[:5], dict(cfg, nullFormat="NULL"), check=False)
    assert w.returncode == 2
    assert "nonConflict" in w.stderr and obj in w.stderr
    assert read_objects(bucket, prefix) == first


def test_single_object_modes(localcloud, bucket, prefix, tmp_path):
    obj = prefix + "single.csv"
    bucket.put_object(obj, b"old\n")
    cfg = writer_config(localcloud, obj, writeSingleObject=True, header=["a", "b", "c"])
    run_jsonl(tmp_path, RECORDS, cfg)
    objects = read_objects(bucket, prefix)
    assert list(objects) == [obj]
    lines = rows_of(objects[obj])
    assert lines[0] == "a,b,c" and len(lines) == 21
    assert bucket.head_object(obj).headers["x-oss-object-type"] == "Multipart"
    w = run_jsonl(tmp_path, RECORDS, dict(cfg, writeMode="nonConflict"), check=False)
    assert w.returncode == 2 and "already exists" in w.stderr
    w = run_jsonl(tmp_path, RECORDS, dict(cfg, writeMode="append"), check=False)
    assert w.returncode == 2 and "append" in w.stderr
    assert read_objects(bucket, prefix) == objects
    assert open_uploads(localcloud, prefix) == []
    # No records at all: no object (as DataX), and truncate removed the old one.
    run_jsonl(tmp_path, [], cfg)
    assert read_objects(bucket, prefix) == {}


def test_single_object_non_conflict_writes_when_free(localcloud, bucket, prefix, tmp_path):
    obj = prefix + "fresh"
    run_jsonl(tmp_path, RECORDS, writer_config(localcloud, obj, writeSingleObject="true", writeMode="nonConflict"))
    assert len(rows_of(read_objects(bucket, prefix)[obj])) == 20


def big_records(n):
    return [[i, "x" * 200] for i in range(n)]


@pytest.mark.parametrize("mode", ["append", "truncate"])
def test_killed_writer_leaves_nothing_and_abort_then_rerun_completes(localcloud, bucket, prefix, tmp_path, mode):
    obj = prefix + "kill"
    cfg = writer_config(localcloud, obj, writeMode=mode, blockSizeInMB=1, fileFormat="text")
    path = tmp_path / "w.json"
    path.write_text(json.dumps(cfg))
    records = big_records(20000)  # ~4 MiB: several parts
    writer = subprocess.Popen(
        [binary("writer-oss"), "write", "--config", str(path), "--input-format", "jsonl"],
        stdin=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    writer.stdin.write(jsonl(records[:15000]).encode())
    writer.stdin.flush()
    deadline = time.time() + 30
    while time.time() < deadline:
        uploads = open_uploads(localcloud, prefix)
        if uploads and len(uploads[0]["parts"]) >= 2:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the writer never uploaded two parts")
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    writer.stdin.close()
    writer.stderr.close()
    # Nothing is visible, but the upload is open.
    assert read_objects(bucket, prefix) == {}
    killed = open_uploads(localcloud, prefix)
    assert len(killed) == 1
    assert task_name_re(obj).match(killed[0]["key"])
    # abort (standalone: the job's names come from the parameter) removes it.
    a = run_step(tmp_path, "abort", cfg)
    assert a.returncode == 0, a.stderr
    assert open_uploads(localcloud, prefix) == []
    # Re-running the window writes the complete output under the same name, once.
    for _ in range(2):
        run_jsonl(tmp_path, records, cfg)
        objects = read_objects(bucket, prefix)
        assert list(objects) == [killed[0]["key"]]
        lines = rows_of(objects[killed[0]["key"]])
        assert lines == [f"{i},{'x' * 200}" for i in range(20000)]
        assert open_uploads(localcloud, prefix) == []


def test_rerun_without_abort_cleans_up_the_killed_upload(localcloud, bucket, prefix, tmp_path):
    obj = prefix + "kill2"
    cfg = writer_config(localcloud, obj, writeMode="append", blockSizeInMB=1)
    path = tmp_path / "w.json"
    path.write_text(json.dumps(cfg))
    writer = subprocess.Popen(
        [binary("writer-oss"), "write", "--config", str(path), "--input-format", "jsonl"],
        stdin=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    writer.stdin.write(jsonl(big_records(10000)).encode())
    writer.stdin.flush()
    deadline = time.time() + 30
    while not open_uploads(localcloud, prefix) and time.time() < deadline:
        time.sleep(0.1)
    writer.kill()
    writer.wait()
    writer.stdin.close()
    assert len(open_uploads(localcloud, prefix)) == 1
    run_jsonl(tmp_path, big_records(100), cfg)
    assert len(read_objects(bucket, prefix)) == 1
    assert open_uploads(localcloud, prefix) == []


FAULTY_READER = {
    "sliceRecordCount": 150000,
    "seed": 11,
    "column": [{"type": "long", "sequence": 0}, {"type": "string", "random": "20, 80"},
               {"type": "double", "random": "0, 1"}],
}


def test_injected_faults_do_not_change_the_output(localcloud, admin, bucket, prefix, tmp_path):
    obj = prefix + "faults"
    cfg = writer_config(localcloud, obj, blockSizeInMB=1, maxFileSize=1, suffix="csv")
    run_stream(tmp_path, FAULTY_READER, cfg)
    clean = read_objects(bucket, prefix)
    assert len(clean) >= 3
    oss = admin["oss"]
    total_injected, total_requests = [], 0
    for _ in range(3):
        requests.delete(localcloud["oss"]["endpoint"] + "/-/oss/requests", timeout=10).raise_for_status()
        before = len(oss.faults()["injected"])
        oss.add_fault(rate=0.04, kind="error", status=503, code="ServiceUnavailable")
        oss.add_fault(rate=0.03, kind="error", status=500, code="InternalError")
        oss.add_fault(rate=0.03, kind="drop")
        # One Complete takes effect but its answer is lost; another fails outright.
        oss.add_fault(operation="CompleteMultipartUpload", times=1, after_apply=True, kind="drop")
        oss.add_fault(operation="CompleteMultipartUpload", times=1, kind="error", status=500, code="InternalError")
        w = run_stream(tmp_path, FAULTY_READER, cfg)
        injected = oss.faults()["injected"][before:]
        oss.clear_faults()
        log = requests.get(localcloud["oss"]["endpoint"] + "/-/oss/requests", timeout=10).json()["requests"]
        total_requests += len(log)
        total_injected += injected
        assert any(f["operation"] == "CompleteMultipartUpload" and f["after_apply"] for f in injected)
        assert "an earlier attempt succeeded" in w.stderr
        # Identical to the clean run: same names, same bytes, nothing left open.
        assert read_objects(bucket, prefix) == clean
        assert open_uploads(localcloud, prefix) == []
    random_faults = [f for f in total_injected if f["operation"] != "CompleteMultipartUpload"
                     or not f["after_apply"] and f["action"].get("code") != "InternalError"]
    kinds = sorted({(f["operation"], f["action"]["kind"], f["action"].get("code")) for f in total_injected})
    print(f"{len(total_injected)} faults injected in {total_requests} requests: {kinds}")
    assert len(random_faults) >= 3, total_injected


def test_v4_signatures_and_sts_tokens(localcloud, admin, bucket, prefix, tmp_path):
    run_jsonl(tmp_path, RECORDS, writer_config(localcloud, prefix + "v4", signVersion="v4", region="cn-hangzhou"))
    sts = admin["oss"].post("/-/oss/sts")
    run_jsonl(tmp_path, RECORDS, writer_config(
        localcloud, prefix + "sts", accessId=sts["access_key_id"], accessKey=sts["access_key_secret"],
        securityToken=sts["security_token"]))
    objects = read_objects(bucket, prefix)
    assert len(objects) == 2
    assert all(len(rows_of(d)) == 20 for d in objects.values())


@pytest.mark.parametrize(
    "change, words",
    [
        ({"bucket": None}, ["bucket is required"]),
        ({"bucket": "no-such-bucket-here"}, ["NoSuchBucket", "no-such-bucket-here"]),
        ({"accessKey": "wrong-secret-value"}, ["SignatureDoesNotMatch", "accessKey"]),
        ({"accessId": "unknown-id"}, ["InvalidAccessKeyId", "accessId"]),
        ({"encoding": "klingon-8"}, ["encoding", "klingon-8"]),
        ({"fieldDelimiter": ";;"}, ["fieldDelimiter", "exactly one character"]),
        ({"fileFormat": "sql"}, ["fileFormat", "sql", "not supported"]),
        ({"writeMode": "overwrite"}, ["writeMode", "overwrite"]),
        ({"compress": "bzip2"}, ["compress", "bzip2"]),
        ({"endpoint": None, "datasource": "my_oss"}, ["datasource", "my_oss", "not resolved"]),
    ],
)
def test_bad_inputs_get_clear_errors(localcloud, prefix, tmp_path, change, words):
    cfg = writer_config(localcloud, prefix + "bad")
    for k, v in change.items():
        if v is None:
            cfg.pop(k)
        else:
            cfg[k] = v
    w = run_jsonl(tmp_path, RECORDS, cfg, check=False)
    assert w.returncode == 2, w.stderr
    for word in words:
        assert word in w.stderr, (word, w.stderr)
    assert localcloud["access_key_secret"] not in w.stderr
    assert "wrong-secret-value" not in w.stderr
    assert "panicked" not in w.stderr
