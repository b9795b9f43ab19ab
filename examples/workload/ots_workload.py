#!/usr/bin/env python3
"""A realistic change workload for Tablestore Stream tables, with a log of every
operation (JSON lines) from which `expected_rows.py` derives what DataX exports.

It creates each table (one STRING primary-key column) with its Stream enabled and
writes puts, updates of some columns (put cells, deletes of one version, deletes of
all versions), row deletes and BatchWriteRow batches over many primary keys, through
the official `tablestore` SDK. Every cell is written with an explicit timestamp (the
log must know each version; a server-chosen one would be unknowable), and no
increments are used (the service logs them with a server timestamp).

Window placement. DataX exports a time window [start, end) of the stream by the
records' commit times. With `--window-start-ms/--window-end-ms` and an emulator
(`--localcloud`), the workload moves the Tablestore emulator's clock (`POST /-/clock`)
so that a few operations commit before the window, the main part inside it and a few
after it, then puts the clock back. Against the real service (no `--localcloud`),
everything is written now; choose the window around the logged times afterwards.

Log lines (one JSON object each):
  {"op": "create_table", "table", "primary_key": [[name, type]], "stream_id"}
  {"op": "put"|"update"|"delete", "table", "seq", "phase", "pk": [[name, value]],
   "cells": [{"kind": "put", "name", "value", "ts"} | {"kind": "delete_one", "name", "ts"}
             | {"kind": "delete_all", "name"}],
   "batch": null | {"id", "row_index"}, "t_before_ms", "t_after_ms"}
  {"op": "split", "table", "at_seq"}
Values: strings, integers, floats (always with a fraction in JSON), booleans, and
{"bytes": "<base64>"}. `t_before_ms`/`t_after_ms` bracket the commit on the service's
clock (emulator: wall clock + the offset this script set).
"""

import argparse
import base64
import json
import os
import random
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from tablestore import (  # noqa: E402
    BatchWriteRowRequest,
    Condition,
    DeleteRowItem,
    OTSClient,
    PutRowItem,
    Row,
    RowExistenceExpectation,
    TableInBatchWriteRowItem,
    UpdateRowItem,
)

import ots_stream_api  # noqa: E402

IGNORE = Condition(RowExistenceExpectation.IGNORE)


def _fix_update_row_size():
    """tablestore 6.4.8: `PlainBufferBuilder.compute_update_row_size` leaves out the
    9 bytes of each cell timestamp, so an UpdateRow whose cells carry timestamps can fail
    with "The buffer is full." before it is sent. Count them."""
    from tablestore.plainbuffer.plain_buffer_builder import PlainBufferBuilder

    original = PlainBufferBuilder.compute_update_row_size
    if getattr(original, "fixed_timestamps", False):
        return

    def compute_update_row_size(primary_key, attribute_columns):
        size = original(primary_key, attribute_columns)
        for columns in attribute_columns.values():
            if isinstance(columns, list):
                size += sum(9 for c in columns if isinstance(c, tuple) and len(c) == 3 and c[2] is not None)
        return size

    compute_update_row_size.fixed_timestamps = True
    PlainBufferBuilder.compute_update_row_size = staticmethod(compute_update_row_size)


_fix_update_row_size()

# Attribute columns and their value generators.
NAMES = [
    "Alice", "Bob", "Chen Wei", "Zoë", "O'Brien, Jr.", 'say "hi"', "  padded  ",
    "#hashtag", "", "multi\nline", "tab\there", "李雷", "semi;colon", "null",
]


def _name(rng):
    return rng.choice(NAMES) + ("" if rng.random() < 0.5 else " %d" % rng.randrange(1000))


COLUMNS = {
    "name": _name,
    "age": lambda rng: rng.randrange(0, 100),
    "score": lambda rng: rng.randrange(0, 100000) / 4.0,
    "active": lambda rng: rng.random() < 0.5,
    "avatar": lambda rng: bytearray(("img-%04d" % rng.randrange(10000)).encode()),
}


def encode_value(value):
    """A cell value as it is written in the log."""
    if isinstance(value, (bytes, bytearray)):
        return {"bytes": base64.b64encode(bytes(value)).decode()}
    return value


class Clock:
    """The service's clock as this script sees it: wall time plus the emulator offset."""

    def __init__(self, admin_endpoint):
        self.admin = admin_endpoint.rstrip("/") if admin_endpoint else None
        self.offset_ms = 0

    def now_ms(self):
        return int(time.time() * 1000) + self.offset_ms

    def set(self, target_ms):
        """Moves the emulator clock so that it reads `target_ms` now."""
        if not self.admin:
            return
        offset = target_ms - int(time.time() * 1000)
        self._post("/-/clock", {"offset_ms": offset})
        self.offset_ms = offset

    def reset(self):
        if self.admin:
            self._post("/-/clock", {"offset_ms": 0})
            self.offset_ms = 0

    def _post(self, path, body):
        req = urllib.request.Request(
            self.admin + path, data=json.dumps(body).encode(), method="POST",
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"null")


