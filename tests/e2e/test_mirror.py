"""The mirror pipeline (examples/jobs/otsstream-to-odps-mirror.json: reader-otsstream
mode row_change -> writer-odps writeMode upsert) end to end against localcloud: after a
random workload (puts of some columns, updates of some columns, column deletes, row
deletes, BatchWriteRow batches, a shard split) over several five-minute windows, the
MaxCompute Delta table read back with pyodps equals the Tablestore table read with the
tablestore SDK, row for row and cell for cell; also when the engine is SIGKILLed at
random moments and the windows are run again, and with 10 % of the requests to every
service failing."""

import json
import os
import random
import time

import pytest

import mirror
import pipelines
from ots_workload import split_shard
from scaleout import SERVICE_ERRORS, add_fault, clear_faults


@pytest.fixture(scope="module", autouse=True)
def subreaper():
    pipelines.become_subreaper()


def assert_equal_tables(cloud):
    want, got = mirror.ots_table(cloud), mirror.odps_table(cloud)
    assert want, "the workload left no rows in Tablestore"
    assert got == want, "\n".join(mirror.differences(want, got))
    return len(want)


def test_the_delta_table_equals_the_tablestore_table(cloud, odps_bins, tmp_path):
    windows = mirror.windows(3)
    mirror.create_tables(cloud, windows[0])
    work = mirror.Workload(cloud, seed=int(os.environ.get("MIRROR_SEED", 7)), keys=40)
    for i, window in enumerate(windows):
        if i == 1:
            work.run(window, 60)
            split_shard(cloud.info["ots"]["endpoint"], mirror.TABLE)
            work.run(window, 60)
        else:
            work.run(window, 120)
    counts = work.counts
    assert all(counts[k] > 0 for k in counts), counts
    summaries = []
    for i, window in enumerate(windows):
        summary = tmp_path / ("w%d.json" % i)
        mirror.run_window(cloud, window, summary=summary)
        summaries.append(json.loads(summary.read_text()))
    rows = assert_equal_tables(cloud)
    assert all(s["committed"] == "all" for s in summaries)
    # One record per change, each once (a repeated change leaves the same table, so the
    # equality above cannot see it).
    made = counts["put"] + counts["update"] + counts["delete"]
    assert sum(s["records"] for s in summaries) == made, (summaries, counts)
    # A committed window run again commits nothing again (its changes applied again
    # would put older values back over the later windows').
    again = tmp_path / "again.json"
    mirror.run_window(cloud, windows[0], summary=again)
    detail = json.loads(again.read_text())["commit_detail"]
    assert "already committed" in detail, detail
    assert_equal_tables(cloud)
    print("workload %s; %d rows equal" % (counts, rows))


def test_killed_runs_converge_to_the_same_table(cloud, odps_bins):
    windows = mirror.windows(3)
    mirror.create_tables(cloud, windows[0])
    work = mirror.Workload(cloud, seed=11, keys=30)
    for window in windows:
        work.run(window, 80)
    t0 = time.monotonic()
    mirror.run_window(cloud, windows[0])
    full_s = time.monotonic() - t0
    rng = random.Random(int(os.environ.get("KILL_SEED", 5)))
    moments = []
    for window in windows[1:]:
        # Up to four kills of the window's runs, each at a random moment of a run (the
        # first of a fresh window, later ones of re-runs); a run that ends before its
        # moment has committed the window, and the next window follows. The moments
        # fall in the first 80 % of the quickest run seen so far: the first run of the
        # test is its slowest (cold caches), and a later one that ended within a
        # moment drawn from its length would leave the window without a kill.
        for _ in range(4):
            delay = rng.uniform(0, 0.8 * full_s)
            t0 = time.monotonic()
            finished = pipelines.kill_engine_at(cloud, mirror.MIRROR_JOB, pipelines.odps_params(), window, delay)
            took = time.monotonic() - t0
            pipelines.wait_orphans(exclude={cloud.pid})
            moments.append((round(delay, 3), "killed" if finished is None else "finished %s" % finished))
            if finished is not None:
                full_s = min(full_s, took)
                break
        mirror.run_window(cloud, window)
    assert sum(1 for _, what in moments if what == "killed") >= 2, moments
    rows = assert_equal_tables(cloud)
    print("full run %.2fs; kills %s; %d rows equal" % (full_s, moments, rows))


def test_faults_on_every_service_leave_the_same_table(cloud, odps_bins):
    windows = mirror.windows(2)
    mirror.create_tables(cloud, windows[0])
    work = mirror.Workload(cloud, seed=13, keys=30)
    for window in windows:
        work.run(window, 100)
    for service, error in SERVICE_ERRORS.items():
        add_fault(cloud, service, dict(error, kind="error", rate=0.1))
    # Besides the 10 %: one failure each of the calls that matter most, two of them
    # after taking effect (a sent bucket whose answer is lost is sent again; a commit
    # whose answer is lost must be found committed, not committed twice).
    add_fault(cloud, "ots", dict(SERVICE_ERRORS["ots"], operation="GetStreamRecord", times=1, kind="error"))
    add_fault(cloud, "odps", {"operation": "UpsertData", "times": 1, "kind": "drop", "after_apply": True})
    add_fault(cloud, "odps", dict(SERVICE_ERRORS["odps"], operation="CommitUpsert", times=1, kind="error",
                                  after_apply=True))
    failed = 0
    try:
        for window in windows:
            # A run that gives up (retries exhausted) is run again, as a scheduler does.
            for _ in range(3):
                if mirror.run_window(cloud, window, check=False).returncode == 0:
                    break
                failed += 1
            else:
                pytest.fail("the window did not succeed in three runs with 10 %% faults")
        injected = {s: [f["operation"] for f in cloud.get(s, "/-/faults")["injected"]] for s in ("ots", "odps")}
    finally:
        clear_faults(cloud)
    assert "GetStreamRecord" in injected["ots"], injected
    assert {"UpsertData", "CommitUpsert"} <= set(injected["odps"]), injected
    rows = assert_equal_tables(cloud)
    print("faults injected %s; failed runs %d; %d rows equal" % (injected, failed, rows))
