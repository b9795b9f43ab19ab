"""Kill tests: for each pipeline, the engine is killed with SIGKILL at ten random moments
of a run of the window; after each kill (and once the plugin processes it left have
ended) the window is run again, and the output must equal the derived rows exactly:
nothing lost, nothing duplicated, no stray object, no committed partial block."""

import os
import random
import time

import pytest

import expected_rows as er
import pipelines
from checks import check_odps, check_oss

KILLS = 10


@pytest.fixture(scope="module", autouse=True)
def subreaper():
    pipelines.become_subreaper()


PIPELINES = {
    "oss": (pipelines.OSS_JOB, pipelines.oss_params, check_oss),
    "odps": (pipelines.ODPS_JOB, lambda window: pipelines.odps_params(), check_odps),
}


def kill_and_rerun(cloud, tmp_path, which, seed):
    job, params_of, check = PIPELINES[which]
    window = pipelines.Window()
    params = params_of(window)
    log = tmp_path / "ops.jsonl"
    pipelines.create_person_table(cloud)
    pipelines.run_workload(cloud, log, window, changes=60, outside=5, keys=20, seed=seed)
    ops = er.read_log(str(log))
    t0 = time.monotonic()
    pipelines.run_engine(cloud, job, params, window)
    full_s = time.monotonic() - t0
    check(cloud, ops, window)
    rng = random.Random(int(os.environ.get("KILL_SEED", seed)))
    moments = []
    # Ten moments at which the engine was still running; a draw that comes after the
    # run ended is kept in the record but not counted.
    while sum(1 for _, what, _ in moments if what == "killed") < KILLS:
        assert len(moments) < 4 * KILLS, "the engine finished before most kill moments: %s" % moments
        delay = rng.uniform(0, full_s)
        finished = pipelines.kill_engine_at(cloud, job, params, window, delay)
        left = pipelines.wait_orphans(exclude={cloud.pid})
        moments.append((round(delay, 3), "killed" if finished is None else "finished %s" % finished, left))
        pipelines.run_engine(cloud, job, params, window)
        check(cloud, ops, window)
    print("full run %.2fs; kill moments (s), outcome, processes left running: %s" % (full_s, moments))


def test_kill_the_oss_pipeline(cloud, oss_bins, tmp_path):
    kill_and_rerun(cloud, tmp_path, "oss", 21)


def test_kill_the_maxcompute_pipeline(cloud, odps_bins, tmp_path):
    kill_and_rerun(cloud, tmp_path, "odps", 22)