class Workload:
    def __init__(self, client, clock, log, rng, tables, keys):
        self.client = client
        self.clock = clock
        self.log = log
        self.rng = rng
        self.tables = tables  # [(table, pk_name)]
        self.keys = keys
        self.seq = 0
        self.batch_id = 0
        self.last_ts = 0
        # Versions written per (table, pk, column), for realistic delete-one-version cells.
        self.versions = {}

    def write_log(self, entry):
        self.log.write(json.dumps(entry, ensure_ascii=False) + "\n")

    def ts(self):
        """A fresh cell version (ms): the service's now, strictly increasing."""
        self.last_ts = max(self.last_ts + 1, self.clock.now_ms())
        return self.last_ts

    def pk_value(self, i):
        special = {0: "#vip-0", 1: "u,comma", 2: "u\"quote"}
        return special.get(i, "u%05d" % i)

    def random_cells(self, table, pk, kind):
        rng = self.rng
        names = list(COLUMNS)
        if kind == "put":
            chosen = rng.sample(names, rng.randrange(1, len(names) + 1))
            return [self.put_cell(table, pk, n) for n in chosen]
        # An update: groups of put cells, one-version deletes and all-version deletes,
        # each group in one piece (the SDK sends them grouped), groups in random order.
        chosen = rng.sample(names, rng.randrange(1, 4))
        groups = {"put": [], "delete_one": [], "delete_all": []}
        for n in chosen:
            r = rng.random()
            known = self.versions.get((table, pk, n))
            if r < 0.6:
                groups["put"].append(self.put_cell(table, pk, n))
            elif r < 0.8:
                ts = rng.choice(known) if known else self.ts()
                groups["delete_one"].append({"kind": "delete_one", "name": n, "ts": ts})
            else:
                groups["delete_all"].append({"kind": "delete_all", "name": n})
                self.versions.pop((table, pk, n), None)
        order = ["put", "delete_one", "delete_all"]
        rng.shuffle(order)
        return [c for g in order for c in groups[g]]

    def put_cell(self, table, pk, name):
        ts = self.ts()
        self.versions.setdefault((table, pk, name), []).append(ts)
        return {"kind": "put", "name": name, "value": COLUMNS[name](self.rng), "ts": ts}

    def random_change(self, table, pk_name, pk):
        r = self.rng.random()
        if r < 0.35:
            op = "put"
        elif r < 0.85:
            op = "update"
        else:
            op = "delete"
        cells = [] if op == "delete" else self.random_cells(table, pk, op)
        if op != "update":
            for n in COLUMNS:
                self.versions.pop((table, pk, n), None)
            for c in cells:
                self.versions.setdefault((table, pk, c["name"]), []).append(c["ts"])
        return {"op": op, "table": table, "pk": [[pk_name, pk]], "cells": cells}

    @staticmethod
    def sdk_row(change):
        pk = [tuple(p) for p in change["pk"]]
        if change["op"] == "delete":
            return Row(pk)
        if change["op"] == "put":
            return Row(pk, [(c["name"], c["value"], c["ts"]) for c in change["cells"]])
        attrs = {}
        for c in change["cells"]:
            if c["kind"] == "put":
                attrs.setdefault("put", []).append((c["name"], c["value"], c["ts"]))
            elif c["kind"] == "delete_one":
                attrs.setdefault("delete", []).append((c["name"], None, c["ts"]))
            else:
                attrs.setdefault("delete_all", []).append(c["name"])
        return Row(pk, attrs)

    def apply(self, changes, phase):
        """Writes one change (single-row call) or several (one BatchWriteRow)."""
        t_before = self.clock.now_ms()
        if len(changes) == 1:
            c = changes[0]
            row = self.sdk_row(c)
            getattr(self.client, c["op"] + "_row")(c["table"], row, IGNORE)
            batch = [None]
        else:
            items = []
            for c in changes:
                item_class = {"put": PutRowItem, "update": UpdateRowItem, "delete": DeleteRowItem}[c["op"]]
                items.append(item_class(self.sdk_row(c), IGNORE))
            req = BatchWriteRowRequest()
            req.add(TableInBatchWriteRowItem(changes[0]["table"], items))
            result = self.client.batch_write_row(req)
            if not result.is_all_succeed():
                raise RuntimeError("BatchWriteRow failed: %r" % (result.get_failed_of_put(),))
            self.batch_id += 1
            batch = [{"id": self.batch_id, "row_index": i} for i in range(len(changes))]
        t_after = self.clock.now_ms()
        for c, b in zip(changes, batch):
            self.seq += 1
            entry = dict(c, seq=self.seq, phase=phase, batch=b, t_before_ms=t_before, t_after_ms=t_after)
            entry["cells"] = [dict(cell, value=encode_value(cell["value"])) if "value" in cell else cell
                              for cell in c["cells"]]
            self.write_log(entry)

    def run_phase(self, phase, count):
        """`count` changes: mostly single-row calls, some BatchWriteRow batches."""
        done = 0
        while done < count:
            table, pk_name = self.rng.choice(self.tables)
            if self.rng.random() < 0.2 and count - done >= 2:
                n = min(count - done, self.rng.randrange(2, 11))
                pks = self.rng.sample(range(self.keys), n)
                changes = [self.random_change(table, pk_name, self.pk_value(i)) for i in pks]
            else:
                changes = [self.random_change(table, pk_name, self.pk_value(self.rng.randrange(self.keys)))]
            self.apply(changes, phase)
            done += len(changes)

    def bulk_phase(self, phase, count, batch_rows=200):
        """`count` changes in full BatchWriteRow batches (for benchmarks)."""
        done = 0
        while done < count:
            table, pk_name = self.rng.choice(self.tables)
            n = min(batch_rows, count - done, self.keys)
            pks = self.rng.sample(range(self.keys), n)
            self.apply([self.random_change(table, pk_name, self.pk_value(i)) for i in pks], phase)
            done += n


