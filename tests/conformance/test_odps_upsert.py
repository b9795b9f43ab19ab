"""pyodps 0.13.2 against the MaxCompute emulator: Delta tables (transactional, with a
primary key) and Tunnel upsert sessions (create, upsert, delete, commit, abort,
reading back the merged state, refusals, faults)."""

import pytest
from odps import errors
from odps.tunnel import TableTunnel
from odps.tunnel.io.writer import Upsert

from odps_helpers import client, dump, request_log, unique


def upserts(admin):
    return admin["odps"].get("/-/odps/upserts")["upserts"]


def create_delta(o, name, extra_props="", pk="k", columns="k bigint, v string, n bigint", partitioned=""):
    props = '"transactional"="true"' + extra_props
    o.execute_sql(
        f"CREATE TABLE {name} ({columns}, PRIMARY KEY ({pk})) {partitioned} "
        f"TBLPROPERTIES ({props})"
    )
    return o.get_table(name)


def merged(o, name, where=""):
    with o.execute_sql(f"SELECT * FROM {name}{where}").open_reader() as r:
        return sorted(tuple(rec.values) for rec in r)


def write(session, changes):
    """changes: ("U", values) or ("D", values), in order; one stream, closed."""
    stream = session.open_upsert_stream()
    for op, values in changes:
        rec = session.new_record(values)
        (stream.upsert if op == "U" else stream.delete)(rec)
    stream.close()


def test_table_metadata_as_pyodps_reads_it(localcloud):
    o = client(localcloud)
    name = unique("delta_meta")
    t = create_delta(o, name, ', "write.bucket.num"="4"', pk="k, s", columns="k bigint NOT NULL, s string, v double")
    t.reload_extend_info()
    assert t.is_transactional is True
    assert t.primary_key == ["k", "s"]
    assert t.table_properties["write.bucket.num"] == "4"
    assert t.table_properties["transactional"] == "true"
    assert len(TableTunnel(o).create_upsert_session(name).buckets) == 4
    plain = unique("plain")
    o.execute_sql(f"CREATE TABLE {plain} (k bigint)")
    p = o.get_table(plain)
    p.reload_extend_info()
    assert not p.is_transactional and not p.primary_key
    # pyodps' own DDL for a Delta table (PRIMARY KEY constraint, 'transactional' property).
    made = o.create_table(unique("delta_made"), "k bigint, v string", transactional=True, primary_key="k")
    made.reload_extend_info()
    assert made.is_transactional and made.primary_key == ["k"]


def test_upsert_delete_commit_gives_the_merged_rows(localcloud, admin):
    o = client(localcloud)
    name = unique("delta_rows")
    create_delta(o, name)
    tunnel = TableTunnel(o)
    s = tunnel.create_upsert_session(name, slot_num=2)
    assert s.status == s.Status.Normal
    assert s.hash_keys == ["k"] and s.hasher == "default"
    assert len(s.buckets) == 16
    write(s, [("U", [k, f"v{k}", k * 10]) for k in range(50)])
    # Nothing is visible before the commit.
    assert merged(o, name) == []
    s.commit()
    assert s.status == s.Status.Committed
    assert merged(o, name) == [(k, f"v{k}", k * 10) for k in range(50)]

    s2 = tunnel.create_upsert_session(name)
    write(s2, [("U", [1, "new", None]), ("D", [2, None, None]), ("U", [2, "again", 2]),
               ("D", [3, None, None]), ("U", [100, "x", 1]), ("U", [100, "y", 2]),
               ("D", [999, None, None])])
    s2.commit()
    want = {k: (k, f"v{k}", k * 10) for k in range(50)}
    want[1] = (1, "new", None)
    want[2] = (2, "again", 2)
    del want[3]
    want[100] = (100, "y", 2)
    assert merged(o, name) == sorted(want.values())
    # The table tunnel download and the control dump see the same merged rows.
    with tunnel.create_download_session(name).open_record_reader(0, len(want)) as r:
        assert sorted(tuple(rec.values) for rec in r) == sorted(want.values())
    assert len(dump(admin, name)[""]) == len(want)
    # pyodps' table API reads a Delta table through SELECT.
    with o.get_table(name).open_reader() as r:
        assert len(list(r)) == len(want)


