"""Tablestore emulator: tables and rows through the official SDK (tablestore 6.4.8).

Every call goes through the SDK's full request path: its signer, its protobuf and
PlainBuffer encoders, and its response verification (MD5, date, `authorization`
signature) -- a response the SDK does not accept fails the test. Reads run with the
SDK's native decoder and with its pure-Python decoder (which verifies every CRC-8)."""

import time

import pytest
from tablestore import (
    INF_MAX,
    INF_MIN,
    BatchGetRowRequest,
    BatchWriteRowRequest,
    CapacityUnit,
    Condition,
    DeleteRowItem,
    PutRowItem,
    ReservedThroughput,
    Row,
    RowExistenceExpectation,
    TableInBatchGetRowItem,
    TableInBatchWriteRowItem,
    TableMeta,
    TableOptions,
    UpdateRowItem,
)

from ots_helpers import OTSClientError, OTSServiceError, make_client, unique

IGNORE = Condition(RowExistenceExpectation.IGNORE)
# Cell versions must lie within the table's max_time_deviation (default 1 day) of now.
T0 = (int(time.time()) - 3600) * 1000


@pytest.fixture(params=["native", "python", "v4"])
def client(request, localcloud):
    """SDK decoders: native C, pure Python (verifies every CRC-8); and a V4-signing
    client (its responses are checked with the V4 derived key)."""
    region = "cn-hangzhou" if request.param == "v4" else None
    return make_client(localcloud, native=request.param != "python", region=region)


def create(client, name, pk=(("pk_str", "STRING"), ("pk_int", "INTEGER")), max_versions=1, ttl=-1):
    client.create_table(
        TableMeta(name, list(pk)),
        TableOptions(time_to_live=ttl, max_version=max_versions),
        ReservedThroughput(CapacityUnit(0, 0)),
    )


ALL_TYPES = [
    ("c_bin", bytearray(b"\x00\x01\xfe\xff")),
    ("c_bool", True),
    ("c_double", 3.25),
    ("c_int", -123456789),
    ("c_str", "hello, \u4e16\u754c"),
]


def test_tables_create_describe_list_update_delete(client):
    name = unique("tbl")
    create(client, name, max_versions=3)
    assert name in client.list_table()
    desc = client.describe_table(name)
    assert desc.table_meta.table_name == name
    assert desc.table_meta.schema_of_primary_key == [("pk_str", "STRING"), ("pk_int", "INTEGER")]
    assert desc.table_options.max_version == 3
    assert desc.table_options.time_to_live == -1
    client.update_table(name, TableOptions(time_to_live=86400 * 2, max_version=5))
    desc = client.describe_table(name)
    assert (desc.table_options.time_to_live, desc.table_options.max_version) == (172800, 5)
    with pytest.raises(OTSServiceError) as e:
        create(client, name)
    assert (e.value.get_http_status(), e.value.get_error_code()) == (409, "OTSObjectAlreadyExist")
    client.delete_table(name)
    assert name not in client.list_table()
    with pytest.raises(OTSServiceError) as e:
        client.describe_table(name)
    assert (e.value.get_http_status(), e.value.get_error_code()) == (404, "OTSObjectNotExist")


def test_every_value_type_round_trips(client):
    name = unique("types")
    create(client, name)
    pk = [("pk_str", "user-\u00e9"), ("pk_int", -42)]
    cols = [(n, v, T0) for n, v in ALL_TYPES]
    client.put_row(name, Row(pk, cols), IGNORE)
    _, row, _ = client.get_row(name, pk, max_version=1)
    assert row.primary_key == pk
    assert row.attribute_columns == cols


