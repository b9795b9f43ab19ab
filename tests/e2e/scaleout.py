"""Building blocks of the scale-out simulation (test_scaleout.py, bench_scaleout.py):
what Kubernetes does with an Indexed Job, done with local processes.

* `four_shard_tables`: the pipelines' tables with four independent stream shards (the
  table was split long ago; the parent shards have passed the stream's retention);
* `Simulation`: `streamport plan`, then every index as its own `streamport task`
  process in its own working directory (sharing only the plan location in localcloud
  OSS), some killed and retried (backoffLimitPerIndex), one run twice at once, then
  `streamport commit` (killed once, run again, and once more after it succeeded).
"""

import json
import os
import random
import signal
import subprocess
import time
import urllib.request

import killmatrix
import pipelines

HOURS_MS = 3600 * 1000
SPLIT_POINTS = ("u00025", "u00012", "u00037")


def _post(endpoint, path, body):
    req = urllib.request.Request(endpoint.rstrip("/") + path, data=json.dumps(body).encode(),
                                 method="POST", headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


def four_shard_tables(cloud, window):
    """Creates users and person with their stream on a clock 25 hours before the window
    and splits each into four shards there: by the window the parents are past the
    24-hour retention, so the four shards are independent (four tasks)."""
    import ots_stream_api
    import ots_workload
    from tablestore import OTSClient
    info = cloud.info
    ots = info["ots"]["endpoint"]
    clock = ots_workload.Clock(ots)
    client = OTSClient(ots, info["access_key_id"], info["access_key_secret"], info["ots"]["instance"])
    clock.set(window.start_ms - 25 * HOURS_MS)
    try:
        for table, pk in ((pipelines.OSS_TABLE, pipelines.OSS_PK), (pipelines.ODPS_TABLE, pipelines.ODPS_PK)):
            ots_stream_api.create_stream_table(client, table, [(pk, "STRING")])
            low, high = _post(ots, "/-/ots/split", {"table": table, "split_point": SPLIT_POINTS[0]})["children"]
            _post(ots, "/-/ots/split", {"table": table, "shard_id": low, "split_point": SPLIT_POINTS[1]})
            _post(ots, "/-/ots/split", {"table": table, "shard_id": high, "split_point": SPLIT_POINTS[2]})
    finally:
        clock.reset()


def oss_job(tmp_path, tasks=4):
    """The OSS example job with `concurrent` raised to `tasks` (one task per shard)."""
    text = pipelines.OSS_JOB.read_text()
    assert text.count('"concurrent": "1"') == 1
    job = tmp_path / "otsstream-to-oss.json"
    job.write_text(text.replace('"concurrent": "1"', '"concurrent": "%d"' % tasks))
    return job


def add_fault(cloud, service, rule):
    _post(cloud.info[service]["endpoint"], "/-/faults", rule)


def clear_faults(cloud):
    for service in ("ots", "oss", "odps"):
        req = urllib.request.Request(cloud.info[service]["endpoint"] + "/-/faults", method="DELETE")
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()


SERVICE_ERRORS = {
    "ots": {"status": 503, "code": "OTSServerBusy"},
    "oss": {"status": 503, "code": "ServiceUnavailable"},
    "odps": {"status": 500, "code": "InternalServerError"},
}


def service_faults(cloud, rate):
    """Every request of every service fails with a retryable error with probability `rate`."""
    for service, error in SERVICE_ERRORS.items():
        add_fault(cloud, service, dict(error, kind="error", rate=rate))


def slow(cloud, service, operation, ms, after_apply=False):
    """Every `operation` answers `ms` later (after taking effect, with `after_apply`)."""
    add_fault(cloud, service, {"operation": operation, "kind": "latency", "ms": ms, "after_apply": after_apply})


def injected(cloud):
    return sum(len(cloud.get(s, "/-/faults")["injected"]) for s in ("ots", "oss", "odps"))


class Simulation:
    """One job window planned at `plan_uri` and run as separate processes."""

    def __init__(self, cloud, job, params, window, workdir, plan_name):
        self.cloud, self.job, self.params, self.window = cloud, job, params, window
        self.workdir = workdir
        self.plan_uri = "oss://%s/plans/%s" % (cloud.info["oss"]["bucket"], plan_name)
        self.env = dict(os.environ, **cloud.env())
        self.pods = 0
        self.stderr = {}  # index -> the stderr of each attempt

    def _plan_args(self):
        return ["--plan", self.plan_uri, "--plan-datasource", "oss",
                "--datasources", str(pipelines.DATASOURCES), "--plugin-dir", str(pipelines.bin_dir())]

    def _pod_dir(self, name):
        self.pods += 1
        d = self.workdir / ("pod-%02d-%s" % (self.pods, name))
        d.mkdir(parents=True)
        return d

    def _run(self, args, name, check=True):
        cwd = self._pod_dir(name)
        summary = cwd / "summary.json"
        proc = subprocess.run([str(pipelines.bin_dir() / "streamport")] + args + ["--summary-json", str(summary)],
                              cwd=cwd, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if check and proc.returncode != 0:
            raise RuntimeError("streamport %s exited %d:\n%s" % (" ".join(args[:1]), proc.returncode, proc.stderr[-4000:]))
        return proc.returncode, json.loads(summary.read_text()), proc.stderr

    def plan(self, tasks=None):
        args = ["plan", str(self.job), "--schedule-time", self.window.schedule_time]
        for k, v in self.params.items():
            args += ["-p", "%s=%s" % (k, v)]
        args += ["--plan", self.plan_uri, "--plan-datasource", "oss", "--datasources", str(pipelines.DATASOURCES),
                 "--plugin-dir", str(pipelines.bin_dir())]
        if tasks:
            args += ["--tasks", str(tasks)]
        _, summary, _ = self._run(args, "plan")
        return summary

    def start_task(self, index):
        cwd = self._pod_dir("task%d" % index)
        env = dict(self.env, JOB_COMPLETION_INDEX=str(index))
        return subprocess.Popen([str(pipelines.bin_dir() / "streamport"), "task", "--summary-json", "summary.json"]
                                + self._plan_args(), cwd=cwd, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True), cwd

    def run_tasks(self, count, parallelism, rng, writer, kill=(), duplicate=None, backoff_limit=6):
        """Runs indexes 0..count-1, at most `parallelism` at once (a duplicate pod does
        not count). The first attempt of each index in `kill` is SIGKILLed at a random
        moment after its writer started, then retried in a new working directory;
        `duplicate` is started twice at once. Every index must end with exit 0 within
        `backoff_limit` retries. Returns (index, exit code, killed) per attempt."""
        pending = list(range(count))
        attempts = {i: 0 for i in range(count)}
        running = []  # [index, proc, kill_after or None, counts, kill_at]
        outcomes = []
        while pending or running:
            while pending and sum(1 for r in running if r[3]) < parallelism:
                i = pending.pop(0)
                attempts[i] += 1
                proc, _ = self.start_task(i)
                kill_after = rng.uniform(0.0, 0.3) if i in kill and attempts[i] == 1 else None
                running.append([i, proc, kill_after, True, None])
                if i == duplicate and attempts[i] == 1:
                    proc2, _ = self.start_task(i)
                    running.append([i, proc2, None, False, None])
            time.sleep(0.02)
            for entry in list(running):
                i, proc, kill_after, counts, kill_at = entry
                killed = False
                if kill_after is not None and proc.poll() is None:
                    if kill_at is None and killmatrix.step_running(proc.pid, writer, "write"):
                        entry[4] = kill_at = time.monotonic() + kill_after
                    if kill_at is not None and time.monotonic() >= kill_at:
                        proc.send_signal(signal.SIGKILL)
                        entry[2] = "killed"
                if proc.poll() is None:
                    continue
                killed = entry[2] == "killed"
                running.remove(entry)
                stderr = proc.stderr.read()
                proc.stderr.close()
                self.stderr.setdefault(i, []).append(stderr)
                outcomes.append((i, proc.returncode, killed))
                if proc.returncode != 0:
                    assert killed, "task %d failed (exit %d) without being killed:\n%s" % (
                        i, proc.returncode, stderr[-4000:])
                    assert attempts[i] <= backoff_limit, "task %d failed %d times" % (i, attempts[i])
                    pending.append(i)  # the retry: a new pod, a new working directory
        return outcomes

    def commit(self, check=True):
        return self._run(["commit"] + self._plan_args(), "commit", check=check)

    def kill_commit_in_post(self, writer, rng):
        """Starts `streamport commit` and SIGKILLs it at a random moment (within 0.3 s)
        after its writer's `post` started. Returns whether it was killed."""
        cwd = self._pod_dir("commit-killed")
        proc = subprocess.Popen([str(pipelines.bin_dir() / "streamport"), "commit"] + self._plan_args(),
                                cwd=cwd, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        kill_at = None
        while proc.poll() is None:
            if kill_at is None and killmatrix.step_running(proc.pid, writer, "post"):
                kill_at = time.monotonic() + rng.uniform(0.0, 0.3)
            if kill_at is not None and time.monotonic() >= kill_at:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                return True
            time.sleep(0.01)
        return False

    def plan_doc(self, name="plan.json"):
        bucket = self.cloud.oss_bucket()
        key = "plans/%s/%s" % (self.plan_uri.split("/plans/", 1)[1], name)
        return json.loads(bucket.get_object(key).read())


def open_uploads(cloud, prefix):
    import oss2
    return [(u.key, u.upload_id) for u in oss2.MultipartUploadIterator(cloud.oss_bucket(), prefix=prefix)]


def delete_objects(cloud, prefix):
    import oss2
    bucket = cloud.oss_bucket()
    keys = [o.key for o in oss2.ObjectIteratorV2(bucket, prefix=prefix)]
    if keys:
        bucket.batch_delete_objects(keys)


def drop_partition(cloud, window):
    cloud.odps().execute_sql("ALTER TABLE %s DROP PARTITION (pt='%s')" % (pipelines.ODPS_TABLE, window.bizdate))


def seeded(seed):
    return random.Random(int(os.environ.get("SCALEOUT_SEED", seed)))
