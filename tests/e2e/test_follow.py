"""Follow mode end to end (issue 16): `streamport run JOB --follow` against localcloud
while a writer thread keeps changing the table through the official SDK.

* For each pipeline (Stream → OSS CSV, Stream → MaxCompute; the shipped follow example
  jobs, examples/jobs/*-follow.json, at a 1 s commit interval), the engine is SIGKILLed at
  ten moments (random ones, random ones after the run's own first commit, and inside
  the writer's and the reader's `post`) and restarted from its checkpoint (a pending
  batch is replayed; writer-odps must find it committed and not commit it again); the
  table's shard is
  split and its two children merged while it follows; at the end the writer stops, the
  engine catches up and is stopped with SIGTERM (exit 0), and the output (read with
  oss2 / pyodps) equals exactly the rows derived from the writer's log: nothing lost,
  nothing twice.
* SIGTERM finishes and commits the current batch and exits 0; the metrics file says
  what was committed.
* A checkpoint pointing at trimmed stream data, and bad `--from` values, end with exit 2
  and an error naming the shard / the value.
"""

import json
import os
import random
import re
import time

import pytest

import follow
import pipelines

KILLS = 10
# Kill rounds that wait for a commit step and kill the engine in it: the writer's `post`
# (the batch may or may not become visible) or the reader's `post` (the batch is
# visible, its checkpoint may not be stored: the replay must not write it again).
IN_COMMIT = {1: "writer post", 5: "reader post", 8: "reader post"}
# Kill rounds that wait until the run committed a batch of its own, then kill at a random
# moment; the rest kill at a random moment from the start (start-up, replay, first batch).
AFTER_A_COMMIT = {2, 4, 7, 9}
COMMIT_INTERVAL = 1


@pytest.fixture(scope="module", autouse=True)
def subreaper():
    pipelines.become_subreaper()


class Pipeline:
    """A follow job of one pipeline: the example job of the window pipeline made a follow
    job (`follow.oss_follow_job` / `odps_follow_job`), or with `example` the shipped
    follow example (examples/jobs/*-follow.json)."""

    def __init__(self, which, cloud, tmp_path, example=False):
        self.which, self.cloud = which, cloud
        if which == "oss":
            self.table, self.pk = pipelines.OSS_TABLE, pipelines.OSS_PK
            self.job = follow.OSS_EXAMPLE if example else follow.oss_follow_job(tmp_path)
            self.object = follow.OSS_EXAMPLE_OBJECT if example else follow.OSS_FOLLOW_PREFIX + "out"
            self.writer = "writer-oss"
        else:
            self.table, self.pk = pipelines.ODPS_TABLE, pipelines.ODPS_PK
            self.job = follow.ODPS_EXAMPLE if example else follow.odps_follow_job(tmp_path)
            self.writer = "writer-odps"
            pipelines.create_person_table(cloud)

    def output(self):
        if self.which == "oss":
            records, stray = follow.oss_follow_records(self.cloud, self.object)
            assert not stray, "objects not named by the writer: %s" % stray
            return records
        return follow.odps_follow_rows(self.cloud)

    def count(self):
        if self.which == "oss":
            return len(self.output())
        return follow.odps_follow_count(self.cloud)

    def expected(self, ops):
        if self.which == "oss":
            return follow.expected_oss_records(ops)
        return follow.expected_odps_rows(ops)


def catch_up(pipe, engine, want, timeout=90):
    """Waits until the output holds as many rows as derived (it cannot hold more without
    a duplicate, which the final comparison reports)."""
    engine.wait_for(lambda: pipe.count() >= len(want), timeout, "output of %d rows" % len(want))


