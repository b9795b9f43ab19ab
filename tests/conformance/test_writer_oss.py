"""writer-oss output read back with oss2 (CRC-64 checked) and parsed with Python's csv
module: every column type, nulls, delimiters, quotes, CR and LF, GBK, header, rolling at
maxFileSize, gzip and zstd, text format."""

import base64
import csv
import datetime
import gzip
import io
import json
import subprocess

import pytest
import zstandard

from oss_helpers import *  # noqa: F401,F403
from writer_oss_helpers import (
    binary,
    read_objects,
    run_jsonl,
    run_stream,
    task_name_re,
    writer_config,
)

TRICKY = 'he said "hi", then\r\nleft;\rback\n  spaced  '

READER = {
    "sliceRecordCount": 300,
    "seed": 7,
    "column": [
        {"type": "long", "sequence": 1},
        {"type": "string", "value": TRICKY},
        {"type": "long", "random": "-1000000000000, 1000000000000"},
        {"type": "double", "random": "-1e12, 1e12"},
        {"type": "double", "value": "1.0E-5"},
        {"type": "decimal", "value": "3.10"},
        {"type": "string", "random": "0, 20"},
        {"type": "date", "random": "1970-01-01 00:00:00, 2100-12-31 23:59:59"},
        {"type": "bool", "random": "1, 1"},
        {"type": "bytes", "random": "1, 8"},
    ],
}


def generated(tmp_path, reader):
    """The records reader-stream generates, as JSON values (same seed → same records)."""
    path = tmp_path / "gen.json"
    path.write_text(json.dumps(reader))
    out = subprocess.run(
        [binary("reader-stream"), "read", "--config", str(path), "--format", "jsonl",
         "--time-zone", "UTC"],
        capture_output=True, text=True, check=True,
    )
    return [json.loads(line) for line in out.stdout.splitlines()]


def expected_text(value, null="null"):
    """How writer-oss renders a jsonl value (dates in UTC, default dateFormat)."""
    if value is None:
        return null
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return value  # compared as a number
    if isinstance(value, str):
        return value
    if "decimal" in value:
        return value["decimal"]
    if "bytes" in value:
        return base64.b64decode(value["bytes"]).decode("utf-8", "replace")
    if "date" in value:
        t = value["date"]
        if isinstance(t, int):
            d = datetime.datetime.fromtimestamp(t / 1000, datetime.timezone.utc)
        else:
            d = datetime.datetime.fromisoformat(t.replace("Z", "+00:00"))
        return d.strftime("%Y-%m-%d %H:%M:%S")
    if "double" in value:
        return value["double"]
    raise AssertionError(value)


def assert_rows_equal(rows, records, null="null"):
    assert len(rows) == len(records)
    for row, record in zip(rows, records):
        assert len(row) == len(record), (row, record)
        for field, value in zip(row, record):
            want = expected_text(value, null)
            if isinstance(want, float):
                assert "e" not in field.lower(), field
                assert float(field) == want, (field, want)
            else:
                assert field == want, (field, want)


def parse_csv(data, encoding="utf-8"):
    return list(csv.reader(io.StringIO(data.decode(encoding), newline="")))


def single(objects):
    assert len(objects) == 1, list(objects)
    return next(iter(objects.items()))


def test_every_column_type_round_trips_through_csv(localcloud, bucket, prefix, tmp_path):
    records = generated(tmp_path, READER)
    assert len(records) == 300
    obj = prefix + "all-types"
    run_stream(tmp_path, READER, writer_config(localcloud, obj, suffix="csv"))
    key, data = single(read_objects(bucket, prefix))
    assert task_name_re(obj, ".csv").match(key), key
    head = bucket.head_object(key)
    assert head.headers["x-oss-object-type"] == "Multipart"
    assert head.headers["Content-Type"] == "text/csv"
    rows = parse_csv(data)
    assert_rows_equal(rows, records)
    # The tricky string survived: CR, LF, quotes, delimiter, spaces, nothing trimmed.
    assert rows[0][1] == TRICKY
    assert rows[0][4] == "0.000010"


