"""Kill and fault test of time-partitioned OSS paths through the whole pipeline: the
Stream → OSS job with its `object` templated by the window's hour (writer-oss
`windowTime: "${start_time}"`, `writeMode: truncate` scoped to that partition). The
engine is SIGKILLed at four random moments of a run of the window; after each kill
(once the plugin processes it left have ended) the window runs again, and the bucket
must hold exactly one object under the window's rendered partition, named as the first
run named it, with exactly the derived records. Then two runs with 10 % of the OSS
requests failing (5xx and dropped connections) must leave the same object. Last, three
signals during the writer's `post` (kill-matrix cases on a partitioned target) must
keep the commit contract."""

import os
import random
import re
import signal
import time

import pytest

import expected_rows as er
import killmatrix as km
import pipelines
from checks import first_difference

KILLS = 4


@pytest.fixture(scope="module", autouse=True)
def subreaper():
    pipelines.become_subreaper()


def partition(window):
    """The window's partition: its start in the engine's zone (the machine's here)."""
    start_s = window.start_ms // 1000
    return "tablestore/users/%d/dt=%s/hour=%s/part" % (
        window.start_ms, window.local(start_s, "%Y%m%d"), window.local(start_s, "%H"))


def check(cloud, window, want, names=None):
    everything = pipelines.oss_objects(cloud, prefix="tablestore/users/%d/" % window.start_ms)
    keys = sorted(everything)
    assert len(keys) == 1 and re.fullmatch(re.escape(partition(window)) + r"__[0-9a-f]{32}", keys[0]), keys
    if names is not None:
        assert keys == names
    uploads = [u["key"] for u in cloud.get("oss", "/-/oss/uploads")["uploads"]
               if u["key"].startswith("tablestore/users/%d/" % window.start_ms)]
    assert uploads == [], uploads
    got = pipelines.split_csv_records(everything[keys[0]])
    assert got == want, first_difference(got, want)
    return keys


def test_kill_and_faults_on_the_partitioned_oss_pipeline(cloud, oss_bins, tmp_path):
    job = km.derive_job(pipelines.OSS_JOB, [(
        '"object": "tablestore/users/${start_time}"',
        '"object": "tablestore/users/${start_time}/dt=$yyyy$MM$dd/hour=$HH/part", '
        '"windowTime": "${start_time}"',
    )], tmp_path / "oss-partitioned.json")
    window = pipelines.Window()
    params = pipelines.oss_params(window)
    log = tmp_path / "ops.jsonl"
    pipelines.create_person_table(cloud)
    pipelines.run_workload(cloud, log, window, changes=60, outside=5, keys=20, seed=31)
    want, _ = pipelines.expected_oss_records(er.read_log(str(log)), window)
    assert want
    # Another partition of the same table, which the window's truncate must not touch.
    other = "tablestore/users/%d/dt=19700101/hour=00/part__other" % window.start_ms
    cloud.oss_bucket().put_object(other, b"other\n")
    t0 = time.monotonic()
    pipelines.run_engine(cloud, job, params, window)
    full_s = time.monotonic() - t0
    assert cloud.oss_bucket().get_object(other).read() == b"other\n"
    cloud.oss_bucket().delete_object(other)
    names = check(cloud, window, want)
    rng = random.Random(int(os.environ.get("KILL_SEED", 31)))
    moments = []
    while sum(1 for _, what, _ in moments if what == "killed") < KILLS:
        assert len(moments) < 4 * KILLS, "the engine finished before most kill moments: %s" % moments
        delay = rng.uniform(0, full_s)
        finished = pipelines.kill_engine_at(cloud, job, params, window, delay)
        left = pipelines.wait_orphans(exclude={cloud.pid})
        moments.append((round(delay, 3), "killed" if finished is None else "finished %s" % finished, left))
        pipelines.run_engine(cloud, job, params, window)
        check(cloud, window, want, names)
    print("full run %.2fs; kill moments (s), outcome, processes left running: %s" % (full_s, moments))
    injected = []
    for _ in range(2):
        km.add_fault(cloud, "oss", {"rate": 0.05, "kind": "error", "status": 503, "code": "ServiceUnavailable"})
        km.add_fault(cloud, "oss", {"rate": 0.05, "kind": "drop"})
        # A run has few OSS requests: make sure a part upload and a Complete that takes
        # effect but loses its answer are among the failures.
        km.add_fault(cloud, "oss", {"operation": "UploadPart", "times": 1, "kind": "error",
                                    "status": 500, "code": "InternalError"})
        km.add_fault(cloud, "oss", {"operation": "CompleteMultipartUpload", "times": 1,
                                    "after_apply": True, "kind": "drop"})
        try:
            pipelines.run_engine(cloud, job, params, window)
            injected += km.injected(cloud, "oss")
        finally:
            km.clear_faults(cloud)
        check(cloud, window, want, names)
    print("faults injected: %s" % injected)
    assert "UploadPart" in injected and "CompleteMultipartUpload" in injected, injected


class PartitionedOssTarget(km.OssTarget):
    """The kill matrix's OSS target with the case's objects under the window's
    partition: `<case>/dt=…/hour=…/out`, truncate scoped to it."""

    def __init__(self, cloud, window, ops, mode, tmp_path):
        super().__init__(cloud, window, ops, mode, tmp_path)
        self.job = km.derive_job(self.job, [(
            '"object": "tablestore/users/${start_time}/${case}/out"',
            '"object": "tablestore/users/${start_time}/${case}/dt=$$yyyy$$MM$$dd/hour=$$HH/out", '
            '"windowTime": "${start_time}"',
        )], tmp_path / ("oss-partitioned-%s.json" % mode))

    def object(self, case):
        start_s = self.window.start_ms // 1000
        return "tablestore/users/%d/%s/dt=%s/hour=%s/out" % (
            self.window.start_ms, case, self.window.local(start_s, "%Y%m%d"), self.window.local(start_s, "%H"))


def test_signals_during_the_partitioned_commit_keep_the_contract(cloud, oss_bins, tmp_path):
    """A first SIGINT while the writer's post completes the partition's object does not
    stop it; a second SIGTERM (also when the Complete took effect and only its answer is
    slow) stops it, and abort, given the task reports, says what is visible: the engine's
    `committed` must match the bucket, and a re-run must give exactly the new output."""
    window = pipelines.Window()
    log = tmp_path / "ops.jsonl"
    pipelines.create_person_table(cloud)
    pipelines.run_workload(cloud, log, window, changes=30, outside=5, keys=10, seed=32)
    target = PartitionedOssTarget(cloud, window, er.read_log(str(log)), "truncate", tmp_path)
    lines, failures = [], []
    for case in [km.Case("p1", "post", signal.SIGINT, 0.3), km.Case("p2", "post2", signal.SIGTERM, 0.3),
                 km.Case("p3", "post2-applied", signal.SIGTERM, 0.3)]:
        r = km.run_case(target, case, tmp_path)
        problems = km.verdict(r) + km.rerun(target, case.name, tmp_path)
        lines.append(km.describe(r))
        if problems:
            failures.append((case.label(), problems))
    report = "\n".join(lines)
    print(report)
    assert not failures, "%s\n%s" % (failures, report)