def test_records_go_to_the_bucket_the_sdk_hashes_them_to(localcloud, admin):
    o = client(localcloud)
    name = unique("delta_buckets")
    create_delta(o, name, pk="k, s", columns="k bigint, s string, d datetime, b boolean")
    s = TableTunnel(o).create_upsert_session(name, slot_num=3)
    assert len({slot.slot for slot in s.buckets.values()}) == 3
    write(s, [("U", [k, f"key-{k}-é", None, k % 2 == 0]) for k in range(-20, 200)])
    s.commit()
    puts = [r for r in request_log(admin) if r["operation"] == "UpsertData"]
    assert len({dict(r["query"])["bucketid"] for r in puts}) > 8
    assert len(merged(o, name)) == 220


def test_abort_discards_everything(localcloud, admin):
    o = client(localcloud)
    name = unique("delta_abort")
    create_delta(o, name)
    s = TableTunnel(o).create_upsert_session(name)
    write(s, [("U", [1, "a", 1])])
    s.abort()
    s.reload()
    assert s.status == s.Status.Aborted
    assert merged(o, name) == []
    with pytest.raises(errors.ODPSError) as e:
        s.commit()
    assert "StatusConflict" in str(e.value) or e.value.code == "StatusConflict"
    [info] = [u for u in upserts(admin) if u["upsert_id"] == s.id]
    assert info["status"] == "aborted"


def test_commit_is_idempotent_and_a_reloaded_session_resumes(localcloud):
    o = client(localcloud)
    name = unique("delta_resume")
    create_delta(o, name)
    tunnel = TableTunnel(o)
    s = tunnel.create_upsert_session(name)
    write(s, [("U", [1, "a", 1])])
    again = tunnel.create_upsert_session(name, upsert_id=s.id)
    write(again, [("U", [2, "b", 2])])
    again.commit()
    s.commit()  # a second commit of a committed session answers "committed"
    assert merged(o, name) == [(1, "a", 1), (2, "b", 2)]


def test_upsert_needs_a_delta_table(localcloud):
    o = client(localcloud)
    plain = unique("plain_upsert")
    o.execute_sql(f"CREATE TABLE {plain} (k bigint, v string)")
    with pytest.raises(errors.ODPSError) as e:
        TableTunnel(o).create_upsert_session(plain)
    assert "transactional" in str(e.value)


def test_ddl_refuses_bad_keys(localcloud):
    o = client(localcloud)
    for ddl, why in [
        ("(k bigint, PRIMARY KEY (x)) TBLPROPERTIES ('transactional'='true')", "not a column"),
        ("(k bigint, PRIMARY KEY (k))", "transactional"),
        ("(k map<string,string>, PRIMARY KEY (k)) TBLPROPERTIES ('transactional'='true')", "map"),
    ]:
        with pytest.raises(errors.ODPSError) as e:
            o.execute_sql(f"CREATE TABLE {unique('bad')} {ddl}")
        assert why in str(e.value)


def test_null_key_is_refused(localcloud):
    o = client(localcloud)
    name = unique("delta_nullkey")
    create_delta(o, name)
    s = TableTunnel(o).create_upsert_session(name)
    stream = s.open_upsert_stream()
    stream.upsert(s.new_record([None, "no key", 1]))
    with pytest.raises(errors.ODPSError) as e:
        stream.close()
    assert "primary key column k is NULL" in str(e.value)
    s.commit()
    assert merged(o, name) == []