def test_versions_max_versions_time_range_and_deletes(client):
    name = unique("ver")
    create(client, name, max_versions=3)
    pk = [("pk_str", "a"), ("pk_int", 1)]
    client.put_row(name, Row(pk, [("v", i, T0 + i) for i in range(4)]), IGNORE)
    _, row, _ = client.get_row(name, pk, max_version=10)
    # max_versions=3 keeps the three newest, newest first.
    assert row.attribute_columns == [("v", 3, T0 + 3), ("v", 2, T0 + 2), ("v", 1, T0 + 1)]
    _, row, _ = client.get_row(name, pk, max_version=1)
    assert row.attribute_columns == [("v", 3, T0 + 3)]
    _, row, _ = client.get_row(name, pk, max_version=None, time_range=(T0 + 1, T0 + 3))
    assert row.attribute_columns == [("v", 2, T0 + 2), ("v", 1, T0 + 1)]
    _, row, _ = client.get_row(name, pk, max_version=None, time_range=T0 + 2)
    assert row.attribute_columns == [("v", 2, T0 + 2)]
    update = {
        "put": [("w", "x", T0), ("n", 5)],
        "delete": [("v", None, T0 + 2)],
        "increment": [("n", 2)],
    }
    client.update_row(name, Row(pk, update), IGNORE)
    _, row, _ = client.get_row(name, pk, max_version=10)
    by_name = {}
    for n, v, ts in row.attribute_columns:
        by_name.setdefault(n, []).append((v, ts))
    assert [v for v, _ in by_name["v"]] == [3, 1]
    assert by_name["w"] == [("x", T0)]
    assert by_name["n"][0][0] == 7
    client.update_row(name, Row(pk, {"delete_all": ["v", "n"]}), IGNORE)
    _, row, _ = client.get_row(name, pk, max_version=10)
    assert row.attribute_columns == [("w", "x", T0)]
    client.delete_row(name, Row(pk), IGNORE)
    _, row, _ = client.get_row(name, pk, max_version=1)
    assert row is None


def test_columns_to_get_and_server_timestamps(client):
    name = unique("cols")
    create(client, name)
    pk = [("pk_str", "b"), ("pk_int", 2)]
    before = int(time.time() * 1000) - 1000
    client.put_row(name, Row(pk, [("a", 1), ("b", 2), ("c", 3)]), IGNORE)
    _, row, _ = client.get_row(name, pk, columns_to_get=["a", "c"], max_version=1)
    assert [(n, v) for n, v, _ in row.attribute_columns] == [("a", 1), ("c", 3)]
    assert all(before <= ts <= before + 60_000 for _, _, ts in row.attribute_columns)
    _, row, _ = client.get_row(name, pk, columns_to_get=["missing"], max_version=1)
    assert row is None


def test_row_existence_conditions(client):
    name = unique("cond")
    create(client, name)
    pk = [("pk_str", "c"), ("pk_int", 3)]
    with pytest.raises(OTSServiceError) as e:
        client.update_row(name, Row(pk, {"put": [("a", 1)]}), Condition("EXPECT_EXIST"))
    assert (e.value.get_http_status(), e.value.get_error_code()) == (403, "OTSConditionCheckFail")
    client.put_row(name, Row(pk, [("a", 1)]), Condition("EXPECT_NOT_EXIST"))
    with pytest.raises(OTSServiceError) as e:
        client.put_row(name, Row(pk, [("a", 2)]), Condition("EXPECT_NOT_EXIST"))
    assert e.value.get_error_code() == "OTSConditionCheckFail"
    client.put_row(name, Row(pk, [("a", 3)]), Condition("EXPECT_EXIST"))
    _, row, _ = client.get_row(name, pk, max_version=1)
    assert row.attribute_columns[0][1] == 3
    client.delete_row(name, Row(pk), Condition("EXPECT_EXIST"))
    with pytest.raises(OTSServiceError):
        client.delete_row(name, Row(pk), Condition("EXPECT_EXIST"))


