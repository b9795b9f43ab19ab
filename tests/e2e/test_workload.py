"""The workload and its log against the Tablestore emulator: what the stream holds,
read and decoded with the official SDK's protocol layer and PlainBuffer classes,
gives exactly the rows the deriver computes from the log. This checks the workload and
the deriver independently of every plugin."""

import sys

import pipelines
from conftest import WORKSPACE

sys.path.insert(0, str(WORKSPACE / "tests" / "conformance"))

import expected_rows as er  # noqa: E402
from ots_helpers import StreamApi, make_client  # noqa: E402


def stream_records(cloud, table):
    """Every record of the table's stream, parents before children, in commit order."""
    api = StreamApi(make_client(cloud.info))
    stream_id = api.list_stream(table).streams[0].stream_id
    records = []
    for shard in api.all_shards(stream_id):
        got, _ = api.drain(shard.shard_id, stream_id)
        records += got
    return sorted(records, key=lambda r: (r["timestamp_us"], r["row_index"])), api.all_shards(stream_id)


def rows_from_records(records, window):
    rows = []
    for r in records:
        if not (window.start_ms <= r["timestamp_us"] // 1000 < window.end_ms):
            continue
        pk = [v for _, v in r["primary_key"]]
        if r["action"] in ("PUT_ROW", "DELETE_ROW"):
            rows.append(pk + [None, None, None, "DR"])
        for kind, name, value, ts in r["cells"]:
            if kind == "PUT":
                rows.append(pk + [name, ts, bytes(value) if isinstance(value, bytearray) else value, "U"])
            elif kind == "DELETE_ONE":
                rows.append(pk + [name, ts, None, "DO"])
            else:
                rows.append(pk + [name, None, None, "DA"])
    return rows


def test_the_log_predicts_the_stream_exactly(cloud, tmp_path):
    window = pipelines.Window()
    log = tmp_path / "ops.jsonl"
    pipelines.run_workload(cloud, log, window, changes=200, outside=15, keys=30, seed=7, split_after=120)
    ops = er.read_log(str(log))
    kinds = {o["op"] for o in ops}
    assert {"put", "update", "delete", "split"} <= kinds
    assert any(o.get("batch") for o in ops)
    for table in (pipelines.OSS_TABLE, pipelines.ODPS_TABLE):
        records, shards = stream_records(cloud, table)
        assert len(shards) == 3  # the split closed the root shard and opened two children
        times = [r["timestamp_us"] // 1000 for r in records]
        assert any(t < window.start_ms for t in times) and any(t >= window.end_ms for t in times)
        expected = er.multi_version_rows(ops, table, window.start_ms, window.end_ms)
        assert rows_from_records(records, window) == expected
        assert len(expected) > 100
