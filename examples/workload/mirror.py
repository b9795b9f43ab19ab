"""The mirror pipeline (examples/jobs/otsstream-to-odps-mirror.json) against localcloud,
as building blocks for the demo and the end-to-end tests.

* `create_tables`: the Tablestore table `mirror` (id STRING, n INTEGER; one version
  kept; Stream enabled) and the MaxCompute Delta table `mirror` (same key, partial-column
  updates enabled).
* `run_workload`: random puts (some columns), updates (put cells and column deletes),
  row deletes and BatchWriteRow batches through the official `tablestore` SDK, placed in
  consecutive five-minute windows by moving the emulator's clock.
* `ots_table` / `odps_table`: both tables read back with the official SDKs (tablestore,
  pyodps) as {(id, n): {column: value}} (absent/NULL columns left out), for comparing
  row for row, cell for cell.
"""

import os
import pathlib
import random
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import ots_stream_api  # noqa: E402
from ots_workload import Clock  # noqa: E402
import pipelines  # noqa: E402

MIRROR_JOB = pipelines.WORKSPACE / "examples" / "jobs" / "otsstream-to-odps-mirror.json"
TABLE = "mirror"
COLUMNS = {
    "name": lambda r: r.choice(["ann", "bo", "chen", "dai", "emile", "", "x" * 40]),
    "age": lambda r: r.randrange(-5, 120),
    "score": lambda r: round(r.uniform(-1000, 1000), 3),
    "active": lambda r: r.random() < 0.5,
    "avatar": lambda r: bytearray(r.randrange(256) for _ in range(r.randrange(0, 12))),
}
MIRROR_DDL = (
    "CREATE TABLE IF NOT EXISTS mirror (id STRING NOT NULL, n BIGINT NOT NULL, name STRING, age BIGINT, "
    "score DOUBLE, active BOOLEAN, avatar BINARY, PRIMARY KEY (id, n)) "
    'TBLPROPERTIES ("transactional"="true", "acid.partial.fields.update.enable"="true", "write.bucket.num"="4")'
)


def windows(count):
    """`count` consecutive five-minute windows, all ended by now, oldest first."""
    last = int(time.time()) // 300 * 300
    return [pipelines.Window(last - 300 * (count - 1 - i)) for i in range(count)]


def ots_client(cloud):
    from tablestore import OTSClient
    i = cloud.info
    return OTSClient(i["ots"]["endpoint"], i["access_key_id"], i["access_key_secret"], i["ots"]["instance"])


def create_tables(cloud, first_window):
    """Both tables; the Tablestore one on the emulator clock before the first window."""
    clock = Clock(cloud.info["ots"]["endpoint"])
    clock.set(first_window.start_ms - 120_000)
    try:
        ots_stream_api.create_stream_table(ots_client(cloud), TABLE, [("id", "STRING"), ("n", "INTEGER")],
                                           max_versions=1)
    finally:
        clock.reset()
    cloud.odps().execute_sql(MIRROR_DDL)