def test_nulls_empty_strings_and_unicode_from_json_lines(localcloud, bucket, prefix, tmp_path):
    records = [
        [None, "", "x", "#hash", "a,b", '"', "\r", "\n", "测试 ünï", None],
        ["", None, "  ", "tab\there", "end\r\n", {"decimal": "-0.001"}, 1.5, -2, False, {"bytes": "AAEC"}],
        [None],
        [""],
    ]
    obj = prefix + "nulls"
    run_jsonl(tmp_path, records, writer_config(localcloud, obj, nullFormat="\\N"))
    key, data = single(read_objects(bucket, prefix))
    assert task_name_re(obj).match(key)
    rows = parse_csv(data)
    assert_rows_equal(rows, records, null="\\N")


def test_text_format_joins_without_quoting(localcloud, bucket, prefix, tmp_path):
    records = [[1, "a,b", None, True], [2, 'q"q', "", False]]
    run_jsonl(tmp_path, records, writer_config(
        localcloud, prefix + "t", fileFormat="text", fieldDelimiter="\t", lineDelimiter="\r\n"))
    _, data = single(read_objects(bucket, prefix))
    assert data == b'1\ta,b\tnull\ttrue\r\n2\tq"q\t\tfalse\r\n'


def test_gbk_with_header(localcloud, bucket, prefix, tmp_path):
    records = [[i, "中文,字段", "€"] for i in range(50)]
    run_jsonl(tmp_path, records, writer_config(
        localcloud, prefix + "gbk", encoding="GBK", header=["编号", "名称", "x"]))
    _, data = single(read_objects(bucket, prefix))
    # Java 17's GBK writes the euro sign as A2 E3 (observed with String.getBytes("GBK")),
    # which Python's gbk codec cannot read; gb18030 (a superset) reads it back.
    rows = parse_csv(data, "gb18030")
    assert rows[0] == ["编号", "名称", "x"]
    assert_rows_equal(rows[1:], records)
    assert "中文".encode("gbk") in data
    assert b"\xa2\xe3" in data and b"\x80" not in data


def test_rolling_at_max_file_size_repeats_the_header(localcloud, bucket, prefix, tmp_path):
    reader = {
        "sliceRecordCount": 30000,
        "column": [{"type": "long", "sequence": 0}, {"type": "string", "value": "x" * 90}],
    }
    obj = prefix + "roll"
    run_stream(tmp_path, reader, writer_config(
        localcloud, obj, blockSizeInMB=1, maxFileSize=1, header=["n", "s"], suffix=".csv"))
    objects = read_objects(bucket, prefix)
    assert len(objects) >= 3, list(objects)
    keys = sorted(objects, key=lambda k: (len(k), k))
    base = keys[0][: -len(".csv")]
    assert task_name_re(obj, ".csv").match(keys[0])
    assert keys[1:] == [f"{base}_{i}.csv" for i in range(1, len(keys))]
    numbers = []
    for key in keys:
        rows = parse_csv(objects[key])
        assert rows[0] == ["n", "s"]
        numbers += [int(r[0]) for r in rows[1:]]
        assert all(r[1] == "x" * 90 for r in rows[1:])
        # Each rolled object holds about one part of 1 MiB (whole records, a bit over).
        assert len(objects[key]) < 2 * 1024 * 1024
    assert numbers == list(range(30000))


@pytest.mark.parametrize("compress", ["gzip", "zstd"])
def test_compressed_objects(localcloud, bucket, prefix, tmp_path, compress):
    reader = {
        "sliceRecordCount": 40000,
        "seed": 3,
        "column": [{"type": "long", "sequence": 0}, {"type": "string", "random": "10, 60"}],
    }
    records = generated(tmp_path, reader)
    obj = prefix + compress
    run_stream(tmp_path, reader, writer_config(
        localcloud, obj, compress=compress, blockSizeInMB=1, suffix="csv." + ("gz" if compress == "gzip" else "zst")))
    key, data = single(read_objects(bucket, prefix))
    if compress == "gzip":
        text = gzip.decompress(data)
    else:
        text = zstandard.ZstdDecompressor().decompressobj().decompress(data)
    assert_rows_equal(parse_csv(text), records)
    assert len(data) < len(text)
