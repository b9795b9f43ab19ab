"""pyodps 0.13.2 against the MaxCompute emulator: tables, partitions, SQL, Tunnel."""

import datetime
import decimal
import time
from email.utils import formatdate

import pytest
from odps import ODPS, errors, options
from odps.accounts import StsAccount
from odps.compat import Monthdelta
from odps.tunnel import TableTunnel

from odps_helpers import (
    captured_requests,
    clear_request_log,
    client,
    dump,
    request_log,
    unique,
    uploads,
)

ALL_TYPES = [
    ("c_bigint", "bigint"),
    ("c_double", "double"),
    ("c_string", "string"),
    ("c_datetime", "datetime"),
    ("c_boolean", "boolean"),
    ("c_decimal", "decimal(18,4)"),
    ("c_tinyint", "tinyint"),
    ("c_smallint", "smallint"),
    ("c_int", "int"),
    ("c_float", "float"),
    ("c_char", "char(5)"),
    ("c_varchar", "varchar(10)"),
    ("c_date", "date"),
    ("c_timestamp", "timestamp"),
    ("c_timestamp_ntz", "timestamp_ntz"),
    ("c_binary", "binary"),
    ("c_interval_day_time", "interval_day_time"),
    ("c_interval_year_month", "interval_year_month"),
    ("c_json", "json"),
]


# pyodps reads and writes these only with pandas installed.
PANDAS_TYPES = {"timestamp", "timestamp_ntz", "interval_day_time"}


def all_type_rows(pd):
    full = [
        -9007199254740993,
        -0.125,
        "héllo, 世界",
        datetime.datetime(2024, 1, 2, 3, 4, 5, 678000),
        True,
        decimal.Decimal("-12.3400"),
        -128,
        32767,
        -2147483648,
        2.5,
        "ab",
        "varchar",
        datetime.date(1969, 12, 31),
        pd.Timestamp("2024-01-02 03:04:05.123456789"),
        pd.Timestamp("1969-12-31 23:59:59.5"),
        b"\x00\xff\x10",
        pd.Timedelta(days=1, seconds=2, nanoseconds=3),
        Monthdelta(14),
        {"a": [1, 2], "b": None},
    ]
    empties = [0, 0.0, "", datetime.datetime(1970, 1, 1), False, decimal.Decimal("0.0000"),
               0, 0, 0, 0.0, "", "", datetime.date(1970, 1, 1), pd.Timestamp(0),
               pd.Timestamp(0), b"", pd.Timedelta(0), Monthdelta(0), []]
    some_nulls = [v if i % 2 else None for i, v in enumerate(full)]
    return [full, [None] * len(ALL_TYPES), empties, some_nulls]


class _NoPandas:
    """Stand-ins so the row builder runs without pandas (those columns are dropped)."""

    @staticmethod
    def Timestamp(*a, **k):
        return None

    Timedelta = Timestamp


