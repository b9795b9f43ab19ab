"""writer-odps loads what pyodps reads back.

Through the engine too: the same seeded reader-stream job run once into
writer-stream (JSON lines: the generated rows) and once into writer-odps, with
several channels; a column list that leaves table columns out (written as NULL)
and `["*"]`.

reader-stream generates rows of every primitive type (seeded, so a second run with
`--format jsonl` shows the same rows); `reader-stream read | writer-odps write`
loads them into the emulator; pyodps 0.13.2 reads the partition back through the
Tunnel and the rows must be exactly the generated ones. A second test feeds JSON
lines with NULLs and `column: ["*"]`.
"""

import base64
import datetime
import decimal
import json
import os
import subprocess

import pytest
from odps import options

from conftest import WORKSPACE
from odps_helpers import client, unique

TARGET = os.environ.get("CARGO_TARGET_DIR", str(WORKSPACE / "target"))


@pytest.fixture(scope="module")
def binaries():
    names = ("reader-stream", "writer-odps", "writer-stream", "engine")
    subprocess.run(
        ["cargo", "build", "--quiet"] + [a for n in names for a in ("-p", n)],
        cwd=WORKSPACE,
        check=True,
    )
    return {n: os.path.join(TARGET, "debug", n) for n in names}


@pytest.fixture(autouse=True)
def utc_datetimes():
    """pyodps renders DATETIME as naive datetimes in UTC."""
    old = options.local_timezone
    options.local_timezone = False
    yield
    options.local_timezone = old


EPOCH = datetime.datetime(1970, 1, 1)

TABLE = """(c_bigint bigint, c_double double, c_boolean boolean, c_datetime datetime,
    c_string string, c_decimal decimal(18,4), c_binary binary, c_int int, c_date date,
    c_varchar varchar(40), c_tinyint tinyint, c_smallint smallint, c_float float,
    c_char char(10), c_timestamp timestamp) partitioned by (pt string, region string)"""

# Source column i goes to COLUMNS[i] (a reordering of the table's columns).
SOURCE = [
    ("c_string", {"type": "string", "random": "0, 30"}),
    ("c_bigint", {"type": "long", "sequence": -5}),
    ("c_double", {"type": "double", "random": "-1000, 1000"}),
    ("c_boolean", {"type": "bool", "random": "1, 1"}),
    ("c_datetime", {"type": "date", "random": "1960-01-01 00:00:00, 2030-12-31 23:59:59"}),
    ("c_decimal", {"type": "decimal", "value": "-12345.6789"}),
    ("c_binary", {"type": "bytes", "random": "0, 16"}),
    ("c_int", {"type": "long", "random": "-2147483648, 2147483647"}),
    ("c_date", {"type": "date", "random": "1960-01-01 00:00:00, 2030-12-31 23:59:59"}),
    ("c_varchar", {"type": "string", "random": "1, 40"}),
    ("c_tinyint", {"type": "long", "random": "-128, 127"}),
    ("c_smallint", {"type": "long", "random": "-32768, 32767"}),
    ("c_float", {"type": "double", "value": "0.15625"}),
    ("c_char", {"type": "string", "random": "1, 10"}),
    ("c_timestamp", {"type": "date", "random": "1960-01-01 00:00:00, 2030-12-31 23:59:59"}),
]


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, **kw)
    assert p.returncode == 0, p.stderr.decode()
    return p


def expected_cell(column, value):
    """A JSON-lines value as pyodps returns it for the target column."""
    if value is None:
        return None
    if isinstance(value, dict) and "date" in value:
        instant = datetime.datetime.strptime(value["date"], "%Y-%m-%dT%H:%M:%S.%fZ")
        if column == "c_date":
            return instant.date()
        return instant
    if isinstance(value, dict) and "bytes" in value:
        return base64.b64decode(value["bytes"])
    if isinstance(value, dict) and "decimal" in value:
        return decimal.Decimal(value["decimal"])
    if column == "c_float":
        return pytest.approx(value)
    return value


def actual_cell(value):
    import pandas as pd

    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime().replace(tzinfo=None)
    if isinstance(value, datetime.datetime) and value.tzinfo is not None:
        return value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return value


def read_back(o, table, partition):
    with o.get_table(table).open_reader(partition=partition) as reader:
        # Records end with the partition values; keep the data columns.
        return [[actual_cell(v) for v in record.values[:15]] for record in reader]


def test_reader_stream_rows_read_back_by_pyodps(localcloud, binaries, tmp_path):
    o = client(localcloud)
    table = unique("wodps")
    o.execute_sql(f"create table {table} {TABLE}")
    reader = {"sliceRecordCount": 300, "seed": 7, "column": [c for _, c in SOURCE]}
    (tmp_path / "r.json").write_text(json.dumps(reader))
    info = localcloud["odps"]
    writer = {
        "odpsServer": info["endpoint"] + "/api",
        "project": info["project"],
        "table": table,
        "partition": "pt=${bizdate}, region=hz",
        "column": [name for name, _ in SOURCE],
        "truncate": True,
        "accessId": localcloud["access_key_id"],
        "accessKey": localcloud["access_key_secret"],
    }
    (tmp_path / "w.json").write_text(json.dumps(writer))
    rs = [binaries["reader-stream"], "read", "--config", str(tmp_path / "r.json"), "--time-zone", "UTC"]
    generated = [json.loads(l) for l in run(rs + ["--format", "jsonl"]).stdout.decode().splitlines()]
    assert len(generated) == 300
    wo = [binaries["writer-odps"], "write", "--config", str(tmp_path / "w.json"),
          "-p", "bizdate=20240101", "--time-zone", "UTC"]
    source = subprocess.Popen(rs, stdout=subprocess.PIPE)
    loaded = subprocess.run(wo, stdin=source.stdout, capture_output=True)
    source.stdout.close()
    assert source.wait() == 0
    assert loaded.returncode == 0, loaded.stderr.decode()
    assert b"dirty record" not in loaded.stderr

    columns = [c.name for c in o.get_table(table).table_schema.simple_columns]
    position = {name: i for i, (name, _) in enumerate(SOURCE)}
    expected = []
    for row in generated:
        expected.append([expected_cell(name, row[position[name]]) for name in columns])
    actual = read_back(o, table, "pt=20240101,region=hz")
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert a == e

    # A second run with truncate replaces the partition instead of appending.
    source = subprocess.Popen(rs, stdout=subprocess.PIPE)
    loaded = subprocess.run(wo, stdin=source.stdout, capture_output=True)
    source.stdout.close()
    assert source.wait() == 0 and loaded.returncode == 0, loaded.stderr.decode()
    assert len(read_back(o, table, "pt=20240101,region=hz")) == 300