def split_shard(admin, table):
    req = urllib.request.Request(
        admin.rstrip("/") + "/-/ots/split", data=json.dumps({"table": table}).encode(),
        method="POST", headers={"content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as e:
        raise RuntimeError("splitting the shard of %s: %s" % (table, e.read().decode(errors="replace")))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--endpoint", default=os.environ.get("OTS_ENDPOINT"), help="Tablestore endpoint (env OTS_ENDPOINT)")
    p.add_argument("--instance", default=os.environ.get("OTS_INSTANCE"), help="instance name (env OTS_INSTANCE)")
    p.add_argument("--access-key-id", default=os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID"))
    p.add_argument("--access-key-secret", default=os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET"))
    p.add_argument("--table", action="append", required=True, metavar="NAME=PK",
                   help="a table and its STRING primary-key column, e.g. person=id (repeatable)")
    p.add_argument("--reuse-tables", action="store_true", help="accept existing stream-enabled tables")
    p.add_argument("--keys", type=int, default=50, help="distinct primary keys per table")
    p.add_argument("--changes", type=int, default=300, help="row changes inside the window")
    p.add_argument("--outside", type=int, default=10, help="row changes before and after the window (each)")
    p.add_argument("--bulk", action="store_true", help="full 200-row batches only (benchmarks)")
    p.add_argument("--split-after", type=int, default=None,
                   help="localcloud: split each table's shard after this many in-window changes")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--log", required=True, help="where to write the operation log (JSON lines)")
    p.add_argument("--localcloud", metavar="OTS_ENDPOINT",
                   help="the emulator's endpoint: move its clock to place the changes in the window")
    p.add_argument("--window-start-ms", type=int)
    p.add_argument("--window-end-ms", type=int)
    args = p.parse_args(argv)
    for name in ("endpoint", "instance", "access_key_id", "access_key_secret"):
        if not getattr(args, name):
            p.error("--%s is required (or its environment variable)" % name.replace("_", "-"))
    tables = [tuple(t.split("=", 1)) for t in args.table]
    if any(len(t) != 2 for t in tables):
        p.error("--table takes NAME=PK")
    windowed = args.window_start_ms is not None and args.window_end_ms is not None
    if args.localcloud and not windowed:
        p.error("--localcloud needs --window-start-ms and --window-end-ms")

    client = OTSClient(args.endpoint, args.access_key_id, args.access_key_secret, args.instance)
    clock = Clock(args.localcloud)
    rng = random.Random(args.seed)
    with open(args.log, "w", encoding="utf-8") as log:
        work = Workload(client, clock, log, rng, tables, args.keys)
        if args.localcloud:
            # Stream record times never go back behind the table's creation time: create
            # the tables on the moved clock too.
            clock.set(args.window_start_ms - 120_000)
        for table, pk_name in tables:
            stream_id = ots_stream_api.create_stream_table(client, table, [(pk_name, "STRING")],
                                                           reuse=args.reuse_tables)
            work.write_log({"op": "create_table", "table": table, "primary_key": [[pk_name, "STRING"]],
                            "stream_id": stream_id})
        phase = work.bulk_phase if args.bulk else work.run_phase
        try:
            if args.localcloud:
                start, end = args.window_start_ms, args.window_end_ms
                clock.set(start - 90_000)
                work.run_phase("before", args.outside)
                clock.set(start + 30_000)
                if args.split_after is not None and args.split_after < args.changes:
                    phase("in", args.split_after)
                    for table, _ in tables:
                        split_shard(args.localcloud, table)
                        work.write_log({"op": "split", "table": table, "at_seq": work.seq})
                    phase("in", args.changes - args.split_after)
                else:
                    phase("in", args.changes)
                if clock.now_ms() >= end - 30_000:
                    raise SystemExit("the in-window changes took longer than the window allows; "
                                     "use fewer changes or a longer window")
                clock.set(end + 30_000)
                work.run_phase("after", args.outside)
            else:
                phase("in", args.changes)
        finally:
            clock.reset()
    print(json.dumps({"log": args.log, "changes": work.seq, "tables": [t for t, _ in tables]}))


if __name__ == "__main__":
    main()