@pytest.mark.parametrize("with_pandas", [True, False], ids=["all-19-types", "without-pandas-types"])
def test_every_primitive_type_round_trips_through_the_record_tunnel(localcloud, admin, with_pandas):
    if with_pandas:
        pd = pytest.importorskip("pandas")  # pyodps needs pandas for TIMESTAMP and intervals
        keep = list(range(len(ALL_TYPES)))
    else:
        pd = _NoPandas
        keep = [i for i, (_, t) in enumerate(ALL_TYPES) if t not in PANDAS_TYPES]
    types = [ALL_TYPES[i] for i in keep]
    o = client(localcloud)
    name = unique("all_types")
    cols = ", ".join(f"{n} {t}" for n, t in types)
    o.execute_sql(f"CREATE TABLE {name} ({cols}) PARTITIONED BY (pt STRING, region STRING)")
    table = o.get_table(name)
    assert [(c.name, str(c.type).lower()) for c in table.table_schema.simple_columns] == types
    assert [p.name for p in table.table_schema.partitions] == ["pt", "region"]

    rows = [[row[i] for i in keep] for row in all_type_rows(pd)]
    clear_request_log(localcloud)
    with table.open_writer(partition="pt=20240101,region=hz", create_partition=True) as writer:
        writer.write(rows)
    assert table.exist_partition("pt=20240101,region=hz")

    with table.open_reader(partition="pt=20240101,region=hz") as reader:
        assert reader.count == len(rows)
        got = [r.values for r in reader]
    assert [g[: len(types)] for g in got] == rows
    assert all(g[len(types):] == ["20240101", "hz"] for g in got)

    stored = dump(admin, name)["pt=20240101,region=hz"]
    assert len(stored) == len(rows)
    assert stored[1] == [None] * len(types)
    position = {n: i for i, (n, _) in enumerate(types)}
    assert stored[0][position["c_binary"]] == "00ff10"  # binary, as hex
    assert stored[0][position["c_date"]] == -1  # epoch days
    if with_pandas:
        # pyodps turns naive timestamps into instants in the local time zone.
        local_seconds = int(time.mktime(datetime.datetime(2024, 1, 2, 3, 4, 5).timetuple()))
        assert stored[0][position["c_timestamp"]] == {"seconds": local_seconds, "nanos": 123456789}

    # The writer used the protobuf record format (no Arrow), chunked, version 6.
    puts = [r for r in request_log(admin) if r["operation"] == "UploadBlock"]
    assert puts
    for put in puts:
        headers = dict(put["headers"])
        assert put["path"] == f"/projects/localcloud/tables/{name}"
        assert headers["content-type"] == "application/octet-stream"
        assert headers["transfer-encoding"] == "chunked"
        assert headers["x-odps-tunnel-version"] == "6"
        assert "arrow" not in dict(put["query"])


def test_requests_have_the_shape_of_pyodps_capture(localcloud, admin):
    o = client(localcloud)
    name = unique("capture")
    o.execute_sql(f"CREATE TABLE {name} (id BIGINT, name STRING) PARTITIONED BY (pt STRING, region STRING)")
    clear_request_log(localcloud)
    table = o.get_table(name)
    with table.open_writer(partition="pt=20240101,region=hz", create_partition=True) as w:
        w.write([[1, "a"]])
    log = request_log(admin)
    ops = {
        "tunnel_create_upload_session_with_discovery": ("CreateUploadSession", "POST"),
        "tunnel_put_block_0_raw": ("UploadBlock", "PUT"),
        "tunnel_commit": ("CommitUpload", "POST"),
        "sql_add_partition": ("CreateInstance", "POST"),
    }
    skip = {"host", "date", "authorization", "content-length", "odps-tunnel-retry-trace-id"}
    compared = 0
    for step, captured in captured_requests():
        op, method = ops.get(step, (None, None))
        if op is None or captured["method"] != method:
            continue
        ours = [r for r in log if r["operation"] == op]
        assert ours, op
        mine = ours[-1]
        assert mine["method"] == captured["method"]
        assert {k for k, _ in mine["query"]} == {k for k, _ in captured["query"]}, op
        want = {k.lower() for k in captured["headers"]} - skip
        assert want <= {k for k, _ in mine["headers"]}, (op, want)
        compared += 1
    assert compared == 4
    # Discovery went through the service endpoint, the tunnel calls to the root.
    discovery = [r for r in log if r["operation"] == "GetTunnelEndpoint"]
    tunnel = [r for r in log if r["operation"] in ("CreateUploadSession", "UploadBlock", "CommitUpload")]
    assert all(r["path"].startswith("/api/") for r in discovery)
    assert tunnel and all(r["path"].startswith("/projects/") for r in tunnel)
    assert localcloud["odps"]["tunnel_endpoint"] == localcloud["odps"]["endpoint"]


