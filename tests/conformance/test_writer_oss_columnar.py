"""writer-oss Parquet and ORC objects read back with oss2 (CRC-64 checked) and parsed with
pyarrow: every column type, nulls, every codec, the schema derived from `column` or given
as `parquetSchema`, row groups and rolling at maxFileSize, dirty records, bad inputs."""

import base64
import datetime
import decimal
import io
import json
import struct

import pyarrow as pa
import pyarrow.orc as orc
import pyarrow.parquet as pq
import pytest

from oss_helpers import *  # noqa: F401,F403
from writer_oss_helpers import read_objects, run_jsonl, run_stream, task_name_re, writer_config

UTC = datetime.timezone.utc
D = decimal.Decimal


def ms(text):
    return int(datetime.datetime.fromisoformat(text).timestamp() * 1000)


# name, type, jsonl values (None = null), expected python values
COLUMNS = [
    ("id", "bigint", [1, 2, 3, -9223372036854775808, 9223372036854775807]),
    ("small", "smallint", [-32768, 32767, None, 0, 7]),
    ("i", "int", [2147483647, -2147483648, None, 0, 5]),
    ("d", "double", [1.5, -2.25e300, None, 0.1, 5e-324]),
    ("f", "float", [1.5, -0.25, None, 3.0, 0.0]),
    ("amount", "decimal(20,4)", [{"decimal": "1234567890123456.7891"}, {"decimal": "-0.0001"}, None,
                                 {"decimal": "12"}, 7]),
    ("name", "string", ["héllo, 世界", "", None, "tab\tline\nend", "x" * 300]),
    ("raw", "binary", [{"bytes": "AAEC/w=="}, {"bytes": ""}, None, {"bytes": "3q2+7w=="}, {"bytes": "AA=="}]),
    ("flag", "boolean", [True, False, None, True, False]),
    ("day", "date", [{"date": ms("2024-02-29T23:30:00+00:00")}, {"date": ms("1969-12-31T23:59:59+00:00")},
                     None, {"date": 0}, {"date": ms("2100-01-01T00:00:00+00:00")}]),
    ("ts", "timestamp", [{"date": ms("2024-02-29T23:30:00.123+00:00")}, {"date": -1}, None,
                         {"date": 0}, {"date": ms("2100-01-01T12:00:00+00:00")}]),
]
ROWS = [[c[2][r] for c in COLUMNS] for r in range(5)]


def expected(type_, value, zone=UTC):
    if value is None:
        return None
    if type_.startswith("decimal"):
        scale = int(type_.split(",")[1].rstrip(")"))
        text = value["decimal"] if isinstance(value, dict) else str(value)
        return D(text).quantize(D(1).scaleb(-scale))
    if type_ == "binary":
        return base64.b64decode(value["bytes"])
    if type_ == "date":
        return datetime.datetime.fromtimestamp(value["date"] / 1000, zone).date()
    if type_ == "timestamp":
        return datetime.datetime.fromtimestamp(value["date"] / 1000, UTC)
    if type_ == "float":
        return struct.unpack("f", struct.pack("f", value))[0]
    return value


def table_rows(table):
    return [list(r.values()) for r in table.to_pylist()]


def check_values(table, columns, rows, zone=UTC):
    assert table.column_names == [c[0] for c in columns]
    got = table_rows(table)
    assert len(got) == len(rows)
    for r, (got_row, row) in enumerate(zip(got, rows)):
        for (name, type_, *_), g, v in zip(columns, got_row, row):
            want = expected(type_, v, zone)
            if isinstance(g, datetime.datetime) and g.tzinfo is None:
                g = g.replace(tzinfo=UTC)
            assert g == want, (r, name, g, want)


def parquet_of(bucket, prefix):
    objects = read_objects(bucket, prefix)
    assert len(objects) == 1, list(objects)
    key, data = next(iter(objects.items()))
    return key, pq.ParquetFile(io.BytesIO(data))


def schema_columns(pf):
    s = pf.schema
    return [(s.column(i).name, s.column(i).physical_type, str(s.column(i).logical_type),
             s.column(i).max_definition_level) for i in range(len(s))]


