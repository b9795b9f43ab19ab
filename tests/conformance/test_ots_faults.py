"""Tablestore emulator: every fault kind as an official SDK client sees it.

Injected errors are Tablestore errors (protobuf `Error`, the rule's HTTP status and
code, signed response headers): the SDK raises `OTSServiceError` only after its
response checks passed, and retries them by its own policy."""

import time

import pytest
import urllib3
from tablestore import (
    CapacityUnit,
    Condition,
    ReservedThroughput,
    Row,
    RowExistenceExpectation,
    TableMeta,
    TableOptions,
)

from ots_helpers import OTSServiceError, StreamApi, make_client, pb2, unique

IGNORE = Condition(RowExistenceExpectation.IGNORE)
PK = [("id", 1)]


@pytest.fixture
def table(localcloud):
    client = make_client(localcloud)
    name = unique("flt")
    client.create_table(TableMeta(name, [("id", "INTEGER")]), TableOptions(),
                        ReservedThroughput(CapacityUnit(0, 0)))
    client.put_row(name, Row(PK, [("v", 1)]), IGNORE)
    return name


def get(client, table):
    _, row, _ = client.get_row(table, PK, max_version=1)
    return row


def test_error_code_and_status(localcloud, admin, table):
    ots = admin["ots"]
    client = make_client(localcloud)
    ots.add_fault(operation="GetRow", times=1, kind="error", status=503, code="OTSServerBusy",
                  message="Server is busy.")
    with pytest.raises(OTSServiceError) as e:
        get(client, table)
    assert (e.value.get_http_status(), e.value.get_error_code()) == (503, "OTSServerBusy")
    assert e.value.get_error_message() == "Server is busy."
    assert e.value.get_request_id()
    assert get(client, table) is not None  # the rule fired once and retired
    injected = ots.faults()["injected"]
    assert injected[-1]["operation"] == "GetRow" and injected[-1]["action"]["code"] == "OTSServerBusy"
    # The SDK's default policy retries OTSServerBusy and then succeeds.
    retrying = make_client(localcloud, retry=True)
    ots.add_fault(operation="GetRow", times=2, kind="error", status=503, code="OTSServerBusy")
    assert get(retrying, table) is not None
    assert ots.faults()["rules"] == []
    # A non-retryable code reaches the caller at once.
    ots.add_fault(operation="GetRow", times=1, kind="error", status=400, code="OTSParameterInvalid")
    with pytest.raises(OTSServiceError) as e:
        get(retrying, table)
    assert (e.value.get_http_status(), e.value.get_error_code()) == (400, "OTSParameterInvalid")


def test_rate(localcloud, admin, table):
    ots = admin["ots"]
    client = make_client(localcloud)
    ots.add_fault(operation="GetRow", rate=0.5, kind="error", status=500, code="OTSInternalServerError")
    failures = 0
    for _ in range(60):
        try:
            get(client, table)
        except OTSServiceError as e:
            assert (e.http_status, e.code) == (500, "OTSInternalServerError")
            failures += 1
    assert 8 <= failures <= 52
    ots.clear_faults()
    ots.add_fault(operation="GetRow", rate=0.0, kind="error", status=500, code="OTSInternalServerError")
    for _ in range(10):
        assert get(client, table) is not None


def test_latency(localcloud, admin, table):
    ots = admin["ots"]
    client = make_client(localcloud)
    start = time.monotonic()
    get(client, table)
    fast = time.monotonic() - start
    ots.add_fault(operation="GetRow", times=1, kind="latency", ms=800)
    start = time.monotonic()
    assert get(client, table) is not None
    assert time.monotonic() - start >= 0.8 > fast


def test_dropped_connection(localcloud, admin, table):
    ots = admin["ots"]
    client = make_client(localcloud)
    ots.add_fault(operation="GetRow", times=1, kind="drop")
    with pytest.raises(urllib3.exceptions.HTTPError):
        get(client, table)
    assert get(client, table) is not None
    # Dropped after the write took effect: the client sees a failure, the row changed.
    ots.add_fault(operation="PutRow", times=1, kind="drop", after_apply=True)
    with pytest.raises(urllib3.exceptions.HTTPError):
        client.put_row(table, Row(PK, [("v", 2)]), IGNORE)
    assert get(client, table).attribute_columns[0][1] == 2


def test_operation_specific_and_after_apply(localcloud, admin, table):
    ots = admin["ots"]
    client = make_client(localcloud)
    ots.add_fault(operation="PutRow", times=1, kind="error", status=500,
                  code="OTSInternalServerError", after_apply=True)
    assert get(client, table) is not None  # other operations are untouched
    with pytest.raises(OTSServiceError) as e:
        client.put_row(table, Row(PK, [("v", 3)]), IGNORE)
    assert e.value.get_error_code() == "OTSInternalServerError"
    assert get(client, table).attribute_columns[0][1] == 3  # it was applied


def test_stream_read_fault(localcloud, admin):
    ots = admin["ots"]
    client = make_client(localcloud)
    api = StreamApi(client)
    name = unique("fs")
    req = pb2.CreateTableRequest()
    req.table_meta.table_name = name
    req.table_meta.primary_key.add(name="id", type=pb2.INTEGER)
    req.reserved_throughput.capacity_unit.read = 0
    req.stream_spec.enable_stream = True
    req.stream_spec.expiration_time = 24
    api.call("CreateTable", req, pb2.CreateTableResponse)
    client.put_row(name, Row(PK, [("v", 1)]), IGNORE)
    stream_id = api.list_stream(name).streams[0].stream_id
    shard = api.all_shards(stream_id)[0].shard_id
    iterator = api.shard_iterator(stream_id, shard)
    ots.add_fault(operation="GetStreamRecord", times=1, kind="error", status=503,
                  code="OTSPartitionUnavailable")
    with pytest.raises(OTSServiceError) as e:
        api.records(iterator)
    assert (e.value.get_http_status(), e.value.get_error_code()) == (503, "OTSPartitionUnavailable")
    assert len(api.records(iterator).stream_records) == 1
