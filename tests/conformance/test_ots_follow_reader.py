"""reader-otsstream in follow mode (issue 16), its steps driven one by one as the
engine drives them: `prepare`, `split`, each task over stdio frames (`read --engine`),
`precommit`, `post`. Rows are written with the official `tablestore` SDK; each put has
its own key, so the exported keys must be exactly the written ones, once each.

Covered: consecutive batches export each record once; a batch "crashed" after
`precommit` is replayed with the same plan, id and records (new records wait for the
next batch); a stale pending row is ignored; a split and a merge while following lose
and repeat nothing (parents drained before children); a trimmed checkpoint, bad `from`
values and a missing checkpoint fail `prepare` with exit 2 and say what to do.
"""

import json
import os
import pathlib
import struct
import subprocess
import threading
import time
import zlib

import msgpack
import pytest
from tablestore import Condition, Row, RowExistenceExpectation

from ots_helpers import StreamApi, make_client, pb2, unique

WORKSPACE = pathlib.Path(__file__).resolve().parents[2]
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", str(WORKSPACE / "target")))
PREAMBLE = b"SPRT\x07msgpack"
IGNORE = Condition(RowExistenceExpectation.IGNORE)
_built = []


def reader_bin():
    explicit = os.environ.get("STREAMPORT_BIN_DIR")
    if explicit:
        return str(pathlib.Path(explicit) / "reader-otsstream")
    if not _built:
        subprocess.run(["cargo", "build", "--quiet", "-p", "reader-otsstream"], cwd=WORKSPACE, check=True)
        _built.append(True)
    return str(TARGET / "debug" / "reader-otsstream")


def job():
    return {"job_id": "follow-test", "fingerprint": "f" * 32, "time_zone": "UTC"}


