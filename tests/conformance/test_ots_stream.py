"""Tablestore emulator: the Stream API through the official SDK's protocol layer.

Rows are written with the SDK's own calls; the stream is read with ListStream,
DescribeStream, GetShardIterator and GetStreamRecord sent through the SDK's signer and
response checks (see `ots_helpers.StreamApi`), and every record is decoded with the
SDK's PlainBuffer and CRC-8 classes."""

import time

import pytest
from tablestore import (
    BatchWriteRowRequest,
    Condition,
    DeleteRowItem,
    PutRowItem,
    Row,
    RowExistenceExpectation,
    TableInBatchWriteRowItem,
)

from ots_helpers import OTSServiceError, StreamApi, make_client, pb2, unique

IGNORE = Condition(RowExistenceExpectation.IGNORE)
# Cell versions must lie within the table's max_time_deviation (default 1 day) of now.
T0 = (int(time.time()) - 3600) * 1000
HOUR_MS = 3_600_000


@pytest.fixture
def client(localcloud):
    return make_client(localcloud)


@pytest.fixture
def api(client):
    return StreamApi(client)


def create_stream_table(api, name, pk=(("pk_str", pb2.STRING), ("pk_int", pb2.INTEGER)), hours=24):
    req = pb2.CreateTableRequest()
    req.table_meta.table_name = name
    for n, t in pk:
        req.table_meta.primary_key.add(name=n, type=t)
    req.reserved_throughput.capacity_unit.read = 0
    req.reserved_throughput.capacity_unit.write = 0
    req.table_options.time_to_live = -1
    req.table_options.max_versions = 3
    req.stream_spec.enable_stream = True
    req.stream_spec.expiration_time = hours
    api.call("CreateTable", req, pb2.CreateTableResponse)
    streams = api.list_stream(name).streams
    assert len(streams) == 1 and streams[0].table_name == name
    return streams[0].stream_id


def describe_table(api, name):
    return api.call("DescribeTable", pb2.DescribeTableRequest(table_name=name), pb2.DescribeTableResponse)


def now_us():
    return int(time.time() * 1_000_000)


def test_writes_come_back_in_order_with_sequence_info(client, api):
    name = unique("st")
    stream_id = create_stream_table(api, name)
    details = describe_table(api, name).stream_details
    assert details.enable_stream and details.stream_id == stream_id
    assert details.expiration_time == 24 and details.last_enable_time > 0
    shards = api.all_shards(stream_id)
    assert len(shards) == 1 and not shards[0].HasField("parent_id")
    shard = shards[0].shard_id

    pk = [("pk_str", "user-001"), ("pk_int", 42)]
    before = now_us() - 1_000_000
    cols = [("c_int", 7, T0), ("c_double", 3.25, T0), ("c_bool", True, T0),
            ("c_str", "hé", T0), ("c_bin", bytearray(b"\x00\xff"), T0)]
    client.put_row(name, Row(pk, cols), IGNORE)
    client.update_row(name, Row(pk, {"put": [("c_str", "new", T0 + 60_000)],
                                     "delete": [("c_int", None, T0)],
                                     "delete_all": ["c_bin"]}), IGNORE)
    client.update_row(name, Row(pk, {"increment": [("n", 5)]}), IGNORE)
    client.delete_row(name, Row(pk), IGNORE)
    batch = [PutRowItem(Row([("pk_str", "b"), ("pk_int", i)], [("v", i, T0)]), IGNORE) for i in range(2)]
    batch.append(DeleteRowItem(Row([("pk_str", "b"), ("pk_int", 5)]), IGNORE))
    req = BatchWriteRowRequest()
    req.add(TableInBatchWriteRowItem(name, batch))
    assert client.batch_write_row(req).is_all_succeed()
    after = now_us() + 1_000_000

    records, ended = api.drain(shard, stream_id)
    assert not ended
    assert [r["action"] for r in records] == [
        "PUT_ROW", "UPDATE_ROW", "UPDATE_ROW", "DELETE_ROW", "PUT_ROW", "PUT_ROW", "DELETE_ROW"]
    put, upd, inc, dele, b0, b1, bdel = records
    assert put["primary_key"] == pk and not put["delete_marker"]
    assert put["cells"] == [("PUT", n, v, ts) for n, v, ts in cols]
    assert upd["cells"] == [("PUT", "c_str", "new", T0 + 60_000), ("DELETE_ONE", "c_int", None, T0),
                            ("DELETE_ALL", "c_bin", None, None)]
    # An increment is logged as a put of the result, with the server's timestamp.
    (kind, col, value, ts), = inc["cells"]
    assert (kind, col, value) == ("PUT", "n", 5) and before // 1000 <= ts <= after // 1000
    assert dele["cells"] == [] and dele["primary_key"] == pk
    assert [r["row_index"] for r in (put, upd, inc, dele, b0, b1, bdel)] == [0, 0, 0, 0, 0, 1, 2]
    assert b1["cells"] == [("PUT", "v", 1, T0)]
    times = [r["timestamp_us"] for r in records]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert before <= times[0] and times[-1] <= after
    assert {r["epoch"] for r in records} == {1}