def test_get_range_both_directions_limit_and_next_key(client):
    name = unique("range")
    create(client, name, pk=(("h", "INTEGER"), ("s", "STRING")))
    for i in range(7):
        client.put_row(name, Row([("h", i), ("s", "k%d" % i)], [("v", i * 10, T0)]), IGNORE)
    start, end = [("h", INF_MIN), ("s", INF_MIN)], [("h", INF_MAX), ("s", INF_MAX)]
    _, nxt, rows, _ = client.get_range(name, "FORWARD", start, end, limit=3)
    assert [r.primary_key[0][1] for r in rows] == [0, 1, 2]
    assert nxt == [("h", 3), ("s", "k3")]
    _, nxt, rows, _ = client.get_range(name, "FORWARD", nxt, end, limit=100)
    assert [r.primary_key[0][1] for r in rows] == [3, 4, 5, 6]
    assert nxt is None
    _, nxt, rows, _ = client.get_range(name, "BACKWARD", [("h", 5), ("s", INF_MAX)], [("h", 1), ("s", INF_MAX)], limit=2)
    assert [r.primary_key[0][1] for r in rows] == [5, 4]
    assert nxt == [("h", 3), ("s", "k3")]
    _, nxt, rows, _ = client.get_range(name, "BACKWARD", nxt, [("h", 1), ("s", INF_MAX)])
    assert [r.primary_key[0][1] for r in rows] == [3, 2]
    assert nxt is None
    assert rows[0].attribute_columns == [("v", 30, T0)]
    _, nxt, rows, _ = client.get_range(name, "FORWARD", [("h", 100), ("s", INF_MIN)], end)
    assert rows == [] and nxt is None
    with pytest.raises(OTSServiceError) as e:
        client.get_range(name, "FORWARD", end, start)
    assert e.value.get_error_code() == "OTSParameterInvalid"


def test_batch_write_and_batch_get(client):
    a, b = unique("ba"), unique("bb")
    create(client, a)
    create(client, b)
    client.put_row(a, Row([("pk_str", "del"), ("pk_int", 0)], [("x", 1)]), IGNORE)
    items_a = [
        PutRowItem(Row([("pk_str", "p"), ("pk_int", i)], [(n, v, T0) for n, v in ALL_TYPES]), IGNORE)
        for i in range(3)
    ]
    items_a.append(UpdateRowItem(Row([("pk_str", "u"), ("pk_int", 9)], {"put": [("y", "z", T0)]}), IGNORE))
    items_a.append(DeleteRowItem(Row([("pk_str", "del"), ("pk_int", 0)]), IGNORE))
    items_b = [PutRowItem(Row([("pk_str", "q"), ("pk_int", 1)], [("k", 1, T0)]), Condition("EXPECT_EXIST"))]
    req = BatchWriteRowRequest()
    req.add(TableInBatchWriteRowItem(a, items_a))
    req.add(TableInBatchWriteRowItem(b, items_b))
    resp = client.batch_write_row(req)
    assert len(resp.get_succeed_of_put()) == 3
    assert len(resp.get_succeed_of_update()) == 1
    assert len(resp.get_succeed_of_delete()) == 1
    failed = resp.get_failed_of_put()
    assert [f.error_code for f in failed] == ["OTSConditionCheckFail"]

    greq = BatchGetRowRequest()
    keys = [[("pk_str", "p"), ("pk_int", i)] for i in range(3)] + [
        [("pk_str", "u"), ("pk_int", 9)],
        [("pk_str", "del"), ("pk_int", 0)],
    ]
    greq.add(TableInBatchGetRowItem(a, keys, max_version=1))
    greq.add(TableInBatchGetRowItem(unique("missing"), [[("pk_str", "x"), ("pk_int", 1)]], max_version=1))
    gresp = client.batch_get_row(greq)
    got = gresp.get_result_by_table(a)
    assert all(r.is_ok for r in got)
    assert [r.row.attribute_columns for r in got[:3]] == [[(n, v, T0) for n, v in ALL_TYPES]] * 3
    assert got[3].row.attribute_columns == [("y", "z", T0)]
    assert got[4].row is None
    missing = gresp.get_failed_rows()
    assert [r.error_code for r in missing] == ["OTSObjectNotExist"]


