#!/usr/bin/env python3
"""The rows DataX's otsstreamreader exports for a window, derived from the workload's
operation log only (never from the code under test), and their rendering by
osswriter (CSV text) and odpswriter (MaxCompute column values).

Rules (spec `tablestore.md` §5.7 and §5.9, `oss.md` §8.6–8.7, `odps.md` §6.8):

* Window: a record belongs to [start, end) by its commit time. The log brackets each
  commit between `t_before_ms` and `t_after_ms`; a boundary inside that bracket makes
  the answer unknowable and raises `AmbiguousWindow` (place the workload away from the
  window's edges).
* Order: one record per row change, in commit order (the log's order; a BatchWriteRow
  commits its rows in request order). Records of one row stay in order across shards.
* Multi-version mode: per record, `pk…, columnName, timestamp, columnValue, opType`:
  PUT_ROW → a `DR` line (nulls) then one `U` line per cell; UPDATE_ROW → per cell `U`
  (put), `DO` (delete one version: name and timestamp, null value) or `DA` (delete all
  versions: name only); DELETE_ROW → one `DR` line. With sequence info, a sixth column
  the log cannot know (server commit time and shard); see `sequence_info_shape`.
* Single-version-and-update-only mode: one row per PUT_ROW or UPDATE_ROW record with the
  configured columns taken from the primary key and the record's put cells (a later
  cell of the same name wins), null where absent; DELETE_ROW records and delete cells
  are ignored; a row none of whose configured names was found is dropped.

* Rendering: osswriter's text of each value and its CSV quoting (`csv_line`; DataX
  trims fields, writer-oss deliberately does not: `STREAMPORT_CSV`); odpswriter's
  STRING conversion (`odps_string`).

Values are kept typed: str, int, float, bool, bytes, None.
"""

import argparse
import base64
import json
import re
import sys
from decimal import Decimal


class AmbiguousWindow(Exception):
    """A window boundary falls between a change's send and its answer."""


def decode_value(value):
    if isinstance(value, dict) and set(value) == {"bytes"}:
        return base64.b64decode(value["bytes"])
    return value