class Follower:
    """One follow job: a data table with a stream, a status table, the reader's steps."""

    def __init__(self, localcloud, hours=24):
        self.localcloud = localcloud
        self.client = make_client(localcloud)
        self.api = StreamApi(self.client)
        self.table = unique("fol")
        self.status = unique("folst")
        req = pb2.CreateTableRequest()
        req.table_meta.table_name = self.table
        req.table_meta.primary_key.add(name="id", type=pb2.INTEGER)
        req.reserved_throughput.capacity_unit.read = 0
        req.reserved_throughput.capacity_unit.write = 0
        req.table_options.time_to_live = -1
        req.table_options.max_versions = 1
        req.stream_spec.enable_stream = True
        req.stream_spec.expiration_time = hours
        self.api.call("CreateTable", req, pb2.CreateTableResponse)
        self.stream_id = self.api.list_stream(self.table).streams[0].stream_id
        self.written = []

    def drop(self):
        """Deletes the data table and the status table (if the reader created it)."""
        for name in (self.table, self.status):
            req = pb2.DeleteTableRequest()
            req.table_name = name
            try:
                self.api.call("DeleteTable", req, pb2.DeleteTableResponse)
            except Exception as e:  # the status table may never have been created
                if "OTSObjectNotExist" not in str(e):
                    raise

    def write(self, ids):
        now = int(time.time() * 1000)
        for i in ids:
            self.client.put_row(self.table, Row([("id", i)], [("v", "r%d" % i, now)]), IGNORE)
            self.written.append(i)

    def parameter(self, **follow):
        ots = self.localcloud["ots"]
        f = {"commitIntervalSeconds": 1, "from": "checkpoint"}
        f.update(follow)
        return {
            "endpoint": ots["endpoint"], "instanceName": ots["instance"],
            "accessId": self.localcloud["access_key_id"], "accessKey": self.localcloud["access_key_secret"],
            "dataTable": self.table, "statusTable": self.status, "maxRetries": 0,
            "isExportSequenceInfo": True, "follow": f,
        }

    def step(self, name, parameter, state=None, reports=None, count=None):
        request = {"parameter": parameter, "state": state, "job": job(),
                   "reports": reports or [], "count": count}
        p = subprocess.run([reader_bin(), name, "--engine"], input=json.dumps(request),
                           capture_output=True, text=True, timeout=120)
        answer = json.loads(p.stdout) if p.stdout.strip() else {}
        return p.returncode, answer, p.stderr

    def ok(self, name, parameter, **kw):
        code, answer, stderr = self.step(name, parameter, **kw)
        assert code == 0 and answer.get("ok"), (name, code, answer, stderr)
        return answer["value"]

    def plan(self, parameter, count=2):
        state = self.ok("prepare", parameter)
        tasks = self.ok("split", parameter, state=state, count=count)
        return state, tasks

    def run_tasks(self, tasks):
        records, reports = [], []
        for index, task in enumerate(tasks):
            r, c = run_task(task, index, len(tasks))
            records.extend(r)
            reports.extend(c)
        return records, reports

    def batch(self, parameter, count=2, commit=True):
        """One micro-batch as the engine runs it; returns (exported ids, followBatch, reports)."""
        state, tasks = self.plan(parameter, count)
        ids = {t["followBatch"] for t in tasks}
        assert len(ids) == 1, ids
        records, reports = self.run_tasks(tasks)
        if records and commit:
            assert self.ok("precommit", parameter, state=state, reports=reports) is None
            self.ok("post", parameter, state=state, reports=reports)
        return keys(records), ids.pop(), reports

    def follow_until_empty(self, parameter, limit=20):
        out = []
        for _ in range(limit):
            got, _, _ = self.batch(parameter)
            if not got:
                return out
            out.extend(got)
        raise AssertionError("the follower never caught up")

    def shards(self):
        return self.localcloud_get("/-/ots/tables/%s" % self.table)["stream"]["shards"]

    def localcloud_get(self, path):
        import requests
        r = requests.get(self.localcloud["ots"]["endpoint"].rstrip("/") + path, timeout=30)
        r.raise_for_status()
        return r.json()

    def control(self, path, body):
        import requests
        r = requests.post(self.localcloud["ots"]["endpoint"].rstrip("/") + path, json=body, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()


def keys(records):
    """The row key of every put: multi-version mode gives a put as a row delete (type
    DR, no column) followed by one row per cell (column `v`); each row ends with the
    record's sequence info."""
    out = []
    for r in records:
        assert r[1] in ("v", None), r
        if r[1] == "v":
            out.append(r[0])
    return out


def frame(message):
    body = msgpack.packb(message, use_bin_type=True)
    return struct.pack(">I", len(body)) + body + struct.pack(">I", zlib.crc32(body))


def read_frames(stream):
    head = stream.read(len(PREAMBLE))
    assert head == PREAMBLE, head
    while True:
        header = stream.read(4)
        if len(header) < 4:
            return
        (length,) = struct.unpack(">I", header)
        body = stream.read(length)
        (crc,) = struct.unpack(">I", stream.read(4))
        assert crc == zlib.crc32(body)
        yield msgpack.unpackb(body, raw=False)


def run_task(task, index, count):
    """A reader task over frames, as the engine runs it: hello, configure, then batches
    and checkpoints until eos. Returns (records, checkpoint states)."""
    p = subprocess.Popen([reader_bin(), "read", "--engine"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    context = dict(job(), task_index=index, task_count=count)
    p.stdin.write(PREAMBLE + frame({
        "type": "hello", "protocol": "streamport", "version": "1.0.0", "role": "engine",
        "name": "engine", "program_version": "test", "max_frame_bytes": 64 << 20}))
    p.stdin.write(frame({"type": "configure", "task": task, "context": context}))
    p.stdin.flush()
    records, checkpoints, eos = [], [], None
    for m in read_frames(p.stdout):
        t = m["type"]
        if t == "batch":
            batch = msgpack.unpackb(m["records"], raw=False, ext_hook=lambda c, d: (c, bytes(d)))
            assert len(batch) == m["count"]
            records.extend(batch)
        elif t == "checkpoint":
            checkpoints.append(m["state"])
        elif t == "error":
            p.stdin.close()
            p.wait(timeout=30)
            raise AssertionError("task failed: %s\n%s" % (m, p.stderr.read().decode()))
        elif t == "eos":
            eos = m
    p.stdin.close()
    code = p.wait(timeout=60)
    assert code == 0 and eos is not None, p.stderr.read().decode()
    assert eos["records"] == len(records)
    return records, checkpoints


@pytest.fixture
def new_follower(localcloud):
    """Makes followers and drops their tables afterwards (an instance holds 64 tables,
    and the suite shares one localcloud)."""
    made = []

    def make(**kw):
        made.append(Follower(localcloud, **kw))
        return made[-1]

    yield make
    for f in made:
        f.drop()


@pytest.fixture
def follower(new_follower):
    return new_follower()


def test_consecutive_batches_export_each_record_once(follower):
    follower.write(range(0, 25))
    first = follower.parameter(commitRecords=10, **{"from": "oldest"})
    got, id1, reports = follower.batch(first, count=1)
    # One task, one shard: the task's share is the whole limit, and it stops exactly there.
    assert sorted(got) == list(range(0, 10))
    assert all(isinstance(r["position_ms"], int) and r["followBatch"] == id1 for r in reports)
    rest = follower.parameter(commitRecords=10)
    got2, id2, _ = follower.batch(rest, count=1)
    assert sorted(got2) == list(range(10, 20)) and id2 != id1
    follower.write(range(25, 40))
    got3 = follower.follow_until_empty(follower.parameter())
    assert sorted(got + got2 + got3) == list(range(40))
    # Caught up: an empty batch (nothing to commit), and its tasks end at the deadline.
    started = time.time()
    empty, _, reports = follower.batch(follower.parameter(commitIntervalSeconds=1.5))
    assert empty == [] and 1.4 <= time.time() - started < 15
    assert all(r["position_ms"] >= started * 1000 - 1000 for r in reports)


def test_a_batch_crashed_after_precommit_is_replayed_exactly(follower):
    follower.write(range(0, 12))
    param = follower.parameter(commitRecords=8, **{"from": "oldest"})
    got0, _, _ = follower.batch(param)
    param = follower.parameter(commitRecords=3)
    state, tasks = follower.plan(param)
    records, reports = follower.run_tasks(tasks)
    assert keys(records) == [8, 9, 10]
    follower.ok("precommit", param, state=state, reports=reports)
    # "Crash": the writer may or may not have committed; post never ran. More rows come.
    follower.write(range(12, 20))
    again_state, again_tasks = follower.plan(follower.parameter(commitRecords=1000), count=5)
    strip = lambda ts: [{k: v for k, v in t.items() if k not in ("parameter", "replay")} for t in ts]
    assert strip(again_tasks) == strip(tasks), "the replay must have the same plan and id"
    assert all(t["replay"] for t in again_tasks) and not any("replay" in t for t in tasks)
    replayed, replay_reports = follower.run_tasks(again_tasks)
    assert replayed == records
    assert [(r["shard_id"], r["records"], r["checkpoint"]) for r in replay_reports] == \
        [(r["shard_id"], r["records"], r["checkpoint"]) for r in reports]
    follower.ok("precommit", param, state=again_state, reports=replay_reports)
    follower.ok("post", param, state=again_state, reports=replay_reports)
    # A post run twice (a re-run of the commit) changes nothing.
    follower.ok("post", param, state=again_state, reports=replay_reports)
    # A stale pending row (post stored the checkpoint, then "crashed" before deleting it)
    # is not replayed: the next batch starts after the committed one.
    follower.ok("precommit", param, state=again_state, reports=replay_reports)
    rest = follower.follow_until_empty(follower.parameter())
    exported = got0 + keys(records) + rest
    assert sorted(exported) == list(range(20))


def test_split_and_merge_while_following_lose_and_repeat_nothing(follower):
    follower.write(range(0, 100, 2))
    param = follower.parameter(**{"from": "oldest"})
    exported, _, _ = follower.batch(follower.parameter(commitRecords=20, **{"from": "oldest"}))
    # Split the only shard while the rest of its records are unread.
    split = follower.control("/-/ots/split", {"table": follower.table, "split_point": 50})
    follower.write(range(1, 100, 2))
    got, _, _ = follower.batch(follower.parameter(commitRecords=1000))
    exported += got
    # Merge the two children, with records in both still to be exported, then more rows.
    follower.write(range(100, 140))
    merge = follower.control("/-/ots/merge", {"table": follower.table,
                                              "shard_ids": split["children"]})
    follower.write(range(140, 180))
    exported += follower.follow_until_empty(follower.parameter())
    assert sorted(exported) == list(range(180))
    shards = {s["shard_id"]: s for s in follower.shards()}
    assert merge["child"] in shards and not shards[split["parent"]]["open"]
    assert param["follow"]["from"] == "oldest"


def test_a_split_while_a_task_reads_the_parent(follower):
    follower.write(range(0, 40))
    state, tasks = follower.plan(follower.parameter(commitIntervalSeconds=10, **{"from": "oldest"}))
    result = {}
    worker = threading.Thread(target=lambda: result.update(out=follower.run_tasks(tasks)))
    worker.start()
    time.sleep(1)
    follower.write(range(40, 60))
    split = follower.control("/-/ots/split", {"table": follower.table, "split_point": 30})
    follower.write(range(60, 90))
    worker.join(timeout=60)
    records, reports = result["out"]
    param = follower.parameter()
    follower.ok("precommit", param, state=state, reports=reports)
    follower.ok("post", param, state=state, reports=reports)
    # The batch planned before the split read its parent to the end; the children are
    # read from their start by the next batches.
    assert [r["checkpoint"] for r in reports] == ["SHARD_END"]
    assert sorted(keys(records)) == list(range(60))
    rest = follower.follow_until_empty(param)
    assert sorted(keys(records) + rest) == list(range(90))
    assert {s["shard_id"] for s in follower.shards()} >= set(split["children"])


def test_following_starts_where_the_last_window_job_ended(follower, tmp_path):
    follower.write(range(0, 10))
    follower.control("/-/ots/backdate", {"table": follower.table, "ms": 20 * 60_000})
    now_ms = int(time.time() * 1000)
    window = follower.parameter()
    del window["follow"]
    window.update(startTimestampMillis=now_ms - 3_600_000, endTimestampMillis=now_ms - 10 * 60_000)
    path = tmp_path / "window.json"
    path.write_text(json.dumps(window))
    out = subprocess.run([reader_bin(), "read", "--config", str(path), "--format", "jsonl"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    window_keys = [json.loads(line)[0] for line in out.stdout.splitlines() if json.loads(line)[1] == "v"]
    assert sorted(window_keys) == list(range(10))
    follower.write(range(10, 15))
    # Window keys in a follow job are ignored (with a warning), not an error.
    param = follower.parameter()
    param["date"] = "20240115"
    code, answer, stderr = follower.step("prepare", param)
    assert code == 0 and answer["value"]["plan"]["base"].startswith("window:"), stderr
    assert "window keys have no effect in follow mode" in stderr
    assert sorted(follower.follow_until_empty(param)) == list(range(10, 15))


def test_byte_limit_ends_a_batch(follower):
    follower.write(range(0, 5))
    got, _, _ = follower.batch(follower.parameter(commitBytes=1, **{"from": "oldest"}), count=1)
    assert got == [0]
    got, _, _ = follower.batch(follower.parameter(commitBytes=1), count=1)
    assert got == [1]
    assert sorted(follower.follow_until_empty(follower.parameter())) == [2, 3, 4]


def test_parents_are_drained_before_children_in_one_batch(follower):
    follower.write(range(0, 30))
    split = follower.control("/-/ots/split", {"table": follower.table, "split_point": 15})
    follower.write(range(30, 60))
    state, tasks = follower.plan(follower.parameter(**{"from": "oldest"}), count=4)
    assert len(tasks) == 1, "a family stays in one task"
    records, reports = follower.run_tasks(tasks)
    got = keys(records)
    assert sorted(got) == list(range(60))
    # Every record of the parent comes before any record of a child.
    assert got[:30] == list(range(30))
    ends = {r["shard_id"]: r["checkpoint"] for r in reports}
    assert ends[split["parent"]] == "SHARD_END"
    assert all(ends[c] not in ("SHARD_END", "TRIM_HORIZON") for c in split["children"])


def test_a_trimmed_checkpoint_fails_prepare_and_from_oldest_restarts(new_follower):
    f = new_follower(hours=1)
    f.write(range(0, 20))
    f.batch(f.parameter(commitRecords=5, **{"from": "oldest"}), count=1)
    # Two hours pass for the stream: the 15 unread records expire.
    f.control("/-/ots/backdate", {"table": f.table, "ms": 2 * 3_600_000})
    f.write(range(20, 25))
    code, answer, stderr = f.step("prepare", f.parameter())
    message = answer["error"]["message"]
    assert code == 2 and answer["ok"] is False, stderr
    shard = f.shards()[0]["shard_id"]
    for needle in [shard, "OTSTrimmedDataAccess", "1 h", "--from oldest", "exported up to"]:
        assert needle in message, (needle, message)
    got, _, _ = f.batch(f.parameter(**{"from": "oldest"}))
    assert sorted(got) == list(range(20, 25))
    assert f.follow_until_empty(f.parameter()) == []


def test_bad_start_positions_fail_prepare_with_exit_2(follower):
    follower.write([1])
    now_ms = int(time.time() * 1000)
    cases = [
        ("yesterday", ["follow.from", "yesterday", "yyyyMMddHHmmss"]),
        (str(now_ms + 3_600_000), ["follow.from", "in the future"]),
        (str(now_ms - 25 * 3_600_000), ["follow.from", "retention 24 h", "--from oldest"]),
        ("checkpoint", ["neither a follow checkpoint nor a complete window checkpoint set",
                        "--from oldest", "--from TIME"]),
    ]
    for value, needles in cases:
        code, answer, stderr = follower.step("prepare", follower.parameter(**{"from": value}))
        assert code == 2 and not answer["ok"], (value, stderr)
        for n in needles:
            assert n in answer["error"]["message"], (value, n, answer["error"]["message"])
    code, answer, _ = follower.step("prepare", follower.parameter(commitIntervalSeconds=-1))
    assert code == 2 and "follow.commitIntervalSeconds" in answer["error"]["message"]


def test_from_a_time_skips_older_records(follower):
    follower.write(range(0, 5))
    time.sleep(0.05)
    t = int(time.time() * 1000)
    time.sleep(0.05)
    follower.write(range(5, 9))
    got, _, _ = follower.batch(follower.parameter(**{"from": str(t)}))
    assert sorted(got) == [5, 6, 7, 8]
    assert follower.follow_until_empty(follower.parameter()) == []


def test_status_table_faults_in_precommit_and_post_converge(follower, admin):
    """Every status-table write of follow mode failing once (before or after it took
    effect): a re-run of the batch replays or moves on, and every record is exported once."""
    ots = admin["ots"]
    follower.write(range(0, 12))
    exported, _, _ = follower.batch(follower.parameter(commitRecords=2, **{"from": "oldest"}), count=1)
    param = follower.parameter(commitRecords=3)

    def read():
        state, tasks = follower.plan(param, count=1)
        records, reports = follower.run_tasks(tasks)
        read.replayed = "replay" in tasks[0]
        return state, tasks[0]["followBatch"], records, reports

    def failing(step, operation, state, reports, after_apply):
        ots.add_fault(operation=operation, times=1, kind="error", status=503,
                      code="OTSServerBusy", after_apply=after_apply)
        code, answer, stderr = follower.step(step, param, state=state, reports=reports)
        assert code != 0 and not answer["ok"], stderr
        assert operation in answer["error"]["message"] and "statusTable" in answer["error"]["message"]
        assert ots.faults()["rules"] == []

    # precommit's PutRow took effect but its answer was lost: the batch is replayed.
    state, id_a, records_a, reports = read()
    failing("precommit", "PutRow", state, reports, after_apply=True)
    state, id_again, records_again, reports = read()
    assert (id_again, records_again, read.replayed) == (id_a, records_a, True)
    follower.ok("precommit", param, state=state, reports=reports)
    # post stored the checkpoint, then deleting the pending row failed: the pending row is
    # stale and the next batch starts after this one.
    failing("post", "DeleteRow", state, reports, after_apply=False)
    exported += keys(records_a)
    # post's checkpoint PutRow failed (nothing stored): the next batch replays.
    state, id_b, records_b, reports = read()
    assert id_b != id_a and keys(records_b) == [5, 6, 7] and not read.replayed
    follower.ok("precommit", param, state=state, reports=reports)
    failing("post", "PutRow", state, reports, after_apply=False)
    state, id_again, records_again, reports = read()
    assert (id_again, records_again, read.replayed) == (id_b, records_b, True)
    follower.ok("precommit", param, state=state, reports=reports)
    follower.ok("post", param, state=state, reports=reports)
    exported += keys(records_b)
    exported += follower.follow_until_empty(follower.parameter())
    assert sorted(exported) == list(range(12))


def test_caught_up_shards_take_turns_within_thread_num(follower):
    """threadNum 1: a caught-up child keeps polling, yet its sibling is read too."""
    follower.write(range(0, 30))
    follower.control("/-/ots/split", {"table": follower.table, "split_point": 15})
    follower.write(range(30, 60))
    param = follower.parameter(commitIntervalSeconds=2, **{"from": "oldest"})
    param["threadNum"] = 1
    got, _, _ = follower.batch(param, count=1)
    assert sorted(got) == list(range(60))