DERIVED = [
    ("id", "INT64", "None", 1),
    ("small", "INT32", "None", 1),
    ("i", "INT32", "None", 1),
    ("d", "DOUBLE", "None", 1),
    ("f", "FLOAT", "None", 1),
    ("amount", "FIXED_LEN_BYTE_ARRAY", "Decimal(precision=20, scale=4)", 1),
    ("name", "BYTE_ARRAY", "String", 1),
    ("raw", "BYTE_ARRAY", "None", 1),
    ("flag", "BOOLEAN", "None", 1),
    ("day", "INT32", "Date", 1),
    ("ts", "INT64", "Timestamp(isAdjustedToUTC=true, timeUnit=milliseconds, is_from_converted_type=false, force_set_converted_type=false)", 1),
]


@pytest.mark.parametrize("codec", ["NONE", "SNAPPY", "GZIP", "ZSTD", "LZ4_RAW", "BROTLI"])
def test_parquet_every_type_and_codec(localcloud, bucket, prefix, tmp_path, codec):
    obj = prefix + "pq"
    column = [{"name": n, "type": t} for n, t, _ in COLUMNS]
    run_jsonl(tmp_path, ROWS, writer_config(
        localcloud, obj, fileFormat="parquet", column=column, compress=codec, suffix="parquet"))
    key, pf = parquet_of(bucket, prefix)
    assert task_name_re(obj, ".parquet").match(key), key
    assert bucket.head_object(key).headers["Content-Type"] == "application/vnd.apache.parquet"
    assert schema_columns(pf) == DERIVED
    assert pf.schema.to_arrow_schema().names == [c[0] for c in COLUMNS]
    meta = pf.metadata
    # pyarrow names the LZ4_RAW codec (Parquet codec 7) "LZ4".
    want = {"NONE": "UNCOMPRESSED", "LZ4_RAW": "LZ4"}.get(codec, codec)
    assert {meta.row_group(0).column(i).compression for i in range(len(COLUMNS))} == {want}
    check_values(pf.read(), COLUMNS, ROWS)


def test_parquet_schema_given_is_written_exactly(localcloud, bucket, prefix, tmp_path):
    schema = """message hive_schema {
      required int64 id;
      optional int32 tiny (INTEGER(8,true));
      optional int32 d32 (DECIMAL(9,2));
      optional int64 d64 (DECIMAL(18,3));
      optional binary dbin (DECIMAL(30,5));
      optional int96 legacy_ts;
      optional int64 local_ts (TIMESTAMP(MICROS,false));
      optional int64 nano_ts (TIMESTAMP(NANOS,true));
      optional binary doc (JSON);
      optional fixed_len_byte_array(4) four;
    }"""
    t = ms("2024-06-30T16:30:00.5+00:00")
    rows = [
        [1, -128, {"decimal": "1234567.89"}, {"decimal": "-999999999999999.999"},
         {"decimal": "-1234567890123456789012345.12345"}, {"date": t}, {"date": t}, {"date": t},
         '{"a": 1}', {"bytes": "AQIDBA=="}],
        [2, None, None, None, None, None, None, None, None, None],
    ]
    run_jsonl(tmp_path, rows, writer_config(
        localcloud, prefix + "given", fileFormat="parquet", parquetSchema=schema, timeZone=None),
        time_zone="Asia/Shanghai")
    _, pf = parquet_of(bucket, prefix)
    cols = schema_columns(pf)
    assert [c[:2] for c in cols] == [
        ("id", "INT64"), ("tiny", "INT32"), ("d32", "INT32"), ("d64", "INT64"),
        ("dbin", "BYTE_ARRAY"), ("legacy_ts", "INT96"), ("local_ts", "INT64"),
        ("nano_ts", "INT64"), ("doc", "BYTE_ARRAY"), ("four", "FIXED_LEN_BYTE_ARRAY")]
    assert cols[0][3] == 0 and all(c[3] == 1 for c in cols[1:])
    assert cols[1][2] == "Int(bitWidth=8, isSigned=true)"
    assert cols[6][2].startswith("Timestamp(isAdjustedToUTC=false, timeUnit=microseconds")
    assert cols[7][2].startswith("Timestamp(isAdjustedToUTC=true, timeUnit=nanoseconds")
    assert cols[8][2] == "JSON"
    assert pf.metadata.schema.to_arrow_schema() is not None
    got = table_rows(pf.read())
    instant = datetime.datetime.fromtimestamp(t / 1000, UTC)
    # Not adjusted to UTC: the wall clock in the job's zone (Asia/Shanghai, +08:00).
    wall = (instant + datetime.timedelta(hours=8)).replace(tzinfo=None)
    assert got[0] == [1, -128, D("1234567.89"), D("-999999999999999.999"),
                      D("-1234567890123456789012345.12345"), instant.replace(tzinfo=None),
                      wall, instant, '{"a": 1}', b"\x01\x02\x03\x04"]
    assert got[1] == [2] + [None] * 9


