"""Fault injection on the MaxCompute emulator, as pyodps 0.13.2 experiences it.

Operation names: GetTable, GetPartition, CreateInstance, CreateUploadSession,
UploadBlock, GetUploadSession, CommitUpload, ... (see the odps module docs).
"""

import time

import pytest
import requests
from odps import errors
from odps.tunnel import TableTunnel

from odps_helpers import client, dump, unique, uploads


def injected(admin):
    return admin["odps"].faults()["injected"]


@pytest.fixture
def table(localcloud):
    o = client(localcloud)
    name = unique("faulty")
    o.execute_sql(f"create table {name} (id bigint, s string) partitioned by (pt string)")
    o.execute_sql(f"alter table {name} add partition (pt='1')")
    return o, name


def test_error_with_code_and_status_in_each_format(localcloud, admin, table):
    o, name = table
    admin["odps"].add_fault(
        operation="GetTable", times=1, kind="error", status=404, code="NoSuchTable",
        message="ODPS-0130131:Table not found - injected",
    )
    with pytest.raises(errors.NoSuchTable, match="injected") as e:
        o.get_table(name).reload()
    assert e.value.status_code == 404
    o.get_table(name).reload()  # the rule retired after one use

    # On the tunnel (JSON error body), a non-retryable 4xx surfaces at once ...
    admin["odps"].add_fault(operation="CreateUploadSession", times=1, kind="error", status=403, code="AccessDenied")
    with pytest.raises(errors.ODPSError) as e:
        TableTunnel(o).create_upload_session(name, partition_spec="pt=1")
    assert e.value.code == "AccessDenied" and e.value.status_code == 403
    assert "CreateUploadSession" in str(e.value)
    # ... while Table.open_writer wraps session creation in its own retry.
    before = len(injected(admin))
    admin["odps"].add_fault(operation="CreateUploadSession", times=1, kind="error", status=403, code="AccessDenied")
    with o.get_table(name).open_writer(partition="pt=1") as w:
        w.write([[1, "x"]])
    assert [f["operation"] for f in injected(admin)[before:]] == ["CreateUploadSession"]
    assert dump(admin, name)["pt=1"] == [[1, "x"]]


def test_rate(localcloud, admin, table):
    o, name = table

    def failures(n):
        failed = 0
        for _ in range(n):
            try:
                o.get_table(name).reload()
            except errors.InternalServerError:
                failed += 1
        return failed

    admin["odps"].add_fault(operation="GetTable", rate=1.0, kind="error", status=500, code="InternalServerError")
    assert failures(5) == 5
    admin["odps"].clear_faults()
    admin["odps"].add_fault(operation="GetTable", rate=0.0, kind="error", status=500, code="InternalServerError")
    assert failures(5) == 0
    admin["odps"].clear_faults()
    admin["odps"].add_fault(operation="GetTable", rate=0.5, kind="error", status=500, code="InternalServerError")
    assert 5 <= failures(40) <= 35  # binomial(40, 0.5): outside this with p < 1e-6


def test_latency(localcloud, admin, table):
    o, name = table
    admin["odps"].add_fault(operation="GetTable", times=2, kind="latency", ms=700)
    started = time.monotonic()
    o.get_table(name).reload()
    o.get_table(name).reload()
    assert time.monotonic() - started >= 1.4
    started = time.monotonic()
    o.get_table(name).reload()
    assert time.monotonic() - started < 0.7


def test_dropped_connection(localcloud, admin, table):
    o, name = table
    before = len(injected(admin))
    # A GET is retried by pyodps after a dropped connection.
    admin["odps"].add_fault(operation="GetTable", times=1, kind="drop")
    o.get_table(name).reload()
    assert [f["action"]["kind"] for f in injected(admin)[before:]] == ["drop"]
    # A POST is not: the dropped SQL submission surfaces as a connection error.
    admin["odps"].add_fault(operation="CreateInstance", kind="drop")
    with pytest.raises(requests.exceptions.ConnectionError):
        o.execute_sql(f"alter table {name} add if not exists partition (pt='2')")
    admin["odps"].clear_faults()
    # A dropped block upload is retried; the block is written once.
    admin["odps"].add_fault(operation="UploadBlock", times=1, kind="drop")
    with o.get_table(name).open_writer(partition="pt=1") as w:
        w.write([[1, "a"], [2, "b"]])
    assert dump(admin, name)["pt=1"] == [[1, "a"], [2, "b"]]


def test_commit_only_failures(localcloud, admin, table):
    o, name = table
    before = len(injected(admin))
    # One transient 500 on commit: pyodps' tunnel retry commits on the second try.
    admin["odps"].add_fault(operation="CommitUpload", times=1, kind="error", status=500, code="InternalServerError")
    with o.get_table(name).open_writer(partition="pt=1") as w:
        w.write([[1, "first"]])
    assert [f["operation"] for f in injected(admin)[before:]] == ["CommitUpload"]
    assert dump(admin, name)["pt=1"] == [[1, "first"]]

    # A commit that keeps failing: blocks were uploaded, nothing is visible.
    admin["odps"].add_fault(operation="CommitUpload", kind="error", status=400, code="InvalidArgument",
                            message="injected commit refusal")
    with pytest.raises(errors.InvalidArgument, match="injected commit refusal"):
        with o.get_table(name).open_writer(partition="pt=1") as w:
            w.write([[2, "second"]])
    assert dump(admin, name)["pt=1"] == [[1, "first"]]
    pending = [u for u in uploads(admin) if u["table"] == name and u["status"] == "normal"]
    assert len(pending) == 1 and len(pending[0]["blocks"]) == 1
    assert all(f["operation"] == "CommitUpload" for f in injected(admin)[before:])

    # Once the fault is gone, committing the same session publishes its blocks.
    admin["odps"].clear_faults()
    session = TableTunnel(o).create_upload_session(name, partition_spec="pt=1", upload_id=pending[0]["upload_id"])
    session.commit(pending[0]["blocks"])
    assert dump(admin, name)["pt=1"] == [[1, "first"], [2, "second"]]


@pytest.mark.parametrize("kind", ["error", "drop"])
def test_commit_failed_but_in_fact_succeeded(localcloud, admin, table, kind):
    o, name = table
    fault = {"status": 500, "code": "InternalServerError"} if kind == "error" else {}
    admin["odps"].add_fault(operation="CommitUpload", times=1, kind=kind, after_apply=True, **fault)
    # pyodps sees the commit fail, retries it, and the retry finds the session closed.
    with pytest.raises(errors.ODPSError, match="already committed"):
        with o.get_table(name).open_writer(partition="pt=1") as w:
            w.write([[1, "once"]])
    assert injected(admin)[-1]["after_apply"] is True
    # ... yet the data was committed, exactly once.
    assert dump(admin, name)["pt=1"] == [[1, "once"]]