def test_limit_pages_and_caught_up_iterator(client, api):
    name = unique("pg")
    stream_id = create_stream_table(api, name)
    shard = api.all_shards(stream_id)[0].shard_id
    for i in range(5):
        client.put_row(name, Row([("pk_str", "k"), ("pk_int", i)], [("v", i, T0)]), IGNORE)
    it = api.shard_iterator(stream_id, shard)
    resp = api.records(it, limit=2)
    assert len(resp.stream_records) == 2
    resp2 = api.records(resp.next_shard_iterator, limit=2)
    resp3 = api.records(resp2.next_shard_iterator, limit=2)
    assert (len(resp2.stream_records), len(resp3.stream_records)) == (2, 1)
    caught = api.records(resp3.next_shard_iterator, limit=2)
    assert len(caught.stream_records) == 0
    assert caught.next_shard_iterator == resp3.next_shard_iterator
    # Iterators are durable positions: the first one still reads from the start.
    again = api.records(it, limit=100)
    assert len(again.stream_records) == 5
    client.put_row(name, Row([("pk_str", "k"), ("pk_int", 9)], [("v", 9, T0)]), IGNORE)
    more = api.records(caught.next_shard_iterator)
    assert len(more.stream_records) == 1


def read_in_parent_order(api, stream_id):
    """Reads every shard, each only after its parents reached their end; returns
    the records in reading order and the order of shards read."""
    shards = {s.shard_id: s for s in api.all_shards(stream_id, shard_limit=1)}
    done, order, out = set(), [], []
    while len(done) < len(shards):
        progressed = False
        for sid, s in sorted(shards.items()):
            parents = [p for p in (s.parent_id, s.parent_sibling_id) if p]
            if sid in done or any(p not in done for p in parents):
                continue
            records, ended = api.drain(sid, stream_id, limit=3)
            out.extend(records)
            order.append(sid)
            done.add(sid)
            progressed = True
            if not ended:
                assert all(shards[c].parent_id != sid for c in shards)
        assert progressed
    return out, order


def test_split_and_merge_parents_before_children(client, api, admin):
    ots = admin["ots"]
    name = unique("sp")
    stream_id = create_stream_table(api, name, pk=(("id", pb2.INTEGER),))
    write = lambda i, v: client.put_row(name, Row([("id", i)], [("v", v, T0)]), IGNORE)
    for i in range(10):
        write(i, 0)
    parent = api.all_shards(stream_id)[0].shard_id
    split = ots.post("/-/ots/split", {"table": name, "split_point": 5})
    assert split["parent"] == parent and len(split["children"]) == 2
    left, right = split["children"]
    for i in range(10):
        write(i, 1)
    shards = {s.shard_id: s for s in api.all_shards(stream_id)}
    assert set(shards) == {parent, left, right}
    assert shards[left].parent_id == parent and not shards[left].HasField("parent_sibling_id")
    assert shards[right].parent_id == parent
    parent_records, ended = api.drain(parent, stream_id, limit=4)
    assert ended and len(parent_records) == 10
    # A drained closed shard answers no records and no next iterator.
    left_records, _ = api.drain(left, stream_id)
    right_records, _ = api.drain(right, stream_id)
    assert sorted(r["primary_key"][0][1] for r in left_records) == [0, 1, 2, 3, 4]
    assert sorted(r["primary_key"][0][1] for r in right_records) == [5, 6, 7, 8, 9]

    merged = ots.post("/-/ots/merge", {"table": name})
    assert sorted(merged["parents"]) == sorted([left, right])
    child = merged["child"]
    for i in range(10):
        write(i, 2)
    shards = {s.shard_id: s for s in api.all_shards(stream_id)}
    assert shards[child].parent_id == left and shards[child].parent_sibling_id == right
    records, order = read_in_parent_order(api, stream_id)
    assert order.index(parent) < order.index(left) < order.index(child)
    assert order.index(right) < order.index(child)
    # Per row, the versions come back in write order across split and merge.
    for i in range(10):
        seen = [r["cells"][0][2] for r in records if r["primary_key"] == [("id", i)]]
        assert seen == [0, 1, 2]