# ORC-763: -1 ms has no ORC encoding (a dirty record, below); -1500 ms has.
ORC_COLUMNS = [c if c[0] != "ts" else (c[0], c[1], [c[2][0], {"date": -1500}] + c[2][2:])
               for c in COLUMNS if not c[1].startswith("decimal")] + [
    ("tiny", "tinyint", [-128, 127, None, 0, 1])]
ORC_ROWS = [[c[2][r] for c in ORC_COLUMNS] for r in range(5)]


@pytest.mark.parametrize("codec", ["NONE", "SNAPPY", "ZLIB", "ZSTD", "LZ4"])
def test_orc_every_type_and_codec(localcloud, bucket, prefix, tmp_path, codec):
    column = [{"name": n, "type": t} for n, t, _ in ORC_COLUMNS]
    run_jsonl(tmp_path, ORC_ROWS, writer_config(
        localcloud, prefix + "orc", fileFormat="orc", column=column, compress=codec, suffix="orc",
        timeZone=None),
        time_zone="Asia/Shanghai")
    objects = read_objects(bucket, prefix)
    assert len(objects) == 1
    f = orc.ORCFile(io.BytesIO(next(iter(objects.values()))))
    assert f.compression == ("UNCOMPRESSED" if codec == "NONE" else codec)
    types = [str(t) for t in f.schema.types]
    assert types == ["int64", "int16", "int32", "double", "float", "string", "binary", "bool",
                     "date32[day]", "timestamp[ns, tz=UTC]", "int8"]
    # DATE is the local date in the job's zone (Asia/Shanghai).
    check_values(f.read(), ORC_COLUMNS, ORC_ROWS, zone=datetime.timezone(datetime.timedelta(hours=8)))


def test_many_row_groups_and_rolling_at_max_file_size(localcloud, bucket, prefix, tmp_path):
    reader = {
        "sliceRecordCount": 60000,
        "column": [{"type": "long", "sequence": 0}, {"type": "string", "random": "40, 60"}],
    }
    obj = prefix + "roll"
    run_stream(tmp_path, reader, writer_config(
        localcloud, obj, fileFormat="parquet", column=[{"name": "n", "type": "bigint"},
                                                       {"name": "s", "type": "string"}],
        rowGroupSizeInMB=1, blockSizeInMB=1, maxFileSize=1, suffix=".parquet"))
    objects = read_objects(bucket, prefix)
    assert len(objects) >= 2, list(objects)
    keys = sorted(objects, key=lambda k: (len(k), k))
    base = keys[0][: -len(".parquet")]
    assert keys[1:] == [f"{base}_{i}.parquet" for i in range(1, len(keys))]
    numbers = []
    for key in keys:
        pf = pq.ParquetFile(io.BytesIO(objects[key]))
        assert pf.metadata.num_row_groups >= 1
        numbers += pf.read().column("n").to_pylist()
    assert numbers == list(range(60000))
    assert sum(pq.ParquetFile(io.BytesIO(objects[k])).metadata.num_row_groups for k in keys) >= 3


def test_empty_task_writes_a_valid_empty_file(localcloud, bucket, prefix, tmp_path):
    run_jsonl(tmp_path, [], writer_config(
        localcloud, prefix + "empty", fileFormat="parquet",
        column=[{"name": "a", "type": "bigint"}]))
    _, pf = parquet_of(bucket, prefix)
    assert pf.metadata.num_rows == 0
    assert pf.schema.column(0).name == "a"
    run_jsonl(tmp_path, [], writer_config(
        localcloud, prefix + "none", fileFormat="orc", generateEmptyFile=False,
        column=[{"name": "a", "type": "bigint"}]))
    assert list(read_objects(bucket, prefix + "none")) == []


