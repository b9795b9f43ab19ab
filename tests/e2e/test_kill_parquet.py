"""Kill test of the Stream -> OSS Parquet pipeline (examples/jobs/otsstream-to-oss-parquet.json):
the engine is SIGKILLed at ten random moments of a run of the window. After each kill
the window's prefix shows nothing, or (a kill after `post` completed) exactly the whole
file; the re-run then gives exactly the derived rows under the same name."""

import os
import random
import time

import expected_rows as er
import pipelines
import pytest
from checks import check_oss_parquet

KILLS = 10


@pytest.fixture(scope="module", autouse=True)
def subreaper():
    pipelines.become_subreaper()


def test_kill_the_oss_parquet_pipeline(cloud, oss_bins, tmp_path):
    window = pipelines.Window()
    params = pipelines.oss_params(window)
    log = tmp_path / "ops.jsonl"
    pipelines.run_workload(cloud, log, window, changes=60, outside=5, keys=20, seed=29)
    ops = er.read_log(str(log))
    t0 = time.monotonic()
    pipelines.run_engine(cloud, pipelines.PARQUET_JOB, params, window)
    full_s = time.monotonic() - t0
    check_oss_parquet(cloud, ops, window)
    complete = pipelines.parquet_objects(cloud, "datalake/")
    # The run wrote over nothing this time: start the kills from an empty prefix.
    bucket = cloud.oss_bucket()
    for key in complete:
        bucket.delete_object(key)
    rng = random.Random(int(os.environ.get("KILL_SEED", 29)))
    moments = []
    while sum(1 for _, what, _ in moments if what == "killed") < KILLS:
        assert len(moments) < 4 * KILLS, "the engine finished before most kill moments: %s" % moments
        delay = rng.uniform(0, full_s)
        finished = pipelines.kill_engine_at(cloud, pipelines.PARQUET_JOB, params, window, delay)
        left = pipelines.wait_orphans(exclude={cloud.pid})
        visible = pipelines.parquet_objects(cloud, "datalake/")
        # All or nothing: no partial file, never a second name.
        assert visible in ({}, complete), sorted(visible)
        moments.append((round(delay, 3), "killed" if finished is None else "finished %s" % finished,
                        "visible" if visible else "nothing visible"))
        pipelines.run_engine(cloud, pipelines.PARQUET_JOB, params, window)
        check_oss_parquet(cloud, ops, window)
        # Same name, same bytes as the first complete run.
        assert pipelines.parquet_objects(cloud, "datalake/") == complete
        for key in complete:
            bucket.delete_object(key)
    print("full run %.2fs; kill moments (s), outcome, after the kill: %s" % (full_s, moments))