def test_retention_trims_records(client, api, admin):
    ots = admin["ots"]
    name = unique("ret")
    stream_id = create_stream_table(api, name, hours=1)
    shard = api.all_shards(stream_id)[0].shard_id
    client.put_row(name, Row([("pk_str", "a"), ("pk_int", 1)], [("v", 1, T0)]), IGNORE)
    old = api.shard_iterator(stream_id, shard)
    dump = ots.get("/-/ots/tables/" + name)
    t_before = dump["stream"]["shards"][0]["record_times_us"][0]
    ots.post("/-/ots/backdate", {"table": name, "ms": 30 * 60_000})
    t_after = ots.get("/-/ots/tables/" + name)["stream"]["shards"][0]["record_times_us"][0]
    assert t_before - t_after == 30 * 60_000_000
    assert len(api.records(old).stream_records) == 1
    ots.post("/-/ots/backdate", {"table": name, "ms": 31 * 60_000})
    with pytest.raises(OTSServiceError) as e:
        api.records(old)
    assert e.value.get_error_code() == "OTSTrimmedDataAccess"
    fresh = api.shard_iterator(stream_id, shard)
    assert len(api.records(fresh).stream_records) == 0
    client.put_row(name, Row([("pk_str", "a"), ("pk_int", 2)], [("v", 2, T0)]), IGNORE)
    assert len(api.records(fresh).stream_records) == 1
    # Moving the emulator clock expires data the same way; the SDK keeps working.
    ots.advance_clock(2 * HOUR_MS)
    with pytest.raises(OTSServiceError) as e:
        api.records(fresh)
    assert e.value.get_error_code() == "OTSTrimmedDataAccess"


def test_disable_and_enable_stream_creates_a_new_stream(client, api):
    name = unique("en")
    stream_id = create_stream_table(api, name)
    shard = api.all_shards(stream_id)[0].shard_id
    client.put_row(name, Row([("pk_str", "a"), ("pk_int", 1)], [("v", 1, T0)]), IGNORE)
    it = api.shard_iterator(stream_id, shard)
    upd = pb2.UpdateTableRequest(table_name=name)
    upd.stream_spec.enable_stream = False
    api.call("UpdateTable", upd, pb2.UpdateTableResponse)
    assert len(api.list_stream(name).streams) == 0
    assert not describe_table(api, name).stream_details.enable_stream
    with pytest.raises(OTSServiceError) as e:
        api.records(it)
    assert e.value.get_error_code() == "OTSTrimmedDataAccess"
    upd.stream_spec.enable_stream = True
    upd.stream_spec.expiration_time = 168
    resp = api.call("UpdateTable", upd, pb2.UpdateTableResponse)
    assert resp.stream_details.enable_stream and resp.stream_details.stream_id != stream_id
    new_id = api.list_stream(name).streams[0].stream_id
    assert new_id == resp.stream_details.stream_id
    assert api.describe_stream(new_id).expiration_time == 168


def test_stream_errors(client, api):
    name = unique("er")
    stream_id = create_stream_table(api, name)
    with pytest.raises(OTSServiceError) as e:
        api.records("garbage")
    assert (e.value.get_http_status(), e.value.get_error_code()) == (400, "OTSParameterInvalid")
    with pytest.raises(OTSServiceError) as e:
        api.describe_stream("no-such-stream")
    assert e.value.get_error_code() == "OTSObjectNotExist"
    with pytest.raises(OTSServiceError) as e:
        api.shard_iterator(stream_id, "no-such-shard")
    assert e.value.get_error_code() == "OTSParameterInvalid"
    plain = unique("plain")
    req = pb2.CreateTableRequest()
    req.table_meta.table_name = plain
    req.table_meta.primary_key.add(name="id", type=pb2.INTEGER)
    req.reserved_throughput.capacity_unit.read = 0
    api.call("CreateTable", req, pb2.CreateTableResponse)
    assert len(api.list_stream(plain).streams) == 0
    assert any(s.stream_id == stream_id for s in api.list_stream().streams)


def test_compressed_request_body(client, api):
    name = unique("cz")
    create_stream_table(api, name)
    resp = api.call("ListStream", pb2.ListStreamRequest(table_name=name), pb2.ListStreamResponse,
                    compress=True)
    assert resp.streams[0].table_name == name
