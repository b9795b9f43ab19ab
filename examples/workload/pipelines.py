"""The two documented pipelines against localcloud, as building blocks for the demo
(`scripts/demo`) and the end-to-end tests (`tests/e2e`).

* `Localcloud`: starts `localcloud serve`, exports the environment the example
  data-source file reads (`examples/datasources.json`), drives the test routes.
* `Window`: a five-minute window as DataWorks schedules it: for a schedule time T
  (a multiple of five minutes), [T - 10 min, T - 5 min).
* `run_workload`: `ots_workload.py` placed in the window.
* `run_engine`: `engine run` of an example job with its variables.
* `oss_records` / `odps_rows`: the output, read back with the official SDKs (oss2,
  pyodps) and compared with what `expected_rows.py` derives from the workload log.
"""

import datetime
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
WORKSPACE = HERE.parents[1]
sys.path.insert(0, str(HERE))

import expected_rows  # noqa: E402

OSS_JOB = WORKSPACE / "examples" / "jobs" / "otsstream-to-oss.json"
PARQUET_JOB = WORKSPACE / "examples" / "jobs" / "otsstream-to-oss-parquet.json"
ODPS_JOB = WORKSPACE / "examples" / "jobs" / "otsstream-to-odps.json"
DATASOURCES = WORKSPACE / "examples" / "datasources.json"
OSS_TABLE, OSS_PK, OSS_COLUMNS = "users", "uid", ["uid", "name"]
PARQUET_COLUMNS = ["uid", "name", "age", "score", "active", "avatar"]
ODPS_TABLE, ODPS_PK = "person", "id"
PERSON_DDL = ("CREATE TABLE IF NOT EXISTS person (id STRING, colname STRING, version BIGINT, "
              "colvalue STRING, optype STRING, sequenceinfo STRING) PARTITIONED BY (pt STRING)")


def bin_dir():
    """Where the workspace binaries are: $STREAMPORT_BIN_DIR or <target>/debug."""
    explicit = os.environ.get("STREAMPORT_BIN_DIR")
    if explicit:
        return pathlib.Path(explicit)
    target = os.environ.get("CARGO_TARGET_DIR", str(WORKSPACE / "target"))
    return pathlib.Path(target) / "debug"


class Localcloud:
    def __init__(self, binary=None, data_dir=None, extra_args=()):
        binary = binary or str(bin_dir() / "localcloud")
        cmd = [binary, "serve"] + (["--data-dir", str(data_dir)] if data_dir else []) + list(extra_args)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        if not line:
            self.proc.kill()
            raise RuntimeError("localcloud serve exited before printing its endpoints")
        self.info = json.loads(line)

    @property
    def pid(self):
        return self.proc.pid

    def env(self):
        """The variables examples/datasources.json reads."""
        i = self.info
        return {
            "LOCALCLOUD_OTS_ENDPOINT": i["ots"]["endpoint"],
            "LOCALCLOUD_OSS_ENDPOINT": i["oss"]["endpoint"],
            "LOCALCLOUD_ODPS_SERVER": i["odps"]["service_endpoint"],
            "LOCALCLOUD_ODPS_TUNNEL": i["odps"]["tunnel_endpoint"],
            "LOCALCLOUD_ACCESS_KEY_ID": i["access_key_id"],
            "LOCALCLOUD_ACCESS_KEY_SECRET": i["access_key_secret"],
        }

    def get(self, service, path):
        import urllib.request
        with urllib.request.urlopen(self.info[service]["endpoint"] + path, timeout=30) as r:
            return json.loads(r.read())

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    # ---- clients (official SDKs) ----

    def oss_bucket(self):
        import oss2
        i = self.info
        auth = oss2.Auth(i["access_key_id"], i["access_key_secret"])
        return oss2.Bucket(auth, i["oss"]["endpoint"], i["oss"]["bucket"])

    def odps(self):
        from odps import ODPS
        i = self.info
        return ODPS(i["access_key_id"], i["access_key_secret"], i["odps"]["project"],
                    endpoint=i["odps"]["service_endpoint"])