class Workload:
    """Random changes of `keys` keys; counts what it did."""

    def __init__(self, cloud, seed=1, keys=40):
        self.client = ots_client(cloud)
        self.clock = Clock(cloud.info["ots"]["endpoint"])
        self.rng = random.Random(seed)
        self.keys = [("k%03d" % (i // 2), i % 2) for i in range(keys)]
        self.counts = {"put": 0, "update": 0, "delete": 0, "column_delete": 0, "batch": 0}

    def change(self, key):
        from tablestore import Row
        r = self.rng
        pk = [("id", key[0]), ("n", key[1])]
        x = r.random()
        if x < 0.3:
            names = r.sample(list(COLUMNS), r.randrange(0, len(COLUMNS) + 1))
            return "put", Row(pk, [(n, COLUMNS[n](r)) for n in names])
        if x < 0.85:
            names = r.sample(list(COLUMNS), r.randrange(1, 4))
            puts = [n for n in names if r.random() < 0.6]
            deletes = [n for n in names if n not in puts]
            attrs = {}
            if puts:
                attrs["put"] = [(n, COLUMNS[n](r)) for n in puts]
            if deletes:
                attrs["delete_all"] = deletes
                self.counts["column_delete"] += len(deletes)
            return "update", Row(pk, attrs)
        return "delete", Row(pk)

    def apply_one(self):
        from tablestore import (BatchWriteRowRequest, Condition, DeleteRowItem, PutRowItem,
                                RowExistenceExpectation, TableInBatchWriteRowItem, UpdateRowItem)
        ignore = Condition(RowExistenceExpectation.IGNORE)
        if self.rng.random() < 0.15:
            keys = self.rng.sample(self.keys, self.rng.randrange(2, 8))
            items = []
            for key in keys:
                op, row = self.change(key)
                self.counts[op] += 1
                items.append({"put": PutRowItem, "update": UpdateRowItem, "delete": DeleteRowItem}[op](row, ignore))
            req = BatchWriteRowRequest()
            req.add(TableInBatchWriteRowItem(TABLE, items))
            result = self.client.batch_write_row(req)
            if not result.is_all_succeed():
                raise RuntimeError("BatchWriteRow failed")
            self.counts["batch"] += 1
            return len(keys)
        op, row = self.change(self.rng.choice(self.keys))
        getattr(self.client, op + "_row")(TABLE, row, ignore)
        self.counts[op] += 1
        return 1

    def apply_batch(self, rows=200):
        """One BatchWriteRow of `rows` changes of distinct keys (for benchmarks)."""
        from tablestore import (BatchWriteRowRequest, Condition, DeleteRowItem, PutRowItem,
                                RowExistenceExpectation, TableInBatchWriteRowItem, UpdateRowItem)
        ignore = Condition(RowExistenceExpectation.IGNORE)
        items = []
        for key in self.rng.sample(self.keys, min(rows, len(self.keys))):
            op, row = self.change(key)
            self.counts[op] += 1
            items.append({"put": PutRowItem, "update": UpdateRowItem, "delete": DeleteRowItem}[op](row, ignore))
        req = BatchWriteRowRequest()
        req.add(TableInBatchWriteRowItem(TABLE, items))
        if not self.client.batch_write_row(req).is_all_succeed():
            raise RuntimeError("BatchWriteRow failed")
        self.counts["batch"] += 1
        return len(items)

    def run(self, window, changes, bulk=False):
        """`changes` changes committed inside `window` (the emulator clock moved there);
        with `bulk`, in BatchWriteRow batches of 200."""
        self.clock.set(window.start_ms + 5_000)
        try:
            done = 0
            while done < changes:
                done += self.apply_batch(min(200, changes - done)) if bulk else self.apply_one()
            if self.clock.now_ms() >= window.end_ms - 5_000:
                raise RuntimeError("the workload of one window took too long")
        finally:
            self.clock.reset()


def ots_table(cloud):
    """The Tablestore table: {(id, n): {column: value}}."""
    from tablestore import INF_MAX, INF_MIN, Direction
    client = ots_client(cloud)
    start = [("id", INF_MIN), ("n", INF_MIN)]
    end = [("id", INF_MAX), ("n", INF_MAX)]
    out = {}
    while start is not None:
        _, start, rows, _ = client.get_range(TABLE, Direction.FORWARD, start, end, max_version=1)
        for row in rows:
            key = tuple(v for _, v in row.primary_key)
            out[key] = {c[0]: _norm(c[1]) for c in row.attribute_columns}
    return out


def odps_table(cloud):
    """The MaxCompute Delta table as pyodps reads it: {(id, n): {column: value}}."""
    out = {}
    with cloud.odps().execute_sql("SELECT * FROM mirror").open_reader() as reader:
        for r in reader:
            key = (r["id"], r["n"])
            out[key] = {c: _norm(r[c]) for c in COLUMNS if r[c] is not None}
    return out


def _norm(v):
    if isinstance(v, (bytes, bytearray)):
        return bytes(v)
    return v


def differences(want, got, limit=10):
    """Readable differences between two tables (empty when equal)."""
    out = []
    for key in sorted(set(want) | set(got)):
        if want.get(key) != got.get(key):
            out.append("%r: tablestore %r, maxcompute %r" % (key, want.get(key), got.get(key)))
    return out[:limit] + (["… %d more" % (len(out) - limit)] if len(out) > limit else [])


def run_window(cloud, window, summary=None, check=True, extra=()):
    return pipelines.run_engine(cloud, MIRROR_JOB, pipelines.odps_params(), window, summary=summary,
                                check=check, extra=extra)


if __name__ == "__main__":
    sys.exit("import this module (scripts/demo, tests/e2e/test_mirror.py)")