def test_errors_for_bad_keys_and_missing_tables(client):
    name = unique("bad")
    create(client, name)
    with pytest.raises(OTSServiceError) as e:
        client.put_row(name, Row([("pk_str", "x")], [("a", 1)]), IGNORE)
    assert (e.value.get_http_status(), e.value.get_error_code()) == (400, "OTSInvalidPK")
    with pytest.raises(OTSServiceError) as e:
        client.put_row(name, Row([("pk_int", 1), ("pk_str", "x")], [("a", 1)]), IGNORE)
    assert e.value.get_error_code() == "OTSInvalidPK"
    with pytest.raises(OTSServiceError) as e:
        client.get_row(unique("nope"), [("pk_str", "x"), ("pk_int", 1)], max_version=1)
    assert (e.value.get_http_status(), e.value.get_error_code()) == (404, "OTSObjectNotExist")
    with pytest.raises(OTSServiceError) as e:
        client.get_row(name, [("pk_str", "x"), ("pk_int", 1)], max_version=None)
    assert e.value.get_error_code() == "OTSParameterInvalid"


def test_wrong_secret_gets_the_signature_error(localcloud):
    bad = make_client(localcloud, secret="not-the-secret")
    with pytest.raises(OTSServiceError) as e:
        bad.list_table()
    assert (e.value.get_http_status(), e.value.get_error_code()) == (403, "OTSAuthFailed")
    assert e.value.get_error_message() == "Signature mismatch."


def test_unknown_instance_and_key_are_refused(localcloud):
    from tablestore import OTSClient
    from tablestore.retry import NoRetryPolicy

    ots = localcloud["ots"]
    other = OTSClient(ots["endpoint"], localcloud["access_key_id"], localcloud["access_key_secret"],
                      "some-other-instance", retry_policy=NoRetryPolicy())
    with pytest.raises(OTSServiceError) as e:
        other.list_table()
    assert (e.value.get_http_status(), e.value.get_error_code()) == (403, "OTSAuthFailed")
    stranger = OTSClient(ots["endpoint"], "LTAIunknown", "x", ots["instance"], retry_policy=NoRetryPolicy())
    with pytest.raises(OTSServiceError) as e:
        stranger.list_table()
    assert e.value.get_error_message() == "The AccessKeyID does not exist."


def test_v4_signing_client_works(localcloud):
    v4 = make_client(localcloud, region="cn-hangzhou")
    name = unique("v4")
    create(v4, name)
    v4.put_row(name, Row([("pk_str", "a"), ("pk_int", 1)], [("x", 1, T0)]), IGNORE)
    _, row, _ = v4.get_row(name, [("pk_str", "a"), ("pk_int", 1)], max_version=1)
    assert row.attribute_columns == [("x", 1, T0)]
    # Error responses are signed with the V4 derived key too (the SDK checks them).
    with pytest.raises(OTSServiceError) as e:
        v4.describe_table(unique("missing"))
    assert (e.value.get_http_status(), e.value.get_error_code()) == (404, "OTSObjectNotExist")
    bad = make_client(localcloud, region="cn-hangzhou", secret="wrong")
    with pytest.raises(OTSServiceError) as e:
        bad.list_table()
    assert e.value.get_error_message() == "Signature mismatch."


def test_clock_skew_is_refused(localcloud, monkeypatch):
    import datetime

    import tablestore.utils as utils

    client = make_client(localcloud)
    skewed = utils.get_now_utc_datetime() - datetime.timedelta(minutes=20)
    monkeypatch.setattr(utils, "get_now_utc_datetime", lambda: skewed)
    # The SDK also checks the response date against its (moved) clock, so the service
    # error may surface as the SDK's own date complaint; the status is what the
    # service sent.
    with pytest.raises((OTSServiceError, OTSClientError)) as e:
        client.list_table()
    assert e.value.get_http_status() == 403