def test_sql_partitions_truncate_and_select(localcloud, admin):
    o = client(localcloud)
    name = unique("parts")
    o.execute_sql(f"create table if not exists {name} (id bigint, v string) partitioned by (pt string)")
    o.execute_sql(f"alter table {name} add partition (pt='a') partition (pt='b')")
    table = o.get_table(name)
    assert [t.name for t in o.list_tables(prefix=name)] == [name]
    assert sorted(str(p.partition_spec) for p in table.partitions) == ["pt='a'", "pt='b'"]
    with pytest.raises(errors.ODPSError, match="already exists"):
        o.execute_sql(f"alter table {name} add partition (pt='a')")
    o.execute_sql(f"alter table {name} add if not exists partition (pt='a')")

    for pt, n in (("a", 3), ("b", 2)):
        with table.open_writer(partition=f"pt={pt}") as w:
            w.write([[i, f"{pt}{i}"] for i in range(n)])

    def count(where=""):
        with o.execute_sql(f"select count(*) from {name} {where}").open_reader() as r:
            return [rec[0] for rec in r][0]

    assert count() == 5
    assert count("where pt='a'") == 3
    with o.execute_sql(f"SELECT * FROM {name} WHERE pt = 'b'").open_reader() as r:
        assert sorted(rec.values for rec in r) == [[0, "b0", "b"], [1, "b1", "b"]]

    o.execute_sql(f"truncate table {name} partition (pt='a')")
    assert count("where pt='a'") == 0
    assert table.exist_partition("pt=a")
    assert dump(admin, name) == {"pt=a": [], "pt=b": [[0, "b0"], [1, "b1"]]}

    o.execute_sql(f"alter table {name} drop partition (pt='a')")
    assert not table.exist_partition("pt=a")
    o.execute_sql(f"alter table {name} drop if exists partition (pt='a')")
    with pytest.raises(errors.ODPSError, match="does not exist"):
        o.execute_sql(f"alter table {name} drop partition (pt='a')")
    assert count() == 2

    o.execute_sql(f"drop table {name}")
    assert not o.exist_table(name)
    with pytest.raises(errors.NoSuchTable):
        o.execute_sql(f"drop table {name}")
    o.execute_sql(f"drop table if exists {name}")


def test_non_partitioned_table_truncate(localcloud, admin):
    o = client(localcloud)
    name = unique("flat")
    o.execute_sql(f"create table {name} (id bigint)")
    table = o.get_table(name)
    with table.open_writer() as w:
        w.write([[1], [2]])
    assert dump(admin, name) == {"": [[1], [2]]}
    o.execute_sql(f"truncate table {name}")
    with table.open_reader() as r:
        assert r.count == 0


def test_unsupported_sql_is_a_parse_error(localcloud):
    o = client(localcloud)
    with pytest.raises(errors.ParseError, match="ODPS-0130161"):
        o.execute_sql("insert into t values (1)")
    with pytest.raises(errors.NoSuchTable):
        o.execute_sql("select count(*) from no_such_table_here")


def test_wrong_key_raises_authentication_errors(localcloud):
    with pytest.raises(errors.SignatureNotMatch, match="ODPS-0410042"):
        client(localcloud, secret="not-the-secret").get_project().reload()
    with pytest.raises(errors.Unauthorized, match="ODPS-0410051"):
        client(localcloud, access_id="LTAIunknownkey").get_table("anything").reload()
    with pytest.raises(errors.SignatureNotMatch):
        client(localcloud, secret="not-the-secret").execute_sql("select count(*) from t")


def test_v4_and_sts_signatures_are_accepted(localcloud, admin):
    name = unique("signed")
    client(localcloud).execute_sql(f"create table {name} (id bigint)")
    clear_request_log(localcloud)
    v4 = client(localcloud, region_name="cn-hangzhou")
    v4.get_table(name).reload()
    account = StsAccount(localcloud["access_key_id"], localcloud["access_key_secret"], "token-1")
    sts = ODPS(account=account, project="localcloud", endpoint=localcloud["odps"]["endpoint"] + "/api")
    sts_table = sts.get_table(name)
    with sts_table.open_writer() as w:
        w.write([[7]])
    kinds = {(r["operation"], r["signature"]) for r in request_log(admin)}
    assert ("GetTable", "v4") in kinds
    assert ("UploadBlock", "v2+sts") in kinds
    assert dump(admin, name) == {"": [[7]]}