class Window:
    """DataWorks' five-minute window for schedule time `schedule_s` (epoch seconds):
    start_time = $[yyyymmddhh24miss-10/24/60], end_time = $[yyyymmddhh24miss-5/24/60]."""

    def __init__(self, schedule_s=None):
        if schedule_s is None:
            schedule_s = int(time.time()) // 300 * 300
        self.schedule_s = schedule_s
        self.start_ms = (schedule_s - 600) * 1000
        self.end_ms = (schedule_s - 300) * 1000

    def local(self, epoch_s, fmt="%Y%m%d%H%M%S"):
        return time.strftime(fmt, time.localtime(epoch_s))

    @property
    def schedule_time(self):
        """--schedule-time, in the machine's zone (the engine's default zone)."""
        return self.local(self.schedule_s)

    @property
    def bizdate(self):
        """${bdp.system.bizdate}: the day before the schedule time."""
        return self.local(self.schedule_s - 86400, "%Y%m%d")


def run_workload(cloud, log_path, window, changes=300, outside=10, keys=50, seed=1,
                 split_after=None, bulk=False, python=sys.executable, reuse_tables=False):
    ots = cloud.info["ots"]["endpoint"]
    cmd = [python, str(HERE / "ots_workload.py"), "--endpoint", ots, "--instance", cloud.info["ots"]["instance"],
           "--access-key-id", cloud.info["access_key_id"], "--access-key-secret", cloud.info["access_key_secret"],
           "--table", "%s=%s" % (OSS_TABLE, OSS_PK), "--table", "%s=%s" % (ODPS_TABLE, ODPS_PK),
           "--changes", str(changes), "--outside", str(outside), "--keys", str(keys), "--seed", str(seed),
           "--log", str(log_path), "--localcloud", ots,
           "--window-start-ms", str(window.start_ms), "--window-end-ms", str(window.end_ms)]
    if split_after is not None:
        cmd += ["--split-after", str(split_after)]
    if bulk:
        cmd.append("--bulk")
    if reuse_tables:
        cmd.append("--reuse-tables")
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def create_person_table(cloud):
    cloud.odps().execute_sql(PERSON_DDL)


def oss_params(window):
    return {"start_time": str(window.start_ms), "end_time": str(window.end_ms)}


def odps_params():
    return {"startTime": "$[yyyymmddhh24miss-10/24/60]", "endTime": "$[yyyymmddhh24miss-5/24/60]"}


def engine_command(job, params, window, summary=None, extra=()):
    cmd = [str(bin_dir() / "engine"), "run", str(job), "--datasources", str(DATASOURCES),
           "--schedule-time", window.schedule_time, "--plugin-dir", str(bin_dir())]
    for k, v in params.items():
        cmd += ["-p", "%s=%s" % (k, v)]
    if summary:
        cmd += ["--summary-json", str(summary)]
    return cmd + list(extra)


