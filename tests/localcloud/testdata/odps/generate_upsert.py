"""Records what pyodps 0.13.2 sends for a Delta table's upsert session, and the
SDK's key hashes, into upsert_capture.json (read by tests/odps_upsert_vectors.rs).

Run from the workspace root after `cargo build -p localcloud`:

    .venv/bin/python tests/localcloud/testdata/odps/generate_upsert.py

It starts `target/debug/localcloud serve` (or $LOCALCLOUD_BIN), creates a Delta
table, and drives one upsert session (upserts and deletes, close, commit) and one
aborted session through pyodps, capturing every HTTP request pyodps prepares
(method, path, query, headers without Authorization, body) and the answers. The
merged rows are read back with SELECT and must equal the
script's own merge of the changes (last change per key wins). The hash vectors come from pyodps' own
hashers: `odps.tunnel.hasher.hash_value` (pure Python) per value, and the record
hasher pyodps uses at run time (`hasher_c` when built) per key.
"""

import datetime
import decimal
import json
import os
import pathlib
import subprocess
import sys
import urllib.parse

import odps
import requests
from odps import ODPS, options
from odps.tunnel import TableTunnel
from odps.tunnel import hasher as py_hasher
from odps.tunnel.io import writer as tunnel_writer

HERE = pathlib.Path(__file__).resolve().parent
WORKSPACE = HERE.parents[3]
UTC = datetime.timezone.utc

os.environ["TZ"] = "UTC"
options.local_timezone = False

CAPTURED = []
_send = requests.Session.send


def _capturing_send(self, request, **kw):
    response = _send(self, request, **kw)
    body = request.body or b""
    if isinstance(body, str):
        body = body.encode()
    url = urllib.parse.urlparse(request.url)
    entry = {
        "method": request.method,
        "path": url.path,
        "query": [
            [k, v]
            for k, v in urllib.parse.parse_qsl(url.query, keep_blank_values=True)
        ],
        "headers": {
            k.lower(): v
            for k, v in request.headers.items()
            if k.lower()
            not in ("authorization", "date", "user-agent", "x-odps-user-agent", "odps-tunnel-retry-trace-id")
        },
        "response_status": response.status_code,
    }
    if url.path.endswith("/upserts"):
        if body:
            entry["body_hex"] = bytes(body).hex()
        if response.headers.get("content-type", "").startswith("application/json") and response.content:
            entry["response_json"] = response.json()
        CAPTURED.append(entry)
    return response


def epoch_ms(dt):
    return int(dt.replace(tzinfo=UTC).timestamp() * 1000)


def cell(value):
    if isinstance(value, datetime.datetime):
        return {"epoch_ms": epoch_ms(value)}
    return value