def test_partitioned_delta_table(localcloud):
    o = client(localcloud)
    name = unique("delta_pt")
    create_delta(o, name, partitioned="PARTITIONED BY (pt string)")
    o.execute_sql(f"ALTER TABLE {name} ADD PARTITION (pt='a')")
    s = TableTunnel(o).create_upsert_session(name, partition_spec="pt=a")
    write(s, [("U", [1, "x", 1]), ("U", [1, "y", 2])])
    s.commit()
    assert merged(o, name, " WHERE pt='a'") == [(1, "y", 2, "a")]
    with pytest.raises(errors.ODPSError):
        TableTunnel(o).create_upsert_session(name, partition_spec="pt=missing")


def column_ids(session):
    """`column_id` of each column, from the session document as the service sent it
    (pyodps does not keep them)."""
    resp = session._client.get(
        session._get_resource(),
        params=session.get_common_params(upsertid=session.id),
        headers=session.get_common_headers(content_length=0),
    )
    return {c["name"]: int(c["column_id"]) for c in resp.json()["schema"]["columns"]}


def partial_upsert(session, stream, values, columns):
    """A partial-column upsert as the Java SDK's `upsert(record, columns)` sends it:
    `__value_cols` lists the column ids to set. pyodps 0.13.2 has no public API for
    it (its private `_write(…, valid_columns)` raises TypeError), so the record goes
    through pyodps' own bucket writer with the field set here."""
    ids = column_ids(session)
    rec = session.new_record(values)
    bucket = stream._hasher.hash_record(rec) % len(stream._bucket_writers)
    rec[session.UPSERT_OPERATION_KEY] = ord("U")
    rec[session.UPSERT_VALUE_COLS_KEY] = [ids[c] for c in columns]
    stream._bucket_writers[bucket].write(rec)


def test_partial_update_where_the_table_enables_it(localcloud):
    o = client(localcloud)
    name = unique("delta_partial")
    create_delta(o, name, ', "acid.partial.fields.update.enable"="true"')
    tunnel = TableTunnel(o)
    s = tunnel.create_upsert_session(name)
    assert s.support_partial_update is True
    write(s, [("U", [1, "one", 10]), ("U", [2, "two", 20])])
    s.commit()
    s = tunnel.create_upsert_session(name)
    stream = s.open_upsert_stream()
    partial_upsert(s, stream, [1, None, 11], ["n"])      # v untouched
    partial_upsert(s, stream, [2, "deux", None], ["v"])  # n untouched
    partial_upsert(s, stream, [3, "new", None], ["v"])   # a new row: n is NULL
    stream.close()
    s.commit()
    assert merged(o, name) == [(1, "one", 11), (2, "deux", 20), (3, "new", None)]

    plain = unique("delta_nopartial")
    create_delta(o, plain)
    s = tunnel.create_upsert_session(plain)
    assert not s.support_partial_update
    stream = s.open_upsert_stream()
    partial_upsert(s, stream, [1, "x", None], ["v"])
    with pytest.raises(errors.ODPSError) as e:
        stream.close()
    assert "acid.partial.fields.update.enable" in str(e.value)


def test_faults_on_data_and_commit_leave_the_same_table(localcloud, admin):
    o = client(localcloud)
    name = unique("delta_faults")
    create_delta(o, name)
    changes = [("U", [k, f"v{k}", k]) for k in range(40)] + [("D", [k, None, None]) for k in range(0, 40, 3)]
    want = sorted((k, f"v{k}", k) for k in range(40) if k % 3)
    # A refused data request (before) and one applied whose answer was lost (after):
    # pyodps sends both again; the replayed batch changes nothing.
    admin["odps"].add_fault(operation="UpsertData", times=1, kind="error", status=500, code="InternalServerError")
    admin["odps"].add_fault(operation="UpsertData", times=1, kind="error", status=502, code="BadGateway", after_apply=True)
    admin["odps"].add_fault(operation="CreateUpsertSession", times=1, kind="drop")
    s = TableTunnel(o).create_upsert_session(name, slot_num=2)
    write(s, changes)
    # The commit applies but its answer is lost; pyodps commits again: "committed".
    admin["odps"].add_fault(operation="CommitUpsert", times=1, kind="drop", after_apply=True)
    s.commit()
    assert merged(o, name) == want
    ops = [f["operation"] for f in admin["odps"].faults()["injected"]]
    for op in ("UpsertData", "CreateUpsertSession", "CommitUpsert"):
        assert op in ops