def test_cell_versions_outside_max_time_deviation_are_refused(client):
    name = unique("dev")
    create(client, name)
    pk = [("pk_str", "d"), ("pk_int", 1)]
    three_days_ago = T0 - 3 * 86_400_000
    with pytest.raises(OTSServiceError) as e:
        client.put_row(name, Row(pk, [("a", 1, three_days_ago)]), IGNORE)
    assert e.value.get_error_code() == "OTSParameterInvalid"
    tolerant = unique("dev")
    client.create_table(TableMeta(tolerant, [("pk_str", "STRING"), ("pk_int", "INTEGER")]),
                        TableOptions(max_time_deviation=10 * 365 * 86400),
                        ReservedThroughput(CapacityUnit(0, 0)))
    client.put_row(tolerant, Row(pk, [("a", 1, 1705307400000)]), IGNORE)
    _, row, _ = client.get_row(tolerant, pk, max_version=1)
    assert row.attribute_columns == [("a", 1, 1705307400000)]
    # The lower bound is also now - TTL: [max(now - deviation, now - TTL), now + deviation).
    short = unique("dev")
    client.create_table(TableMeta(short, [("pk_str", "STRING"), ("pk_int", "INTEGER")]),
                        TableOptions(time_to_live=86400, max_time_deviation=10 * 86400),
                        ReservedThroughput(CapacityUnit(0, 0)))
    with pytest.raises(OTSServiceError) as e:
        client.put_row(short, Row(pk, [("a", 1, three_days_ago)]), IGNORE)
    assert e.value.get_error_code() == "OTSParameterInvalid"
    client.put_row(short, Row(pk, [("a", 1, T0)]), IGNORE)


def test_ttl_hides_expired_versions(localcloud, admin, client):
    ots = admin["ots"]
    name = unique("ttl")
    create(client, name, ttl=86400, max_versions=5)
    pk = [("pk_str", "t"), ("pk_int", 1)]
    client.put_row(name, Row(pk, [("a", 1)]), IGNORE)
    ots.post("/-/ots/backdate", {"table": name, "ms": 86_400_000 - 60_000})
    _, row, _ = client.get_row(name, pk, max_version=1)
    assert row.attribute_columns[0][1] == 1
    dump = ots.get("/-/ots/tables/" + name)
    assert dump["options"]["time_to_live"] == 86400
    assert dump["rows"][0]["primary_key"] == ["t", 1]
    ots.advance_clock(120_000)
    _, row, _ = client.get_row(name, pk, max_version=1)
    assert row is None
    with pytest.raises(OTSServiceError) as e:
        client.update_row(name, Row(pk, {"put": [("b", 2)]}), Condition("EXPECT_EXIST"))
    assert e.value.get_error_code() == "OTSConditionCheckFail"


def test_auto_increment_and_return_pk(client):
    from tablestore import PK_AUTO_INCR, ReturnType

    name = unique("auto")
    client.create_table(TableMeta(name, [("h", "STRING"), ("id", "INTEGER", PK_AUTO_INCR)]),
                        TableOptions(), ReservedThroughput(CapacityUnit(0, 0)))
    _, first = client.put_row(name, Row([("h", "x"), ("id", PK_AUTO_INCR)], [("a", 1)]), IGNORE,
                              return_type=ReturnType.RT_PK)
    _, second = client.put_row(name, Row([("h", "x"), ("id", PK_AUTO_INCR)], [("a", 2)]), IGNORE,
                               return_type=ReturnType.RT_PK)
    assert first.primary_key[0] == ("h", "x") and second.primary_key[1][1] > first.primary_key[1][1]
    _, row, _ = client.get_row(name, second.primary_key, max_version=1)
    assert row.attribute_columns[0][1] == 2


def test_duplicate_rows_in_one_batch_are_refused(client):
    name = unique("dup")
    create(client, name)
    row = Row([("pk_str", "same"), ("pk_int", 1)], [("a", 1)])
    req = BatchWriteRowRequest()
    req.add(TableInBatchWriteRowItem(name, [PutRowItem(row, IGNORE), PutRowItem(row, IGNORE)]))
    with pytest.raises(OTSServiceError) as e:
        client.batch_write_row(req)
    assert e.value.get_error_code() == "OTSParameterInvalid"
