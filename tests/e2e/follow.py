"""Building blocks of the follow-mode tests (test_follow.py) and the latency benchmark
(bench_follow.py): a writer thread that keeps changing a Tablestore table through the
official `tablestore` SDK (puts, updates, deletes, BatchWriteRow batches, logged as
`ots_workload.py` logs them), the follow jobs derived from the two example jobs, an
engine run with `--follow` that can be SIGKILLed, SIGTERMed and restarted, shard splits
and merges through localcloud's control routes, and the output read back with oss2 and
pyodps next to the rows `expected_rows.py` derives from the writer's log.

Follow mode reads records as they are committed on the emulator's clock; the clock is
left at the wall time (offset 0) here, so record times are real times and the reader's
deadlines and lag mean what they say.
"""

import json
import os
import random
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request

import expected_rows as er
import ots_stream_api
import ots_workload
import pipelines

# Every record a follow job exports: no window.
ALL_START_MS, ALL_END_MS = 0, 2 ** 62
OSS_FOLLOW_PREFIX = "tablestore/users/follow/"
ODPS_PARTITION = "pt=follow"
ODPS_COLUMNS = ("id", "colname", "version", "colvalue", "optype", "sequenceinfo")


# ---- jobs --------------------------------------------------------------------------


def derive_job(source, replacements, path, drop_lines=()):
    lines = []
    for line in source.read_text().splitlines(keepends=True):
        if any(d in line for d in drop_lines):
            continue
        lines.append(line)
    text = "".join(lines)
    for old, new in replacements:
        assert old in text, "%s has no %r" % (source, old)
        text = text.replace(old, new)
    path.write_text(text)
    return path


def oss_follow_job(tmp_path, commit_interval=None):
    """The OSS example job as a follow job: no window keys, `append` (each batch adds
    its own objects under the prefix), object under `tablestore/users/follow/`."""
    setting = ('"setting": {"follow": {"commitIntervalSeconds": %s},' % commit_interval
               if commit_interval is not None else '"setting": {')
    return derive_job(pipelines.OSS_JOB, [
        ('"writeMode": "truncate"', '"writeMode": "append"'),
        ('"object": "tablestore/users/${start_time}"', '"object": "%sout"' % OSS_FOLLOW_PREFIX),
        ('"setting": {', setting),
    ], tmp_path / "oss-follow.json", drop_lines=('"startTimestampMillis"', '"endTimestampMillis"'))


def odps_follow_job(tmp_path, commit_interval=None):
    """The MaxCompute example job as a follow job: no window keys, append
    (`truncate: false`) into the fixed partition pt=follow, commit markers reclaimed after
    a day (`commitMarkerLifecycle`, as writer-odps advises for follow mode)."""
    setting = ('"Setting ":{"follow": {"commitIntervalSeconds": %s},' % commit_interval
               if commit_interval is not None else '"Setting ":{')
    return derive_job(pipelines.ODPS_JOB, [
        ('"truncate": true', '"truncate": false, "commitMarkerLifecycle": 1'),
        ('"partition": "pt=${bdp.system.bizdate}"', '"partition": "%s"' % ODPS_PARTITION),
        ('"Setting ":{', setting),
    ], tmp_path / "odps-follow.json", drop_lines=('"startTimeString"', '"endTimeString"'))


# ---- the writer ----------------------------------------------------------------------


class Writer(threading.Thread):
    """Keeps writing random changes (the workload's mix: puts, updates, deletes, some
    BatchWriteRow batches) to `table` at about `rate` changes per second until `stop()`,
    logging each one with the wall-clock times bracketing its commit. `on_written`
    (optional) is called with (entries, t_after_s) after each SDK call returned."""

    def __init__(self, cloud, table, pk, log_path, seed, rate=40.0, keys=40, chunk=4, on_written=None):
        super().__init__(daemon=True)
        i = cloud.info
        self.client = ots_workload.OTSClient(i["ots"]["endpoint"], i["access_key_id"], i["access_key_secret"],
                                             i["ots"]["instance"])
        self.cloud, self.table, self.pk = cloud, table, pk
        self.log_path, self.rate, self.chunk = log_path, rate, chunk
        self.rng = random.Random(seed)
        self.keys = keys
        self.on_written = on_written
        self.halt = threading.Event()
        self.error = None
        self.changes = 0

    def create_table(self):
        return ots_stream_api.create_stream_table(self.client, self.table, [(self.pk, "STRING")])

    def run(self):
        try:
            with open(self.log_path, "w", encoding="utf-8") as log:
                work = _LoggingWorkload(self.client, ots_workload.Clock(None), log, self.rng,
                                        [(self.table, self.pk)], self.keys, self.on_written)
                t0 = time.monotonic()
                while not self.halt.is_set():
                    work.run_phase("follow", self.chunk)
                    log.flush()
                    self.changes = work.seq
                    # Pace: `rate` changes per second on average.
                    ahead = work.seq / self.rate - (time.monotonic() - t0)
                    if ahead > 0:
                        self.halt.wait(ahead)
        except Exception as e:  # reported by stop()
            self.error = e

    def stop(self):
        self.halt.set()
        self.join(timeout=60)
        if self.error is not None:
            raise RuntimeError("the writer thread failed: %r" % (self.error,))
        return er.read_log(str(self.log_path))


