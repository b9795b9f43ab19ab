#!/usr/bin/env python3
"""Follow-mode latency on localcloud (`scripts/bench-follow`): the time from the SDK's
write call returning to the row being visible through oss2 (Stream → OSS CSV) or
pyodps (Stream → MaxCompute), while `streamport run JOB --follow` runs with
`--commit-interval` (default 5 s) and writer processes put `--rate` (default 5,000)
changes per second through the official `tablestore` SDK.

Each change is a PutRow (in BatchWriteRow calls of `--batch` rows) whose `name` cell
holds a unique token; a writer notes when each call returned. An observer polls the
output (OSS: listing and reading new objects under the job's prefix; MaxCompute: the
partition's new rows, read by row range) and notes when each token first became
visible. Latency = visible − returned; p50, p99 and max are reported per pipeline,
with the count of tokens seen, missing and seen twice (both must be 0).

The observer's poll interval (`--poll`, default 0.2 s) is part of the figure (on average
half of it). Usage: bench_follow.py [--seconds N] [--rate N] [--pipelines oss,odps]
(binaries from $STREAMPORT_BIN_DIR).
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import threading
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "examples" / "workload"))
sys.path.insert(0, str(HERE))

import follow  # noqa: E402
import pipelines  # noqa: E402


# ---- writer processes ------------------------------------------------------------------


def writer_main(args):
    """One writer process: `--rate` changes/s for `--seconds`, each a put of a unique
    token; prints one JSON line per call: [first token number, count, returned at]."""
    from tablestore import BatchWriteRowRequest, Condition, OTSClient, PutRowItem, Row, RowExistenceExpectation
    from tablestore import TableInBatchWriteRowItem
    info = json.loads(args.cloud)
    client = OTSClient(info["ots"]["endpoint"], info["access_key_id"], info["access_key_secret"],
                       info["ots"]["instance"])
    ignore = Condition(RowExistenceExpectation.IGNORE)
    n, t0 = 0, time.time()
    out = sys.stdout
    while time.time() - t0 < args.seconds:
        req = BatchWriteRowRequest()
        items = []
        for i in range(n, n + args.batch):
            key = "k%d-%05d" % (args.writer_id, i % args.keys)
            items.append(PutRowItem(Row([(args.pk, key)], [("name", "t%d-%d" % (args.writer_id, i))]), ignore))
        req.add(TableInBatchWriteRowItem(args.table, items))
        result = client.batch_write_row(req)
        returned = time.time()
        if not result.is_all_succeed():
            raise SystemExit("BatchWriteRow failed")
        out.write(json.dumps([n, args.batch, returned]) + "\n")
        n += args.batch
        ahead = n / args.rate - (time.time() - t0)
        if ahead > 0:
            time.sleep(ahead)
    out.flush()


# ---- observers ------------------------------------------------------------------------


class Observer(threading.Thread):
    def __init__(self, cloud, which, poll_s):
        super().__init__(daemon=True)
        self.cloud, self.which, self.poll_s = cloud, which, poll_s
        self.seen = {}  # token -> first time visible
        self.twice = 0
        self.halt = threading.Event()
        self.error = None

    def note(self, tokens, now):
        for t in tokens:
            if t in self.seen:
                self.twice += 1
            else:
                self.seen[t] = now

    def run(self):
        try:
            if self.which == "oss":
                self.poll_oss()
            else:
                self.poll_odps()
        except Exception as e:
            self.error = e

    def poll_oss(self):
        import oss2
        bucket = self.cloud.oss_bucket()
        known = set()
        while not self.halt.is_set():
            for o in oss2.ObjectIteratorV2(bucket, prefix=follow.OSS_FOLLOW_PREFIX):
                if o.key in known:
                    continue
                known.add(o.key)
                text = bucket.get_object(o.key).read().decode("utf-8")
                now = time.time()
                self.note([line.split(",", 1)[1] for line in text.splitlines() if line], now)
            self.halt.wait(self.poll_s)

    def poll_odps(self):
        table = follow.odps_table(self.cloud)
        start = 0
        while not self.halt.is_set():
            if table.exist_partition(follow.ODPS_PARTITION):
                with table.open_reader(partition=follow.ODPS_PARTITION, reopen=True) as reader:
                    count = reader.count
                    if count > start:
                        rows = list(reader[start:count])
                        now = time.time()
                        start = count
                        self.note([r["colvalue"] for r in rows if r["optype"] == "U"], now)
            self.halt.wait(self.poll_s)


def percentile(values, p):
    values = sorted(values)
    if not values:
        return None
    k = min(len(values) - 1, max(0, int(round(p / 100.0 * len(values) + 0.5)) - 1))
    return values[k]


def bench(cloud, which, args, tmp):
    table, pk = (pipelines.OSS_TABLE, pipelines.OSS_PK) if which == "oss" else (pipelines.ODPS_TABLE, pipelines.ODPS_PK)
    writer = follow.Writer(cloud, table, pk, tmp / ("ops-%s.jsonl" % which), seed=1)
    writer.create_table()
    if which == "oss":
        job = follow.oss_follow_job(tmp)
    else:
        pipelines.create_person_table(cloud)
        job = follow.odps_follow_job(tmp)
    job = unlimited(job)
    engine = follow.Follower(cloud, job, tmp, commit_interval=args.commit_interval)
    engine.start(start_from="oldest")
    # Following (one empty batch went by) before the clock starts.
    engine.wait_for(lambda: (engine.read_metrics() or {}).get("empty_batches", 0) >= 1, 120, "an empty batch")
    observer = Observer(cloud, which, args.poll)
    observer.start()
    per_writer = args.rate / args.writers
    procs = []
    for w in range(args.writers):
        cmd = [sys.executable, __file__, "writer", "--cloud", json.dumps(cloud.info), "--table", table, "--pk", pk,
               "--writer-id", str(w), "--rate", str(per_writer), "--seconds", str(args.seconds),
               "--batch", str(args.batch), "--keys", str(args.keys)]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True))
    returned = {}
    written_s = 0
    for w, p in enumerate(procs):
        out, _ = p.communicate()
        if p.returncode != 0:
            raise RuntimeError("writer %d exited %d" % (w, p.returncode))
        for line in out.splitlines():
            first, count, t = json.loads(line)
            for i in range(first, first + count):
                returned["t%d-%d" % (w, i)] = t
            written_s = max(written_s, t)
    deadline = time.time() + 120
    while len(observer.seen) < len(returned) and time.time() < deadline and observer.is_alive():
        time.sleep(0.5)
    observer.halt.set()
    observer.join()
    code = engine.terminate()
    if observer.error:
        raise observer.error
    metrics = engine.read_metrics() or {}
    lat = [observer.seen[t] - r for t, r in returned.items() if t in observer.seen]
    first_write = min(returned.values()) if returned else 0
    return {
        "pipeline": which, "commit_interval_s": args.commit_interval, "changes": len(returned),
        "write_rate_per_s": round(len(returned) / max(written_s - first_write, 1e-9)),
        "seen": len(observer.seen), "missing": len(set(returned) - set(observer.seen)),
        "seen_twice": observer.twice, "extra": len(set(observer.seen) - set(returned)),
        "latency_p50_s": round(percentile(lat, 50), 2) if lat else None,
        "latency_p99_s": round(percentile(lat, 99), 2) if lat else None,
        "latency_max_s": round(max(lat), 2) if lat else None,
        "batches_committed": metrics.get("batches_committed"), "engine_exit": code,
        "last_lag_ms": metrics.get("lag_ms"),
    }


def unlimited(job_path):
    """The job with its byte limit removed (as bench_pipelines.py does)."""
    import bench_pipelines
    out = job_path.parent / "unlimited"
    out.mkdir(exist_ok=True)
    return bench_pipelines.unthrottled(job_path, out)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["writer"]:
        p = argparse.ArgumentParser()
        for name in ("--cloud", "--table", "--pk"):
            p.add_argument(name, required=True)
        p.add_argument("--writer-id", type=int, required=True)
        p.add_argument("--rate", type=float, required=True)
        p.add_argument("--seconds", type=float, required=True)
        p.add_argument("--batch", type=int, required=True)
        p.add_argument("--keys", type=int, required=True)
        return writer_main(p.parse_args(argv[1:]))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=60, help="how long the writers write")
    p.add_argument("--rate", type=float, default=5000, help="changes per second, all writers together")
    p.add_argument("--writers", type=int, default=3, help="writer processes")
    p.add_argument("--batch", type=int, default=100, help="rows per BatchWriteRow call")
    p.add_argument("--keys", type=int, default=20000, help="distinct rows per writer")
    p.add_argument("--commit-interval", type=float, default=5)
    p.add_argument("--poll", type=float, default=0.2, help="the observer's poll interval (s)")
    p.add_argument("--pipelines", default="oss,odps")
    args = p.parse_args(argv)
    bins = pipelines.bin_dir()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench-follow-"))
    results = []
    for which in args.pipelines.split(","):
        cloud = pipelines.Localcloud(str(bins / "localcloud"))
        try:
            (tmp / which).mkdir()
            results.append(bench(cloud, which, args, tmp / which))
        finally:
            cloud.stop()
        print(json.dumps(results[-1]), flush=True)
    load = os.getloadavg()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=str(HERE), capture_output=True,
                            text=True).stdout.strip()
    print(json.dumps({"commit": commit, "results": results, "loadavg": [round(x, 1) for x in load],
                      "cpus": os.cpu_count()}, indent=1))


if __name__ == "__main__":
    main()