def follow_through_kills(which, cloud, tmp_path, seed):
    pipe = Pipeline(which, cloud, tmp_path, example=True)
    rng = random.Random(int(os.environ.get("KILL_SEED", seed)))
    writer = follow.Writer(cloud, pipe.table, pipe.pk, tmp_path / "ops.jsonl", seed=seed, rate=40)
    writer.create_table()
    writer.start()
    engine = follow.Follower(cloud, pipe.job, tmp_path, commit_interval=COMMIT_INTERVAL)
    # The first run starts from the oldest record; once a batch is committed, every
    # restart continues from the checkpoint (the default `--from checkpoint`).
    engine.start(start_from="oldest")
    engine.wait_for(lambda: engine.batches_committed() >= 1, 60, "first committed batch")
    events, moments = [], []
    try:
        for i in range(KILLS):
            if i in IN_COMMIT:
                plugin = pipe.writer if IN_COMMIT[i] == "writer post" else "reader-otsstream"
                if plugin == "reader-otsstream":
                    # After the writer's commit, before the reader stored the checkpoint:
                    # the replay must find the batch committed.
                    seen = engine.kill_in_reader_post_before_checkpoint(cloud, pipe.writer)
                else:
                    seen = engine.kill_in_step(plugin, "post")
                assert seen, "no %s post within 30 s:\n%s" % (plugin, engine.log_tail())
                moments.append(("in " + IN_COMMIT[i], "killed"))
            else:
                if i in AFTER_A_COMMIT:
                    # This run makes progress first: the kill hits a later batch.
                    engine.wait_for(lambda: engine.batches_committed() >= 1, 60, "a committed batch")
                    delay = rng.uniform(0, 1.5)
                else:
                    delay = rng.uniform(0.2, 3.0)
                time.sleep(delay)
                running = engine.alive()
                left = engine.kill()
                moments.append(("%s%.2f" % ("commit+" if i in AFTER_A_COMMIT else "", delay),
                                "killed" if running else "exited %s" % engine.proc.returncode, left))
                assert running, "the engine exited by itself before kill %d:\n%s" % (i + 1, engine.log_tail())
            if i == 3:
                events.append(("split", follow.split(cloud, pipe.table)))
            if i == 6:
                events.append(("merge", follow.merge(cloud, pipe.table)))
            engine.start()
        # Let the last run follow a little after the merge, then stop writing.
        time.sleep(2)
        ops = writer.stop()
        want = pipe.expected(ops)
        assert len(want) > 300, len(want)
        catch_up(pipe, engine, want)
        assert engine.terminate() == 0, engine.log_tail()
    finally:
        writer.halt.set()
        if engine.alive():
            engine.kill()
    # A kill during the writer's post leaves a pending batch, which a later run
    # replays (the post may have completed before the kill: then nothing pends).
    logs = [(tmp_path / ("engine-%d.stderr" % n)).read_text() for n in range(1, engine.runs + 1)]
    replays = sum(1 for text in logs if "replaying the pending batch" in text)
    # writer-odps: a replayed batch whose session was committed commits nothing again.
    recommits = sum(1 for text in logs if "nothing committed again" in text)
    got = pipe.output()
    print("%s: %d changes, %d rows; %d engine runs, %d replayed a pending batch (%d found it committed); "
          "kill moments (s, outcome, processes left): %s; %s" % (
              which, len(ops), len(want), engine.runs, replays, recommits, moments, events))
    assert follow.same_rows(got, want), follow.difference(got, want)
    assert replays >= 1, "no run replayed a pending batch"
    if which == "odps":
        assert recommits >= 1, "no replay found its batch committed (kills in the reader's post)"
    # The split and the merge happened on the followed table: root → two children → one.
    family = follow.shards(cloud, pipe.table)
    assert len(family) == 4, family
    assert sum(1 for s in family if s["open"]) == 1
    merged = [s for s in family if s["parent_sibling_id"]]
    assert len(merged) == 1 and merged[0]["records"] > 0, family
    summary = json.loads(engine.summary.read_text())
    assert summary["outcome"] == "succeeded", summary
    assert summary["committed"] == "all", summary


def test_follow_the_oss_pipeline_through_kills_a_split_and_a_merge(cloud, oss_bins, tmp_path):
    follow_through_kills("oss", cloud, tmp_path, 61)


def test_follow_the_maxcompute_pipeline_through_kills_a_split_and_a_merge(cloud, odps_bins, tmp_path):
    follow_through_kills("odps", cloud, tmp_path, 62)


