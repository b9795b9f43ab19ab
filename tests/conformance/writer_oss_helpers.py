"""Helpers for the writer-oss tests: run `reader-stream read | writer-oss write` (or
JSON lines into writer-oss) against localcloud and read the objects back with oss2.

oss2 checks the CRC-64 of every object it downloads (enable_crc is on by default), so
every read here is also an integrity check of what the writer uploaded.
"""

import base64
import json
import os
import pathlib
import re
import subprocess

import oss2
import pytest
import requests

WORKSPACE = pathlib.Path(__file__).resolve().parents[2]
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", str(WORKSPACE / "target")))
_built = False


def binary(name):
    global _built
    if not _built:
        subprocess.run(
            ["cargo", "build", "--quiet", "-p", "writer-oss", "-p", "reader-stream"],
            cwd=WORKSPACE,
            check=True,
        )
        _built = True
    return str(TARGET / "debug" / name)


def writer_config(localcloud, obj, **extra):
    info = localcloud["oss"]
    cfg = {
        "endpoint": info["endpoint"],
        "accessId": localcloud["access_key_id"],
        "accessKey": localcloud["access_key_secret"],
        "bucket": info["bucket"],
        "object": obj,
        "writeMode": "truncate",
        "fileFormat": "csv",
        "timeZone": "UTC",
    }
    cfg.update(extra)
    return cfg


def _write_json(tmp_path, name, value):
    path = tmp_path / name
    path.write_text(json.dumps(value))
    return str(path)


def run_stream(tmp_path, reader, writer, time_zone="UTC", check=True):
    """reader-stream read | writer-oss write; returns the writer's CompletedProcess."""
    rpath = _write_json(tmp_path, "reader.json", reader)
    wpath = _write_json(tmp_path, "writer.json", writer)
    r = subprocess.Popen(
        [binary("reader-stream"), "read", "--config", rpath, "--time-zone", time_zone],
        stdout=subprocess.PIPE,
    )
    w = subprocess.run(
        [binary("writer-oss"), "write", "--config", wpath, "--time-zone", time_zone],
        stdin=r.stdout,
        capture_output=True,
        text=True,
    )
    r.stdout.close()
    assert r.wait() == 0
    if check:
        assert w.returncode == 0, w.stderr
    return w


def jsonl(records):
    """JSON lines in the protocol's jsonl form (dates, bytes and decimals tagged)."""
    return "".join(json.dumps(r) + "\n" for r in records)


def run_jsonl(tmp_path, records, writer, check=True, time_zone="UTC"):
    wpath = _write_json(tmp_path, "writer.json", writer)
    w = subprocess.run(
        [binary("writer-oss"), "write", "--config", wpath, "--input-format", "jsonl",
         "--time-zone", time_zone],
        input=jsonl(records),
        capture_output=True,
        text=True,
    )
    if check:
        assert w.returncode == 0, w.stderr
    return w


def run_step(tmp_path, step, writer, *args):
    wpath = _write_json(tmp_path, "writer.json", writer)
    return subprocess.run(
        [binary("writer-oss"), step, "--config", wpath, *args],
        capture_output=True,
        text=True,
    )


def read_objects(bucket, prefix):
    """{key: bytes} of every object under prefix, read with oss2 (CRC-64 checked)."""
    out = {}
    for info in oss2.ObjectIterator(bucket, prefix=prefix):
        result = bucket.get_object(info.key)
        out[info.key] = result.read()
        # oss2 raised InconsistentError if the CRC did not match; check it saw one.
        assert result.server_crc is not None
    return out


def task_name_re(obj, suffix=""):
    return re.compile(re.escape(obj) + r"__[0-9a-f]{32}(_[0-9]+)?" + re.escape(suffix) + "$")


def open_uploads(localcloud, prefix):
    uploads = requests.get(localcloud["oss"]["endpoint"] + "/-/oss/uploads", timeout=10).json()
    return [u for u in uploads["uploads"] if u["key"].startswith(prefix)]


def b64(data):
    return base64.b64encode(data).decode()