class _LoggingWorkload(ots_workload.Workload):
    def __init__(self, client, clock, log, rng, tables, keys, on_written):
        super().__init__(client, clock, log, rng, tables, keys)
        self.on_written = on_written

    def apply(self, changes, phase):
        super().apply(changes, phase)
        if self.on_written:
            self.on_written(changes, time.time())


def control(cloud, route, body):
    """POSTs to a localcloud OTS control route (`/-/ots/split`, `/-/ots/merge`)."""
    req = urllib.request.Request(cloud.info["ots"]["endpoint"] + route, data=json.dumps(body).encode(),
                                 method="POST", headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as e:
        raise RuntimeError("%s %s: %s" % (route, body, e.read().decode(errors="replace")))


def split(cloud, table):
    return control(cloud, "/-/ots/split", {"table": table})


def merge(cloud, table):
    return control(cloud, "/-/ots/merge", {"table": table})


def backdate(cloud, table, ms):
    return control(cloud, "/-/ots/backdate", {"table": table, "ms": ms})


def shards(cloud, table):
    return cloud.get("ots", "/-/ots/tables/%s" % table)["stream"]["shards"]


# ---- the engine ------------------------------------------------------------------------


class Follower:
    """`streamport run JOB --follow` against the cloud; one process at a time."""

    def __init__(self, cloud, job, tmp_path, commit_interval=1, extra=()):
        self.cloud, self.job, self.tmp = cloud, job, tmp_path
        self.commit_interval, self.extra = commit_interval, list(extra)
        self.proc = None
        self.runs = 0
        self.metrics = tmp_path / "metrics.json"
        self.summary = tmp_path / "summary.json"

    def command(self, start_from=None, extra=()):
        binary = pipelines.bin_dir() / "streamport"
        if not binary.exists():
            binary = pipelines.bin_dir() / "engine"
        cmd = [str(binary), "run", str(self.job), "--datasources", str(pipelines.DATASOURCES),
               "--plugin-dir", str(pipelines.bin_dir()), "--follow",
               "--metrics-file", str(self.metrics), "--summary-json", str(self.summary)]
        if self.commit_interval is not None:
            cmd += ["--commit-interval", str(self.commit_interval)]
        if start_from:
            cmd += ["--from", str(start_from)]
        return cmd + self.extra + list(extra)

    def start(self, start_from=None, extra=()):
        assert self.proc is None or self.proc.poll() is not None
        self.runs += 1
        self.stderr_path = self.tmp / ("engine-%d.stderr" % self.runs)
        self.stderr = open(self.stderr_path, "w")
        for stale in (self.summary, self.metrics):
            if stale.exists():
                stale.unlink()
        env = dict(os.environ, **self.cloud.env())
        env.setdefault("RUST_LOG", "info")
        self.proc = subprocess.Popen(self.command(start_from, extra), env=env, stdout=subprocess.DEVNULL,
                                     stderr=self.stderr)
        return self.proc

    def run(self, start_from=None, extra=(), timeout=60):
        """Runs to completion (for the error cases); returns (exit code, stderr)."""
        self.start(start_from, extra)
        try:
            self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.stderr.close()
        return self.proc.returncode, self.stderr_path.read_text()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """SIGKILL; then waits until every process the engine left has ended."""
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.stderr.close()
        return pipelines.wait_orphans(exclude={self.cloud.pid})

    def _frozen_step(self, plugin, step, timeout):
        """Waits until `<plugin> <step>` runs below the engine and SIGSTOPs it where it
        was seen (a step of a few milliseconds could otherwise finish before the next
        move); its pid, or None if it did not come within `timeout` s. The parent-death
        signal is SIGKILL, which ends a stopped process too."""
        import killmatrix
        deadline = time.monotonic() + timeout
        while self.alive() and time.monotonic() < deadline:
            pid = killmatrix.step_pid(self.proc.pid, plugin, step)
            if pid is not None:
                _signal(pid, signal.SIGSTOP)
                return pid
            time.sleep(0.005)
        return None

    def kill_in_step(self, plugin, step, timeout=30):
        """SIGKILLs the engine as soon as `<plugin> <step>` is seen running below it (e.g.
        the writer's `post`: the batch's commit); returns whether it was seen."""
        seen = self._frozen_step(plugin, step, timeout) is not None
        self.kill()
        return seen

    def kill_in_reader_post_before_checkpoint(self, cloud, writer, timeout=30):
        """SIGKILLs the engine inside the reader's `post` of a batch the writer committed,
        before that post stored the batch's checkpoint; returns whether it got there.

        The writer's `post` is frozen as soon as it is seen, `PutRow` is refused as busy
        (before it applies: nothing lands late) and the writer resumes: the reader's
        `post` that follows retries its checkpoint PutRow with backoff, and the kill
        lands there, however fast the post is. The workload's own PutRow calls are
        refused meanwhile, and the SDK retries them."""
        import killmatrix
        pid = self._frozen_step(writer, "post", timeout)
        if pid is None:
            self.kill()
            return False
        killmatrix.add_fault(cloud, "ots", {"operation": "PutRow", "kind": "error", "status": 503,
                                            "code": "OTSServerBusy"})
        try:
            _signal(pid, signal.SIGCONT)
            return self.kill_in_step("reader-otsstream", "post", timeout=timeout)
        finally:
            killmatrix.clear_faults(cloud)

    def terminate(self, timeout=60):
        """SIGTERM; returns the exit code (the current batch is finished and committed)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("the engine did not stop within %ds of SIGTERM:\n%s" % (timeout, self.log_tail()))
        self.stderr.close()
        return self.proc.returncode

    def log_tail(self, n=4000):
        try:
            return self.stderr_path.read_text()[-n:]
        except (OSError, AttributeError):
            return ""

    def read_metrics(self):
        try:
            return json.loads(self.metrics.read_text())
        except (OSError, ValueError):
            return None

    def batches_committed(self):
        m = self.read_metrics() or {}
        return int(m.get("batches_committed") or 0)

    def wait_for(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            if not self.alive():
                raise AssertionError("the engine exited %s while waiting for %s:\n%s" % (
                    self.proc.returncode, what, self.log_tail()))
            time.sleep(0.1)
        raise AssertionError("no %s within %ds:\n%s" % (what, timeout, self.log_tail()))


# ---- output and expected rows -------------------------------------------------------


# The shipped follow examples (examples/jobs/*-follow.json).
OSS_EXAMPLE = pipelines.WORKSPACE / "examples" / "jobs" / "otsstream-to-oss-follow.json"
ODPS_EXAMPLE = pipelines.WORKSPACE / "examples" / "jobs" / "otsstream-to-odps-follow.json"
OSS_EXAMPLE_OBJECT = "tablestore/users-follow/part"


def oss_follow_records(cloud, object_name=OSS_FOLLOW_PREFIX + "out"):
    """(records of every object under `object_name`'s folder, names not of the form
    `<object_name>__<32 hex>`) for a follow job whose writer `object` is `object_name`."""
    import oss2
    bucket = cloud.oss_bucket()
    folder = object_name.rsplit("/", 1)[0] + "/"
    objects = {o.key: bucket.get_object(o.key).read().decode("utf-8")
               for o in oss2.ObjectIteratorV2(bucket, prefix=folder)}
    records = []
    for text in objects.values():
        records += pipelines.split_csv_records(text)
    pattern = re.compile(re.escape(object_name) + r"__[0-9a-f]{32}")
    return records, sorted(k for k in objects if not pattern.fullmatch(k))


def expected_oss_records(ops):
    rows = er.single_version_rows(ops, pipelines.OSS_TABLE, ALL_START_MS, ALL_END_MS, pipelines.OSS_COLUMNS)
    return [er.csv_line([er.datax_text(v, "null") for v in row], **er.STREAMPORT_CSV) for row in rows]


def odps_table(cloud):
    return cloud.odps().get_table(pipelines.ODPS_TABLE)


def odps_follow_rows(cloud, start=0):
    """The rows of person/pt=follow from row `start` on (none if the partition is absent)."""
    table = odps_table(cloud)
    if not table.exist_partition(ODPS_PARTITION):
        return []
    with table.open_reader(partition=ODPS_PARTITION, reopen=True) as reader:
        if start >= reader.count:
            return []
        return [[r[c] for c in ODPS_COLUMNS] for r in reader[start:reader.count]]


def odps_follow_count(cloud):
    table = odps_table(cloud)
    if not table.exist_partition(ODPS_PARTITION):
        return 0
    with table.open_reader(partition=ODPS_PARTITION, reopen=True) as reader:
        return reader.count


def expected_odps_rows(ops):
    return er.odps_person_rows(ops, pipelines.ODPS_TABLE, ALL_START_MS, ALL_END_MS)


def difference(got, want):
    """A short account of how two multisets of rows differ."""
    import collections
    g, w = collections.Counter(map(_key, got)), collections.Counter(map(_key, want))
    missing, extra = w - g, g - w
    return "%d rows, want %d; %d missing (e.g. %s), %d extra (e.g. %s)" % (
        len(got), len(want), sum(missing.values()), list(missing)[:3], sum(extra.values()), list(extra)[:3])


def _key(row):
    return row if isinstance(row, str) else pipelines.sort_key(row)


def same_rows(got, want):
    import collections
    return collections.Counter(map(_key, got)) == collections.Counter(map(_key, want))


def _signal(pid, sig):
    """Sends `sig` to `pid`, which may have ended already."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