def test_a_reassigned_slot_answers_308_naming_the_new_worker(localcloud, admin):
    o = client(localcloud)
    name = unique("delta_308")
    create_delta(o, name)
    s = TableTunnel(o).create_upsert_session(name, slot_num=2)
    old = s.buckets[1].server
    moved = "127.0.0.1:1"
    admin["odps"].post(f"/-/odps/upserts/{s.id}/reassign", {"slot_id": s.buckets[1].slot, "worker_addr": moved})
    params = s.get_common_params(upsertid=s.id, bucketid=1, slotid=s.buckets[1].slot, record_count=0)
    headers = s.get_common_headers(content_length=0)
    headers["odps-tunnel-routed-server"] = old
    resp = s._client.put(s._get_resource(), data=b"", params=params, headers=headers)
    assert resp.status_code == 308
    assert resp.headers["odps-tunnel-routed-server"] == moved
    assert resp.json()["Code"] == "SlotReassignment"
    # pyodps 0.13.2 takes a 308 for success (its REST client raises only for
    # status >= 400), so a batch sent to a moved slot is silently lost: the rows of
    # the buckets on slot 1 never arrive. A writer must treat 308 as "resend to the
    # worker in odps-tunnel-routed-server".
    write(s, [("U", [k, "v", k]) for k in range(30)])
    s.commit()
    on_moved = {b for b, slot in s.buckets.items() if slot.slot == s.buckets[1].slot}
    got = {r[0] for r in merged(o, name)}
    assert got and len(got) < 30
    assert all(stream_bucket(s, k) not in on_moved for k in got)


def stream_bucket(session, k):
    stream = session.open_upsert_stream()
    return stream._hasher.hash_record(session.new_record([k, "v", k])) % len(stream._bucket_writers)


def test_pyodps_table_writer_upserts_and_deletes_compressed(localcloud, admin):
    # Table.open_writer() on a Delta table uses an upsert session; compress=True
    # sends each bucket's block deflate-encoded.
    o = client(localcloud)
    name = unique("delta_writer")
    t = create_delta(o, name)
    with t.open_writer() as w:
        w.write([[1, "a", 1], [2, "b", 2], [3, "c", 3]], compress=True)
    with t.open_writer() as w:
        w.delete([[2, None, None]], compress=True)
        w.write([[3, "c2", 30]], compress=True)
    assert merged(o, name) == [(1, "a", 1), (3, "c2", 30)]
    puts = [r for r in request_log(admin) if r["operation"] == "UpsertData"]
    assert any(dict(r["headers"]).get("content-encoding") == "deflate" for r in puts)


def test_decimal_and_date_keys_route_as_pyodps_hashes_them(localcloud):
    import datetime
    from decimal import Decimal

    o = client(localcloud)
    name = unique("delta_deckey")
    create_delta(o, name, pk="a, b, c", columns="a decimal(18,4), b decimal(38,10), c date, v string")
    s = TableTunnel(o).create_upsert_session(name)
    values = ["0", "1.5", "-2.25", "123456.7891", "99999999.0001", "-0.0001"]
    day = datetime.date(2024, 2, 29)
    # b stays non-negative: pyodps 0.13.2's Cython record hasher raises OverflowError
    # for a decimal key of precision > 18 whose low 64 bits have the top bit set.
    write(s, [("U", [Decimal(x), abs(Decimal(x)) * 3, day + datetime.timedelta(days=i), x]) for i, x in enumerate(values)])
    s.commit()
    assert sorted(r[3] for r in merged(o, name)) == sorted(values)