def test_a_value_that_does_not_fit_is_a_dirty_record_naming_the_column(localcloud, bucket, prefix, tmp_path):
    column = [{"name": "id", "type": "bigint"}, {"name": "amount", "type": "decimal(5,2)"}]
    rows = [[1, {"decimal": "1.5"}], [2, {"decimal": "1234.5"}], [3, "x"], [4, None]]
    cfg = writer_config(localcloud, prefix + "dirty", fileFormat="parquet", column=column)
    w = run_jsonl(tmp_path, rows, cfg, check=False)
    assert w.returncode != 0
    assert 'column "amount"' in w.stderr and "decimal(5,2)" in w.stderr, w.stderr
    assert list(read_objects(bucket, prefix)) == []
    dirty = tmp_path / "dirty.jsonl"
    path = tmp_path / "w.json"
    path.write_text(json.dumps(cfg))
    import subprocess
    from writer_oss_helpers import binary, jsonl
    w = subprocess.run([binary("writer-oss"), "write", "--config", str(path), "--input-format",
                        "jsonl", "--time-zone", "UTC", "--error-limit", "2",
                        "--dirty-file", str(dirty)],
                       input=jsonl(rows), capture_output=True, text=True)
    assert w.returncode == 0, w.stderr
    _, pf = parquet_of(bucket, prefix)
    assert table_rows(pf.read()) == [[1, D("1.50")], [4, None]]
    lines = [json.loads(line) for line in dirty.read_text().splitlines()]
    assert len(lines) == 2
    assert all('amount' in json.dumps(line) for line in lines), lines


@pytest.mark.parametrize("extra, needle", [
    ({"column": [{"name": "a", "type": "map<string,int>"}]}, "column[0].type"),
    ({"column": [{"name": "a", "type": "bigint"}], "compress": "ZLIB"}, "compress"),
    ({"column": [{"name": "a", "type": "bigint"}], "compress": "LZO"}, "compress"),
    ({"parquetSchema": "message m { optional int65 a; }"}, "parquetSchema"),
    ({"parquetSchema": "message m { optional group g { optional int32 x; } }"}, "parquetSchema"),
    ({}, "column is required"),
    ({"column": [{"name": "a", "type": "bigint"}], "writeSingleObject": True}, "writeSingleObject"),
    ({"column": [{"name": "a", "type": "bigint"}], "rowGroupSizeInMB": 0}, "rowGroupSizeInMB"),
])
def test_bad_parquet_parameters_exit_2_naming_the_parameter(localcloud, tmp_path, prefix, extra, needle):
    cfg = writer_config(localcloud, prefix + "bad", fileFormat="parquet", **extra)
    w = run_jsonl(tmp_path, [[1]], cfg, check=False)
    assert w.returncode == 2, w.stderr
    assert needle in w.stderr, w.stderr
    assert "panicked" not in w.stderr


@pytest.mark.parametrize("extra, needle", [
    ({"column": [{"name": "a", "type": "decimal(10,2)"}]}, "column[0].type"),
    ({"column": [{"name": "a", "type": "bigint"}], "compress": "BROTLI"}, "compress"),
    ({"column": [{"name": "a", "type": "bigint"}], "parquetSchema": "message m { optional int64 a; }"},
     "parquetSchema"),
])
def test_bad_orc_parameters_exit_2_naming_the_parameter(localcloud, tmp_path, prefix, extra, needle):
    cfg = writer_config(localcloud, prefix + "bad", fileFormat="orc", **extra)
    w = run_jsonl(tmp_path, [[1]], cfg, check=False)
    assert w.returncode == 2, w.stderr
    assert needle in w.stderr, w.stderr


@pytest.mark.parametrize("fmt", ["parquet", "orc"])
def test_records_wider_than_column_exit_2_naming_column(localcloud, bucket, tmp_path, prefix, fmt):
    cfg = writer_config(localcloud, prefix + "w", fileFormat=fmt,
                        column=[{"name": "a", "type": "bigint"}])
    w = run_jsonl(tmp_path, [[1, "extra"]], cfg, check=False)
    assert w.returncode == 2, w.stderr
    assert "column" in w.stderr and "1 columns but a record has 2 values" in w.stderr, w.stderr
    assert "panicked" not in w.stderr
    assert list(read_objects(bucket, prefix)) == []