def test_sigterm_commits_the_current_batch_and_exits_0(cloud, oss_bins, tmp_path):
    pipe = Pipeline("oss", cloud, tmp_path)
    writer = follow.Writer(cloud, pipe.table, pipe.pk, tmp_path / "ops.jsonl", seed=63, rate=30)
    writer.create_table()
    writer.start()
    time.sleep(1)
    engine = follow.Follower(cloud, pipe.job, tmp_path, commit_interval=2)
    engine.start(start_from="oldest")
    engine.wait_for(lambda: engine.batches_committed() >= 2, 60, "two committed batches")
    following = engine.read_metrics()
    assert following["state"] == "following" and following["records"] > 0, following
    ops = writer.stop()
    # Everything written is older than the running batch's start or read by it within
    # its polling wait: the batch that SIGTERM ends takes it all.
    time.sleep(0.7)
    assert engine.terminate() == 0, engine.log_tail()
    want = pipe.expected(ops)
    got = pipe.output()
    assert follow.same_rows(got, want), follow.difference(got, want)
    summary = json.loads(engine.summary.read_text())
    assert summary["outcome"] == "succeeded" and summary["committed"] == "all", summary
    reason = summary["follow"]["stop_reason"]
    assert re.fullmatch(r"stopped by SIGTERM after committing batch \d+", reason), reason
    stderr = engine.log_tail(20000)
    assert "SIGTERM" in stderr, stderr
    metrics = engine.read_metrics()
    assert metrics is not None, "no metrics file"
    assert metrics["state"] == "stopped", metrics
    assert metrics["batches_committed"] >= 2, metrics
    # The records counted are the rows that went through (single-version mode: one per
    # put/update record with a configured column; deletes are read, not exported).
    assert metrics["records"] == len(want), (metrics, len(want))
    assert metrics["bytes"] > 0
    assert metrics["lag_ms"] is not None and 0 <= metrics["lag_ms"] < 30_000, metrics
    assert metrics["lag_ms"] == max(metrics["lag_ms_per_shard"].values()), metrics
    assert set(metrics["lag_ms_per_shard"]) == {s["shard_id"] for s in follow.shards(cloud, pipe.table)}, metrics
    assert metrics["last_commit"], metrics


def test_a_trimmed_checkpoint_exits_2_naming_the_shard(cloud, oss_bins, tmp_path):
    pipe = Pipeline("oss", cloud, tmp_path)
    writer = follow.Writer(cloud, pipe.table, pipe.pk, tmp_path / "ops.jsonl", seed=64, rate=50)
    writer.create_table()
    writer.start()
    engine = follow.Follower(cloud, pipe.job, tmp_path, commit_interval=1)
    engine.start(start_from="oldest")
    engine.wait_for(lambda: engine.batches_committed() >= 1, 60, "a committed batch")
    assert engine.terminate() == 0, engine.log_tail()
    time.sleep(0.5)
    writer.stop()
    # The records after the checkpoint, and the checkpoint's own, fall out of the 24-hour
    # retention: the stored checkpoint points at trimmed data.
    follow.backdate(cloud, pipe.table, 25 * 3_600_000)
    shard = follow.shards(cloud, pipe.table)[0]
    assert shard["trimmed"] > 0, shard
    code, stderr = engine.run()
    assert code == 2, stderr[-4000:]
    assert shard["shard_id"] in stderr, stderr[-4000:]
    assert re.search(r"(?i)trimmed", stderr), stderr[-4000:]
    assert re.search(r"24 ?h|24 hours|retention", stderr), stderr[-4000:]
    assert "--from oldest" in stderr, stderr[-4000:]


@pytest.mark.parametrize("case", ["garbage", "future", "before-retention", "no-checkpoint"])
def test_a_bad_start_position_exits_2_naming_it(cloud, oss_bins, tmp_path, case):
    pipe = Pipeline("oss", cloud, tmp_path)
    writer = follow.Writer(cloud, pipe.table, pipe.pk, tmp_path / "ops.jsonl", seed=65)
    writer.create_table()
    now_ms = int(time.time() * 1000)
    value = {"garbage": "yesterday-ish", "future": str(now_ms + 3_600_000),
             "before-retention": str(now_ms - 30 * 3_600_000), "no-checkpoint": None}[case]
    engine = follow.Follower(cloud, pipe.job, tmp_path)
    code, stderr = engine.run(start_from=value)
    assert code == 2, stderr[-4000:]
    if value is not None:
        assert value in stderr, stderr[-4000:]
    else:
        assert "--from oldest" in stderr and re.search(r"(?i)checkpoint", stderr), stderr[-4000:]
    assert "panicked" not in stderr


