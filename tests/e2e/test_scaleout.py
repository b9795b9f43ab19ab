"""The scale-out simulation (issue 20): a 4-shard window of each pipeline planned with
`streamport plan`, its four tasks run as separate `streamport task` processes in their
own working directories that share only the plan location in localcloud OSS, with two
indexes killed and retried, one index run by two processes at once, 10 % of all service
requests failing, and `streamport commit` killed once, then run until it succeeds and
once more. The committed output must equal what a single-machine `streamport run` of
the same window committed, exactly; no upload of a losing or killed attempt is left."""

import collections

import expected_rows as er
import pipelines
import scaleout
from checks import first_difference

FAULT_RATE = 0.1


def oss_output(cloud, window):
    return pipelines.oss_objects(cloud, pipelines.oss_prefix(window))


def odps_output(cloud, window):
    return {p: sorted(rows, key=pipelines.sort_key) for p, rows in pipelines.odps_rows(cloud, window).items()}


def prepare(cloud, tmp_path, seed):
    window = pipelines.Window()
    scaleout.four_shard_tables(cloud, window)
    pipelines.create_person_table(cloud)
    log = tmp_path / "ops.jsonl"
    pipelines.run_workload(cloud, log, window, changes=200, outside=5, keys=50, seed=seed, reuse_tables=True)
    return window, er.read_log(str(log))


# What each pipeline's writer is called, and its commit's service operation.
WRITERS = {"oss": ("writer-oss", "oss", "CompleteMultipartUpload"), "odps": ("writer-odps", "odps", "CommitUpload")}


def simulate(cloud, tmp_path, job, params, window, seed, which):
    name = "%s-window" % which
    writer, service, commit_op = WRITERS[which]
    rng = scaleout.seeded(seed)
    sim = scaleout.Simulation(cloud, job, params, window, tmp_path / "pods", name)
    scaleout.service_faults(cloud, FAULT_RATE)
    try:
        planned = sim.plan()
        assert planned["exit_code"] == 0 and planned["tasks"] == 4, planned
        again = sim.plan()
        assert again["exit_code"] == 0 and "already holds the plan" in again["commit_detail"], again
        killed = set(rng.sample(range(4), 2))
        duplicate = rng.randrange(4)
        # Tasks long enough to be killed in the middle.
        scaleout.slow(cloud, "ots", "GetStreamRecord", 150)
        outcomes = sim.run_tasks(4, parallelism=4, rng=rng, writer=writer, kill=killed, duplicate=duplicate)
        assert any(k for _, _, k in outcomes), outcomes
        # Of the attempts of the duplicated index, one reported; another found it done.
        assert any("reported first" in e or "was already reported" in e for e in sim.stderr[duplicate])
        # A commit whose service commit takes effect but answers late: killed meanwhile.
        scaleout.slow(cloud, service, commit_op, 500, after_apply=True)
        commit_killed = sim.kill_commit_in_post(writer, rng)
        assert commit_killed
        code, first, stderr = sim.commit()
        assert code == 0 and first["committed"] == "all", (first, stderr[-3000:])
        code, second, _ = sim.commit()
        assert code == 0 and second["committed"] == "all", second
        assert second["commit_detail"].startswith("already committed"), second
        faults = scaleout.injected(cloud)
    finally:
        scaleout.clear_faults(cloud)
    reports = [sim.plan_doc("reports/%d.json" % i) for i in range(4)]
    assert [r["index"] for r in reports] == [0, 1, 2, 3]
    assert sim.plan_doc("commit.json")["state"] == "committed"
    print("%s: attempts (index, exit, killed) %s; duplicate index %d; commit killed: %s; %d faults injected"
          % (name, outcomes, duplicate, commit_killed, faults))
    assert faults > 0
    return sim


def test_scale_out_the_oss_pipeline(cloud, oss_bins, tmp_path):
    window, ops = prepare(cloud, tmp_path, 31)
    job = scaleout.oss_job(tmp_path)
    params = pipelines.oss_params(window)
    pipelines.run_engine(cloud, job, params, window)
    baseline = oss_output(cloud, window)
    assert len(baseline) == 4, sorted(baseline)
    want, _ = pipelines.expected_oss_records(ops, window)
    got = [r for text in baseline.values() for r in pipelines.split_csv_records(text)]
    assert collections.Counter(got) == collections.Counter(want), first_difference(sorted(got), sorted(want))
    scaleout.delete_objects(cloud, pipelines.oss_prefix(window))

    simulate(cloud, tmp_path, job, params, window, 31, "oss")
    committed = oss_output(cloud, window)
    assert sorted(committed) == sorted(baseline)
    for key in baseline:
        assert committed[key] == baseline[key], key
    assert scaleout.open_uploads(cloud, pipelines.oss_prefix(window)) == []


def test_scale_out_the_maxcompute_pipeline(cloud, odps_bins, tmp_path):
    window, ops = prepare(cloud, tmp_path, 32)
    job, params = pipelines.ODPS_JOB, pipelines.odps_params()
    pipelines.run_engine(cloud, job, params, window)
    baseline = odps_output(cloud, window)
    want = sorted(pipelines.expected_odps_rows(ops, window), key=pipelines.sort_key)
    assert baseline == {"pt=%s" % window.bizdate: want}
    scaleout.drop_partition(cloud, window)
    assert odps_output(cloud, window) == {}

    simulate(cloud, tmp_path, job, params, window, 32, "odps")
    committed = odps_output(cloud, window)
    assert committed == baseline, first_difference(committed.get("pt=%s" % window.bizdate, []), want)