def main():
    binary = os.environ.get("LOCALCLOUD_BIN", str(WORKSPACE / "target" / "debug" / "localcloud"))
    proc = subprocess.Popen([binary, "serve"], stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(proc.stdout.readline())
        run(info)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def run(info):
    o = ODPS(
        info["access_key_id"],
        info["access_key_secret"],
        info["odps"]["project"],
        endpoint=info["odps"]["endpoint"] + "/api",
    )
    columns = [("k", "bigint"), ("s", "string"), ("d", "double"), ("b", "boolean"), ("t", "datetime")]
    ddl = (
        "CREATE TABLE upsert_vec (k bigint NOT NULL, s string NOT NULL, d double, b boolean, "
        "t datetime, PRIMARY KEY (k, s)) "
        'TBLPROPERTIES ("transactional"="true", "write.bucket.num"="4")'
    )
    o.execute_sql(ddl)
    t0 = datetime.datetime(2024, 1, 2, 3, 4, 5, 678000)
    changes = []
    for i in range(12):
        changes.append(("U", [i, f"key-{i}", i / 4, i % 2 == 0, t0 + datetime.timedelta(seconds=i)]))
    changes += [
        ("U", [3, "key-3", None, None, None]),
        ("D", [4, "key-4", None, None, None]),
        ("U", [-7, "负", -1.5, False, t0]),
        ("D", [5, "key-5", None, None, None]),
        ("U", [5, "key-5", 55.0, True, None]),
        ("D", [100, "absent", None, None, None]),
    ]
    requests.Session.send = _capturing_send
    tunnel = TableTunnel(o)
    session = tunnel.create_upsert_session("upsert_vec", slot_num=2)
    stream = session.open_upsert_stream()
    for op, values in changes:
        rec = session.new_record(values)
        (stream.upsert if op == "U" else stream.delete)(rec)
    stream.close()
    session.commit()
    committed = list(CAPTURED)
    CAPTURED.clear()
    aborted = tunnel.create_upsert_session("upsert_vec")
    stream = aborted.open_upsert_stream()
    stream.upsert(aborted.new_record([999, "never", None, None, None]))
    stream.close()
    aborted.abort()
    aborted_requests = list(CAPTURED)
    requests.Session.send = _send
    with o.execute_sql("SELECT * FROM upsert_vec").open_reader() as reader:
        merged = sorted(([cell(v) for v in r.values] for r in reader), key=lambda r: (r[0], r[1]))
    # The merge semantics, computed here independently: the last change of a key wins.
    expected = {}
    for op, values in changes:
        if op == "U":
            expected[(values[0], values[1])] = [cell(v) for v in values]
        else:
            expected.pop((values[0], values[1]), None)
    if merged != sorted(expected.values(), key=lambda r: (r[0], r[1])):
        raise SystemExit(f"read back {merged}, expected {sorted(expected.values())}")

    hash_cases = []
    samples = {
        "bigint": [0, 1, -1, 42, 2**40 + 7, -(2**63), 2**63 - 1],
        "int": [0, 7, -123456],
        "string": ["", "a", "key-1", "负", "Ünïcødé ☃", "x" * 100],
        "binary": [b"\x00\xff\x80", b"bytes"],
        "double": [0.0, -0.0, 1.5, -2.25, 1e300],
        "float": [0.0, 1.5, -3.25],
        "boolean": [True, False],
        "date": [datetime.date(1970, 1, 1), datetime.date(2024, 2, 29), datetime.date(1900, 1, 1)],
        "datetime": [t0, datetime.datetime(1969, 12, 31, 23, 59, 59)],
    }
    decimals = ["0", "123.45", "-0.001", "1.23456789", "99999.99995", "1E+3", "-123456789012.3456789", "0.00005"]
    for typ in ("decimal(18,4)", "decimal(38,10)", "decimal"):
        samples[typ] = [decimal.Decimal(d) for d in decimals]
    for typ, values in samples.items():
        for v in values:
            h = py_hasher.hash_value("default", typ, v)
            if isinstance(v, decimal.Decimal):
                shown = {"decimal": str(v)}
            elif isinstance(v, bytes):
                shown = {"bytes_hex": v.hex()}
            elif isinstance(v, datetime.datetime):
                shown = {"epoch_ms": epoch_ms(v)}
            elif isinstance(v, datetime.date):
                shown = {"epoch_days": (v - datetime.date(1970, 1, 1)).days}
            else:
                shown = v
            hash_cases.append({"type": typ, "value": shown, "hash": h})

    key_schema = odps.models.TableSchema.from_lists(["k", "s"], ["bigint", "string"])
    record_hasher = tunnel_writer.RecordHasher(key_schema, "default", ["k", "s"])
    record_cases = []
    for k in range(-50, 50, 7):
        for s in ["", "a", f"key-{k}", "负"]:
            h = record_hasher.hash_list([k, s])
            record_cases.append({"values": [k, s], "hash": h, "bucket_4": h % 4, "bucket_16": h % 16})

    out = {
        "generator": "tests/localcloud/testdata/odps/generate_upsert.py",
        "pyodps_version": odps.__version__,
        "record_hasher": f"{tunnel_writer.RecordHasher.__module__}.RecordHasher",
        "table": {
            "ddl": ddl,
            "columns": [{"name": n, "type": t} for n, t in columns],
            "primary_key": ["k", "s"],
            "buckets": 4,
        },
        "meta_columns": [
            {"name": "__version", "type": "bigint"},
            {"name": "__app_version", "type": "bigint"},
            {"name": "__operation", "type": "tinyint"},
            {"name": "__key_cols", "type": "array<bigint>"},
            {"name": "__value_cols", "type": "array<bigint>"},
        ],
        "changes": [{"op": op, "values": [cell(v) for v in values]} for op, values in changes],
        "committed_session_requests": committed,
        "aborted_session_requests": aborted_requests,
        "merged_rows": merged,
        "value_hashes": hash_cases,
        "record_hashes": record_cases,
    }
    (HERE / "upsert_capture.json").write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {HERE / 'upsert_capture.json'}: {len(committed)} + {len(aborted_requests)} requests")


if __name__ == "__main__":
    sys.exit(main())