def test_uncommitted_blocks_are_invisible_and_deflate_blocks_accepted(localcloud, admin):
    o = client(localcloud)
    name = unique("staged")
    o.execute_sql(f"create table {name} (id bigint, s string) partitioned by (pt string)")
    tunnel = TableTunnel(o)
    session = tunnel.create_upload_session(name, partition_spec="pt=x", create_partition=True)
    with session.open_record_writer(0) as w:
        w.write(session.new_record([1, "raw"]))
    with session.open_record_writer(1, compress=True) as w:
        w.write(session.new_record([2, "deflated"]))
    assert dump(admin, name) == {"pt=x": []}
    mine = [u for u in uploads(admin) if u["upload_id"] == session.id][0]
    assert mine["status"] == "normal" and mine["blocks"] == [0, 1]
    deflated = [r for r in request_log(admin) if r["operation"] == "UploadBlock"][-1]
    assert dict(deflated["headers"]).get("content-encoding") == "deflate"

    session.commit([0, 1])
    assert dump(admin, name) == {"pt=x": [[1, "raw"], [2, "deflated"]]}
    with pytest.raises(errors.ODPSError, match="StatusConflict|already committed"):
        session._complete_upload()
    assert dump(admin, name) == {"pt=x": [[1, "raw"], [2, "deflated"]]}


def test_corrupt_and_mistyped_blocks_are_rejected(localcloud, admin):
    o = client(localcloud)
    name = unique("corrupt")
    o.execute_sql(f"create table {name} (id bigint, name string, score double, ok boolean, ts datetime, amount decimal)")
    session = TableTunnel(o).create_upload_session(name)
    import json

    from odps_helpers import TESTDATA

    vector = json.loads((TESTDATA / "block_basic.json").read_text())
    good = bytes.fromhex(vector["block_hex_pyodps_cython"])
    flipped = bytearray(good)
    flipped[good.index(b"alice")] ^= 0x01

    def put(block_id, data):
        params = session.get_common_params(uploadid=session.id, blockid=block_id)
        headers = session.get_common_headers(chunked=True)
        # A generator body, as pyodps' writers send it: chunked transfer encoding.
        body = iter([bytes(data)])
        return session._client.put(session._table.table_resource(), data=body, params=params, headers=headers)

    with pytest.raises(errors.ODPSError) as e:
        put(0, flipped)
    assert e.value.code == "MalformedDataStream" and "checksum" in str(e.value)
    with pytest.raises(errors.ODPSError) as e:
        put(0, good[:-3])
    assert e.value.code == "MalformedDataStream"
    with pytest.raises(errors.ODPSError) as e:
        put(20000, good)
    assert e.value.code == "InvalidBlockID"
    put(3, good)
    session.commit([3])
    rows = dump(admin, name)[""]
    assert rows[0] == [1, "alice", 3.5, True, 1704164645678, "123.45"]
    assert rows[2] == [3, "", None, None, None, None]

    other = unique("mistyped")
    o.execute_sql(f"create table {other} (id string)")
    s2 = TableTunnel(o).create_upload_session(other)
    with pytest.raises(errors.ODPSError) as e:
        s2._client.put(
            s2._table.table_resource(),
            data=iter([good]),
            params=s2.get_common_params(uploadid=s2.id, blockid=0),
            headers=s2.get_common_headers(chunked=True),
        )
    assert e.value.code == "MalformedDataStream" and "wire type" in str(e.value)


def test_sessions_need_existing_partitions_and_expire(localcloud, admin):
    o = client(localcloud)
    name = unique("expiry")
    o.execute_sql(f"create table {name} (id bigint) partitioned by (pt string)")
    tunnel = TableTunnel(o)
    with pytest.raises(errors.NoSuchPartition):
        tunnel.create_upload_session(name, partition_spec="pt=missing")
    with pytest.raises(errors.ODPSError, match="MissingPartitionSpec|partition spec"):
        tunnel.create_upload_session(name)
    session = tunnel.create_upload_session(name, partition_spec="pt=1", create_partition=True)
    with session.open_record_writer(0) as w:
        w.write(session.new_record([1]))
    day_ms = 24 * 3600 * 1000
    admin["odps"].advance_clock(day_ms + 60_000)
    # The client's clock must follow the emulator's, or the request is refused as skewed.
    previous = options.custom_headers
    try:
        with pytest.raises(errors.RequestTimeTooSkewed):
            session.commit([0])
        options.custom_headers = {"Date": formatdate(time.time() + day_ms / 1000 + 60, usegmt=True)}
        with pytest.raises(errors.ODPSError, match="expired"):
            session._complete_upload()
    finally:
        options.custom_headers = previous
    assert dump(admin, name) == {"pt=1": []}