def read_log(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def changes_in_window(ops, table, start_ms, end_ms):
    """The row changes of `table` committed in [start_ms, end_ms), in commit order."""
    out = []
    for op in ops:
        if op.get("table") != table or op["op"] not in ("put", "update", "delete"):
            continue
        before, after = op["t_before_ms"], op["t_after_ms"]
        inside_at_send = start_ms <= before < end_ms
        inside_at_answer = start_ms <= after < end_ms
        if inside_at_send != inside_at_answer or (before < start_ms and after >= end_ms):
            raise AmbiguousWindow(
                "change %s of %s was committed between %d and %d ms: the window [%d, %d) "
                "cuts that interval" % (op["seq"], table, before, after, start_ms, end_ms)
            )
        if inside_at_send:
            out.append(op)
    return out


def pk_values(op):
    return [decode_value(v) for _, v in op["pk"]]


def multi_version_rows(ops, table, start_ms, end_ms):
    """Rows `pk…, columnName, timestamp, columnValue, opType` (no sequence info)."""
    rows = []
    for op in changes_in_window(ops, table, start_ms, end_ms):
        pk = pk_values(op)
        if op["op"] in ("put", "delete"):
            rows.append(pk + [None, None, None, "DR"])
        if op["op"] == "delete":
            continue
        for cell in op["cells"]:
            kind = "put" if op["op"] == "put" else cell["kind"]
            if kind == "put":
                rows.append(pk + [cell["name"], cell["ts"], decode_value(cell["value"]), "U"])
            elif kind == "delete_one":
                rows.append(pk + [cell["name"], cell["ts"], None, "DO"])
            else:
                rows.append(pk + [cell["name"], None, None, "DA"])
    return rows


def single_version_rows(ops, table, start_ms, end_ms, columns):
    """Rows of the configured `columns` (names), one per put/update record."""
    rows = []
    for op in changes_in_window(ops, table, start_ms, end_ms):
        if op["op"] == "delete":
            continue
        found = {name: decode_value(v) for name, v in op["pk"]}
        for cell in op["cells"]:
            if op["op"] == "put" or cell["kind"] == "put":
                found[cell["name"]] = decode_value(cell["value"])
        if not any(c in found for c in columns):
            continue
        rows.append([found.get(c) for c in columns])
    return rows


# Sequence info: "%010d_%020d_%010d_%s:%010d" (epoch, commit time µs, row index in the
# write, shard id, line index in the record). The log knows the row index and the line
# index; the server knows the rest.
SEQUENCE_INFO = re.compile(r"^(\d{10})_(\d{20})_(\d{10})_(.+):(\d{10})$")


def sequence_info_shape(ops, table, start_ms, end_ms):
    """Per output row, what the log knows of its sequence info: (row_index, line_index,
    t_before_ms, t_after_ms)."""
    out = []
    for op in changes_in_window(ops, table, start_ms, end_ms):
        row_index = op["batch"]["row_index"] if op.get("batch") else 0
        lines = 1 if op["op"] == "delete" else len(op["cells"]) + (1 if op["op"] == "put" else 0)
        for i in range(lines):
            out.append((row_index, i, op["t_before_ms"], op["t_after_ms"]))
    return out


# ---- rendering ------------------------------------------------------------------


def java_double_plain(d):
    """DataX's text of a double: Java `Double.toString`, then `BigDecimal.toPlainString`
    (spec `oss.md` §8.7). Digits are the shortest round-trip ones (Python's repr), which
    equal Java's for the values workloads use; Java writes `d.dddE±n` outside
    [1e-3, 1e7), and the plain expansion keeps every mantissa digit."""
    if d != d or d in (float("inf"), float("-inf")):
        raise ValueError("DataX cannot render %r" % d)
    if d == 0:
        return "0.0"
    sign = "-" if d < 0 else ""
    if 1e-3 <= abs(d) < 1e7:
        return sign + repr(abs(d))
    t = Decimal(repr(abs(d))).normalize().as_tuple()
    digits = "".join(map(str, t.digits))
    sci_exp = len(digits) - 1 + t.exponent
    mantissa = digits if len(digits) > 1 else digits + "0"  # Java's "1.0E7" keeps the 0
    scale = len(mantissa) - 1 - sci_exp
    if scale <= 0:
        return sign + mantissa + "0" * (-scale)
    if len(mantissa) > scale:
        return sign + mantissa[:-scale] + "." + mantissa[-scale:]
    return sign + "0." + "0" * (scale - len(mantissa)) + mantissa


def datax_text(value, null_format="null"):
    """A value as osswriter renders it (no dateFormat needed: Tablestore has no dates)."""
    if value is None:
        return null_format
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return java_double_plain(value)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    return value


def _java_trim(s):
    start, end = 0, len(s)
    while start < end and ord(s[start]) <= 0x20:
        start += 1
    while end > start and ord(s[end - 1]) <= 0x20:
        end -= 1
    return s[start:end]


def csv_line(fields, delimiter=",", record_delimiter="\n", trim=True, quote_cr=False):
    """One record as osswriter's `csv` format writes it (spec `oss.md` §8.6.2).

    DataX trims every field (Java `String.trim()`) and leaves a lone CR unquoted. This
    project's writer-oss deliberately does neither, so that values round-trip (its
    README, "Differences from DataX"): `STREAMPORT_CSV` holds those two switches."""
    out = []
    for i, field in enumerate(fields):
        if trim:
            field = _java_trim(field)
        quote = ('"' in field or delimiter in field or record_delimiter in field
                 or (quote_cr and "\r" in field)
                 or (i == 0 and (field.startswith("#") or field == "")))
        out.append('"' + field.replace('"', '""') + '"' if quote else field)
    return delimiter.join(out) + record_delimiter


# writer-oss's CSV: fields not trimmed, CR quoted.
STREAMPORT_CSV = {"trim": False, "quote_cr": True}


def csv_text(rows, null_format="null", delimiter=",", **style):
    return "".join(csv_line([datax_text(v, null_format) for v in row], delimiter, **style) for row in rows)


def odps_string(value):
    """A value written into a MaxCompute STRING column (DataX `asString`)."""
    if value is None:
        return None
    return datax_text(value)


def odps_person_rows(ops, table, start_ms, end_ms):
    """The `person(id, colname, version, colvalue, optype, sequenceinfo)` rows of the
    vendor's job: multi-version rows, value as a STRING, `isExportSequenceInfo: false`
    so the sixth column gets no source column and stays NULL."""
    rows = []
    for pk, colname, version, value, optype in multi_version_rows(ops, table, start_ms, end_ms):
        rows.append([pk, colname, version, odps_string(value), optype, None])
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--log", required=True)
    p.add_argument("--table", required=True)
    p.add_argument("--start-ms", type=int, required=True)
    p.add_argument("--end-ms", type=int, required=True)
    p.add_argument("--format", choices=["multi-version", "single-version", "csv", "odps-person"],
                   default="multi-version")
    p.add_argument("--columns", help="single-version / csv: comma-separated column names")
    p.add_argument("--datax-csv", action="store_true",
                   help="csv: DataX's rendering (fields trimmed) instead of writer-oss's")
    args = p.parse_args(argv)
    ops = read_log(args.log)
    if args.format == "csv":
        style = {} if args.datax_csv else STREAMPORT_CSV
        sys.stdout.write(csv_text(single_version_rows(ops, args.table, args.start_ms, args.end_ms,
                                                      args.columns.split(",")), **style))
        return
    if args.format == "single-version":
        rows = single_version_rows(ops, args.table, args.start_ms, args.end_ms, args.columns.split(","))
    elif args.format == "odps-person":
        rows = odps_person_rows(ops, args.table, args.start_ms, args.end_ms)
    else:
        rows = multi_version_rows(ops, args.table, args.start_ms, args.end_ms)
    for row in rows:
        print(json.dumps([{"bytes": base64.b64encode(v).decode()} if isinstance(v, bytes) else v
                          for v in row], ensure_ascii=False))


if __name__ == "__main__":
    main()