def run_engine(cloud, job, params, window, summary=None, check=True, quiet=True, extra=()):
    env = dict(os.environ, **cloud.env())
    out = subprocess.DEVNULL if quiet else None
    proc = subprocess.run(engine_command(job, params, window, summary, extra), env=env,
                          stdout=out, stderr=subprocess.PIPE if quiet else None, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError("engine run %s exited %d:\n%s" % (job.name, proc.returncode, (proc.stderr or "")[-4000:]))
    return proc


# ---- reading the output back -----------------------------------------------------


def oss_prefix(window):
    return "tablestore/%s/%d" % (OSS_TABLE, window.start_ms)


def oss_objects(cloud, prefix=""):
    import oss2
    bucket = cloud.oss_bucket()
    return {o.key: bucket.get_object(o.key).read().decode("utf-8")
            for o in oss2.ObjectIteratorV2(bucket, prefix=prefix)}


def parquet_prefix(window):
    """Where the Parquet job writes: its `object` rendered with the window's start in the
    job's (here the machine's) zone."""
    start_s = window.start_ms // 1000
    return "datalake/%s/dt=%s/hour=%s/part" % (
        OSS_TABLE, window.local(start_s, "%Y%m%d"), window.local(start_s, "%H"))


def parquet_objects(cloud, prefix):
    """{key: bytes} of the objects under prefix."""
    import oss2
    bucket = cloud.oss_bucket()
    return {o.key: bucket.get_object(o.key).read() for o in oss2.ObjectIteratorV2(bucket, prefix=prefix)}


def parquet_table(data):
    """A Parquet object's table (pyarrow)."""
    import io

    import pyarrow.parquet as pq
    return pq.read_table(io.BytesIO(data))


def expected_parquet_rows(ops, window):
    return expected_rows.single_version_rows(ops, OSS_TABLE, window.start_ms, window.end_ms, PARQUET_COLUMNS)


def split_csv_records(text):
    """Cuts CSV text into records (each with its line end), newlines inside quotes kept."""
    out, start, quoted = [], 0, False
    for i, c in enumerate(text):
        if c == '"':
            quoted = not quoted
        elif c == "\n" and not quoted:
            out.append(text[start:i + 1])
            start = i + 1
    if start < len(text):
        out.append(text[start:])
    return out


def expected_oss_records(ops, window):
    rows = expected_rows.single_version_rows(ops, OSS_TABLE, window.start_ms, window.end_ms, OSS_COLUMNS)
    return [expected_rows.csv_line([expected_rows.datax_text(v, "null") for v in row], **expected_rows.STREAMPORT_CSV)
            for row in rows], rows


def odps_rows(cloud, window):
    """Every committed row of person, per partition spec: {"pt=…": [row, …]}."""
    table = cloud.odps().get_table(ODPS_TABLE)
    out = {}
    for part in table.partitions:
        spec = str(part.partition_spec).replace("'", "")
        with table.open_reader(partition=part.partition_spec) as reader:
            out[spec] = [[r[c] for c in ("id", "colname", "version", "colvalue", "optype", "sequenceinfo")]
                         for r in reader]
    return out


def expected_odps_rows(ops, window):
    return expected_rows.odps_person_rows(ops, ODPS_TABLE, window.start_ms, window.end_ms)


def sort_key(row):
    return json.dumps(row, default=str, ensure_ascii=False)


# ---- killing the engine ---------------------------------------------------------


def become_subreaper():
    """Orphaned plugin processes of a killed engine are re-parented to this process, so
    a test can wait for them (Linux PR_SET_CHILD_SUBREAPER)."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(36, 1, 0, 0, 0)


def children_of(pid):
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = pathlib.Path("/proc", entry, "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid …; comm may hold spaces and parentheses.
        rest = stat[stat.rindex(")") + 2:].split()
        if int(rest[1]) == pid:
            name = stat[stat.index("(") + 1:stat.rindex(")")]
            out.append((int(entry), name, rest[0]))
    return out


def wait_orphans(exclude, timeout_s=60):
    """Waits until this process has no children but `exclude`; reaps them. Returns the
    names of the processes that had to be waited for."""
    deadline = time.time() + timeout_s
    seen = set()
    while True:
        live = []
        for pid, name, state in children_of(os.getpid()):
            if pid in exclude:
                continue
            seen.add(name)
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                continue
            if not done and state != "Z":
                live.append((pid, name))
        if not live:
            return sorted(seen)
        if time.time() > deadline:
            raise RuntimeError("processes left by the killed engine still run after %ds: %s" % (timeout_s, live))
        time.sleep(0.05)


def kill_engine_at(cloud, job, params, window, delay_s):
    """Starts the engine and SIGKILLs it after `delay_s` seconds (if still running)."""
    env = dict(os.environ, **cloud.env())
    proc = subprocess.Popen(engine_command(job, params, window), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=delay_s)
        return proc.returncode
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return None


def now_utc():
    return datetime.datetime.now(datetime.timezone.utc)
