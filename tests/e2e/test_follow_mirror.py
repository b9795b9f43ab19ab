"""The mirror pipeline in follow mode (issues 16 and 17 together): the mirror example
job (reader-otsstream mode row_change -> writer-odps writeMode upsert) made a follow job,
run with `streamport run --follow` while a writer thread keeps changing the Tablestore
table through the official SDK (puts of some columns, updates setting and deleting
columns, row deletes, BatchWriteRow batches). Each micro-batch is one upsert session,
committed once under its commit marker. The engine is SIGKILLed at random moments and
inside the writer's and the reader's `post`, and restarted; at the end the Delta table
read back with pyodps equals the Tablestore table, row for row, cell for cell."""

import os
import random
import threading
import time

import pytest

import follow
import mirror
import pipelines

KILLS = 6
# Kill rounds that land inside a commit step: the writer's post (the upsert session may
# or may not be committed) or the reader's post (committed, checkpoint maybe not stored:
# the replayed batch must commit nothing again).
IN_COMMIT = {1: "writer-odps", 3: "reader-otsstream"}


@pytest.fixture(scope="module", autouse=True)
def subreaper():
    pipelines.become_subreaper()


def mirror_follow_job(tmp_path):
    """examples/jobs/otsstream-to-odps-mirror.json without its window, markers reclaimed
    after a day (as writer-odps advises for follow mode)."""
    return follow.derive_job(mirror.MIRROR_JOB, [
        ('"writeMode": "upsert",', '"writeMode": "upsert", "commitMarkerLifecycle": 1,'),
    ], tmp_path / "mirror-follow.json", drop_lines=('"startTimeString"', '"endTimeString"'))


class Changer(threading.Thread):
    """Applies the mirror workload's random changes at about `rate` per second."""

    def __init__(self, work, rate):
        super().__init__(daemon=True)
        self.work, self.rate = work, rate
        self.halt = threading.Event()
        self.error = None

    def run(self):
        try:
            while not self.halt.is_set():
                self.work.apply_one()
                time.sleep(1.0 / self.rate)
        except Exception as e:  # reported by stop()
            self.error = e

    def stop(self):
        self.halt.set()
        self.join(30)
        assert self.error is None, self.error


def test_follow_keeps_the_delta_table_equal_through_kills(cloud, odps_bins, tmp_path):
    mirror.create_tables(cloud, mirror.windows(1)[0])
    work = mirror.Workload(cloud, seed=int(os.environ.get("MIRROR_SEED", 17)), keys=30)
    changer = Changer(work, rate=30)
    changer.start()
    engine = follow.Follower(cloud, mirror_follow_job(tmp_path), tmp_path, commit_interval=1)
    rng = random.Random(int(os.environ.get("KILL_SEED", 23)))
    moments = []
    try:
        engine.start(start_from="oldest")
        engine.wait_for(lambda: engine.batches_committed() >= 1, 60, "first committed batch")
        for i in range(KILLS):
            if i in IN_COMMIT:
                seen = engine.kill_in_step(IN_COMMIT[i], "post")
                assert seen, "no %s post within 30 s:\n%s" % (IN_COMMIT[i], engine.log_tail())
                moments.append("in %s post" % IN_COMMIT[i])
            else:
                delay = rng.uniform(0.2, 3.0)
                time.sleep(delay)
                assert engine.alive(), "the engine exited by itself:\n%s" % engine.log_tail()
                engine.kill()
                moments.append("%.2f s" % delay)
            engine.start()
        time.sleep(2)
        changer.stop()
        want = mirror.ots_table(cloud)
        assert want, "the workload left no rows"
        deadline = time.monotonic() + 90
        while mirror.odps_table(cloud) != want and time.monotonic() < deadline:
            assert engine.alive(), engine.log_tail()
            time.sleep(0.5)
        assert engine.terminate() == 0, engine.log_tail()
    finally:
        changer.halt.set()
        if engine.alive():
            engine.kill()
    got = mirror.odps_table(cloud)
    assert got == want, "\n".join(mirror.differences(want, got))
    logs = [(tmp_path / ("engine-%d.stderr" % n)).read_text() for n in range(1, engine.runs + 1)]
    replays = sum(1 for text in logs if "replaying the pending batch" in text)
    assert replays >= 1, "no run replayed a pending batch"
    print("%d changes %s; %d engine runs, %d replays; kills %s; %d rows equal" % (
        sum(work.counts[k] for k in ("put", "update", "delete")), work.counts, engine.runs, replays,
        moments, len(want)))