def test_the_writer_log_predicts_the_stream_through_a_split_and_a_merge(cloud, tmp_path):
    """The harness itself, without the engine: what the writer thread logs gives exactly
    the records the stream holds (read with the SDK's protocol layer), across a split and
    a merge, so the follow tests compare the output with a true expectation."""
    import sys
    sys.path.insert(0, str(pipelines.WORKSPACE / "tests" / "conformance"))
    from ots_helpers import StreamApi, make_client
    from test_workload import rows_from_records

    writer = follow.Writer(cloud, pipelines.ODPS_TABLE, pipelines.ODPS_PK, tmp_path / "ops.jsonl", seed=66, rate=100)
    writer.create_table()
    writer.start()
    time.sleep(1)
    follow.split(cloud, pipelines.ODPS_TABLE)
    time.sleep(1)
    follow.merge(cloud, pipelines.ODPS_TABLE)
    time.sleep(1)
    ops = writer.stop()
    assert {o["op"] for o in ops} >= {"put", "update", "delete"} and any(o.get("batch") for o in ops)
    api = StreamApi(make_client(cloud.info))
    stream_id = api.list_stream(pipelines.ODPS_TABLE).streams[0].stream_id
    records = []
    shards = api.all_shards(stream_id)
    assert len(shards) == 4
    for shard in shards:
        got, _ = api.drain(shard.shard_id, stream_id)
        records += got
    records.sort(key=lambda r: (r["timestamp_us"], r["row_index"]))
    window = pipelines.Window()
    window.start_ms, window.end_ms = follow.ALL_START_MS, follow.ALL_END_MS
    want = [r[:5] for r in follow.expected_odps_rows(ops)]
    got = [r[:3] + [follow.er.odps_string(r[3]), r[4]] for r in rows_from_records(records, window)]
    assert got == want


def follow_until(pipe, engine, want, start_from):
    engine.start(start_from=start_from)
    catch_up(pipe, engine, want)
    assert engine.terminate() == 0, engine.log_tail()
    got = pipe.output()
    assert follow.same_rows(got, want), follow.difference(got, want)
    return got


def test_from_a_time_exports_the_changes_from_that_time_on(cloud, oss_bins, tmp_path):
    pipe = Pipeline("oss", cloud, tmp_path)
    earlier = follow.Writer(cloud, pipe.table, pipe.pk, tmp_path / "earlier.jsonl", seed=67, rate=50)
    earlier.create_table()
    earlier.start()
    time.sleep(1.5)
    assert earlier.stop()
    # No write is in flight at the start time: it cuts no change.
    time.sleep(0.05)
    from_ms = int(time.time() * 1000)
    time.sleep(0.05)
    later = follow.Writer(cloud, pipe.table, pipe.pk, tmp_path / "later.jsonl", seed=70, rate=50)
    later.start()
    time.sleep(1.5)
    want = follow.expected_oss_records(later.stop())
    assert want
    engine = follow.Follower(cloud, pipe.job, tmp_path)
    follow_until(pipe, engine, want, str(from_ms))


def test_following_after_scheduled_windows_continues_from_the_window_checkpoint(cloud, oss_bins, tmp_path):
    """Switching from five-minute windows to follow loses nothing and repeats nothing:
    the follow run starts where the last window ended (its checkpoints in the status
    table), without --from."""
    window = pipelines.Window()
    log = tmp_path / "window-ops.jsonl"
    pipelines.run_workload(cloud, log, window, changes=60, outside=10, keys=20, seed=68, reuse_tables=False)
    pipelines.run_engine(cloud, pipelines.OSS_JOB, pipelines.oss_params(window), window)
    window_ops = follow.er.read_log(str(log))
    # Then changes go on (now, after the window), while the job follows.
    pipe = Pipeline("oss", cloud, tmp_path)
    writer = follow.Writer(cloud, pipe.table, pipe.pk, tmp_path / "ops.jsonl", seed=69, rate=50)
    writer.start()
    engine = follow.Follower(cloud, pipe.job, tmp_path)
    engine.start()
    time.sleep(2)
    ops = writer.stop()
    want = follow.expected_oss_records(
        [o for o in window_ops if o["op"] != "create_table" and o["t_before_ms"] >= window.end_ms] + ops)
    assert len(want) > 10
    catch_up(pipe, engine, want)
    assert engine.terminate() == 0, engine.log_tail()
    got = pipe.output()
    assert follow.same_rows(got, want), follow.difference(got, want)