def test_nulls_and_star_read_back_by_pyodps(localcloud, binaries, tmp_path):
    o = client(localcloud)
    table = unique("wodps_star")
    o.execute_sql(f"create table {table} {TABLE}")
    info = localcloud["odps"]
    writer = {
        "odpsServer": info["endpoint"] + "/api",
        "project": info["project"],
        "table": table,
        "partition": "pt='1' / region='a'",
        "column": ["*"],
        "truncate": False,
        "accessId": localcloud["access_key_id"],
        "accessKey": localcloud["access_key_secret"],
        "emptyAsNull": True,
    }
    (tmp_path / "w.json").write_text(json.dumps(writer))
    lines = [
        [1, 2.5, False, {"date": "2024-02-29T12:00:00.000Z"}, "中文", {"decimal": "1.5"},
         {"bytes": "AP8="}, 3, {"date": "2024-02-29T00:00:00.000Z"}, "v", -1, 2, 0.5, "c",
         {"date": "2024-02-29T12:00:00.123Z"}],
        [None] * 15,
        [None, None, None, None, "", None, None, None, None, "", None, None, None, None, None],
    ]
    text = "".join(json.dumps(l) + "\n" for l in lines)
    run([binaries["writer-odps"], "write", "--config", str(tmp_path / "w.json"),
         "--input-format", "jsonl", "--time-zone", "UTC"], input=text.encode())
    actual = read_back(o, table, "pt=1,region=a")
    assert actual == [
        [1, 2.5, False, datetime.datetime(2024, 2, 29, 12), "中文", decimal.Decimal("1.5"),
         b"\x00\xff", 3, datetime.date(2024, 2, 29), "v", -1, 2, 0.5, "c",
         datetime.datetime(2024, 2, 29, 12, 0, 0, 123000)],
        [None] * 15,
        [None] * 15,  # emptyAsNull: "" is written as NULL
    ]


def engine_job(path, reader, writer_name, writer, channels):
    job = {"job": {"setting": {"speed": {"channel": channels}, "errorLimit": {"record": 0}},
                   "content": [{"reader": {"name": "streamreader", "parameter": reader},
                                "writer": {"name": writer_name, "parameter": writer}}]}}
    path.write_text(json.dumps(job))
    return path


@pytest.mark.parametrize("star", [False, True])
def test_engine_rows_read_back_by_pyodps(localcloud, binaries, tmp_path, star):
    o = client(localcloud)
    table = unique("wodps_engine")
    o.execute_sql(f"create table {table} {TABLE}")
    table_columns = [c.name for c in o.get_table(table).table_schema.simple_columns]
    sources = dict(SOURCE)
    if star:
        # Every column, in table order.
        chosen = table_columns
        column = ["*"]
    else:
        # Reordered, and three columns left out: they are written as NULL.
        chosen = [n for n, _ in SOURCE if n not in ("c_float", "c_char", "c_timestamp")]
        column = chosen
    reader = {"sliceRecordCount": 200, "seed": 11, "column": [sources[n] for n in chosen]}
    info = localcloud["odps"]
    writer = {
        "odpsServer": info["endpoint"] + "/api",
        "project": info["project"],
        "table": table,
        "partition": "pt=${bdp.system.bizdate},region=hz",
        "column": column,
        "truncate": True,
        "accessId": localcloud["access_key_id"],
        "accessKey": localcloud["access_key_secret"],
    }
    plugin_dir = os.path.dirname(binaries["engine"])
    engine = [binaries["engine"], "run", "--plugin-dir", plugin_dir, "--schedule-time", "2024-03-02T08:00:00", "-q"]
    env = dict(os.environ, TZ="UTC")
    shown = run(engine + [str(engine_job(tmp_path / "show.json", reader, "streamwriter",
                                         {"format": "jsonl"}, 3))], env=env)
    generated = [json.loads(l) for l in shown.stdout.decode().splitlines()]
    assert len(generated) == 600
    run(engine + [str(engine_job(tmp_path / "load.json", reader, "odpswriter", writer, 3))], env=env)

    position = {name: i for i, name in enumerate(chosen)}
    expected = sorted(
        ([expected_cell(n, row[position[n]]) if n in position else None for n in table_columns]
         for row in generated),
        key=lambda r: r[0],
    )
    actual = sorted(read_back(o, table, "pt=20240301,region=hz"), key=lambda r: r[0])
    assert len(actual) == 600
    for a, e in zip(actual, expected):
        assert a == e