FAULTY_READER = {
    "sliceRecordCount": 50000,
    "seed": 13,
    "column": [{"type": "long", "sequence": 0}, {"type": "string", "random": "20, 80"},
               {"type": "double", "random": "0, 1"}, {"type": "date", "random": "2020-01-01 00:00:00, 2030-01-01 00:00:00"}],
}
FAULTY_COLUMNS = [{"name": "n", "type": "bigint"}, {"name": "s", "type": "string"},
                  {"name": "x", "type": "double"}, {"name": "t", "type": "timestamp"}]


def read_columnar(fmt, data):
    """The pyarrow table of one Parquet or ORC object."""
    if fmt == "orc":
        import pyarrow.orc as orc
        return orc.ORCFile(io.BytesIO(data)).read()
    return pq.read_table(io.BytesIO(data))


@pytest.mark.parametrize("fmt", ["parquet", "orc"])
def test_columnar_under_10_percent_faults_gives_identical_objects(localcloud, admin, bucket, prefix, tmp_path, fmt):
    import requests
    from writer_oss_helpers import open_uploads
    cfg = writer_config(localcloud, prefix + "faults", fileFormat=fmt, column=FAULTY_COLUMNS,
                        compress="NONE", rowGroupSizeInMB=1, blockSizeInMB=1, maxFileSize=1,
                        suffix=fmt)
    run_stream(tmp_path, FAULTY_READER, cfg)
    clean = read_objects(bucket, prefix)
    assert len(clean) >= 2, list(clean)
    oss = admin["oss"]
    before = len(oss.faults()["injected"])
    requests.delete(localcloud["oss"]["endpoint"] + "/-/oss/requests", timeout=10).raise_for_status()
    oss.add_fault(rate=0.04, kind="error", status=503, code="ServiceUnavailable")
    oss.add_fault(rate=0.03, kind="error", status=500, code="InternalError")
    oss.add_fault(rate=0.03, kind="drop")
    oss.add_fault(operation="CompleteMultipartUpload", times=1, after_apply=True, kind="drop")
    # At least one lost part whatever the draw.
    oss.add_fault(operation="UploadPart", times=1, kind="error", status=503, code="ServiceUnavailable")
    try:
        w = run_stream(tmp_path, FAULTY_READER, cfg)
        injected = oss.faults()["injected"][before:]
    finally:
        oss.clear_faults()
    log = requests.get(localcloud["oss"]["endpoint"] + "/-/oss/requests", timeout=10).json()["requests"]
    print(f"{len(injected)} faults injected in {len(log)} requests")
    assert len(injected) >= 2, injected
    assert "an earlier attempt succeeded" in w.stderr
    # Identical to the clean run: same names, same bytes, nothing left open.
    assert read_objects(bucket, prefix) == clean
    assert open_uploads(localcloud, prefix) == []
    rows = sum(read_columnar(fmt, d).num_rows for d in clean.values())
    assert rows == 50000


@pytest.mark.parametrize("fmt", ["parquet", "orc"])
def test_killed_columnar_writer_leaves_nothing_and_a_rerun_gives_the_same_names(localcloud, bucket, prefix, tmp_path, fmt):
    import signal
    import subprocess
    import time
    from writer_oss_helpers import binary, jsonl, open_uploads
    cfg = writer_config(localcloud, prefix + "kill", fileFormat=fmt, blockSizeInMB=1,
                        rowGroupSizeInMB=1, column=[{"name": "n", "type": "bigint"},
                                                    {"name": "s", "type": "string"}])
    path = tmp_path / "w.json"
    path.write_text(json.dumps(cfg))
    records = [[i, "row %d %s" % (i, "y" * (i % 200))] for i in range(40000)]
    writer = subprocess.Popen(
        [binary("writer-oss"), "write", "--config", str(path), "--input-format", "jsonl"],
        stdin=subprocess.PIPE, stderr=subprocess.DEVNULL)
    writer.stdin.write(jsonl(records[:30000]).encode())
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
    assert read_objects(bucket, prefix) == {}
    killed = open_uploads(localcloud, prefix)
    assert len(killed) == 1 and task_name_re(prefix + "kill").match(killed[0]["key"])
    first = None
    for _ in range(2):
        run_jsonl(tmp_path, records, cfg)
        objects = read_objects(bucket, prefix)
        assert list(objects) == [killed[0]["key"]]
        assert table_rows(read_columnar(fmt, objects[killed[0]["key"]])) == records
        assert open_uploads(localcloud, prefix) == []
        first = first or objects
        assert objects == first
