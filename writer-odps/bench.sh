#!/usr/bin/env bash
# writer-odps into localcloud: records/s, MB/s, CPU time and peak RSS (BENCHMARKS.md).
#
#   writer-odps/bench.sh [ROWS]        (default 1000000)
#
# Rows: 10 mixed-type columns, about 1 KB each (bigint, double, boolean, datetime,
# two ~400-character strings, decimal, bigint, a ~150-character string, datetime),
# generated once by reader-stream into a frame file, so generation is not measured.
# Each run starts a fresh release `localcloud serve` (its memory grows with the
# rows it keeps). Needs Python with pyodps (PYTHON, default python3) to create the
# table. 4 channels = 4 writer processes at once, each with a quarter of the rows.
# MB/s counts the input stream (protocol frames, about the size of the Tunnel
# encoding); "upload phase" is from the first session created to the last block
# answered; "total" adds truncation checks, session creation and the commit.
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-1000000}
python=${PYTHON:-python3}
cargo build --quiet --release -p writer-odps -p reader-stream -p localcloud -p engine
bin=$(cargo metadata --format-version 1 --no-deps | "$python" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release
work=$(mktemp -d)
lc_pid=""
cleanup() { [ -n "$lc_pid" ] && kill "$lc_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

gen() { # file, rows, seed
  cat > "$work/r.json" <<JSON
{"sliceRecordCount": $2, "seed": $3, "column": [
 {"type": "long", "sequence": 1}, {"type": "double", "random": "-1000, 1000"}, {"type": "bool", "random": "1, 1"},
 {"type": "date", "random": "2000-01-01 00:00:00, 2030-01-01 00:00:00"},
 {"type": "string", "random": "380, 420"}, {"type": "string", "random": "380, 420"},
 {"type": "decimal", "value": "12345.6789"}, {"type": "long", "random": "0, 1000000000"},
 {"type": "string", "random": "140, 160"}, {"type": "date", "value": "2024-01-01 00:00:00"}]}
JSON
  "$bin/reader-stream" read --config "$work/r.json" > "$1"
}
gen "$work/all.bin" "$rows" 1
for i in 0 1 2 3; do gen "$work/q$i.bin" $((rows / 4)) $((i + 10)); done
echo "rows: $rows, frame stream $(stat -c %s "$work/all.bin") bytes"

start_cloud() {
  "$bin/localcloud" serve > "$work/lc.json" 2> "$work/lc.err" &
  lc_pid=$!
  for _ in $(seq 50); do [ -s "$work/lc.json" ] && break; sleep 0.1; done
  endpoint=$("$python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["odps"]["endpoint"])' "$work/lc.json")
  "$python" - "$endpoint" <<'PY'
import sys
from odps import ODPS
o = ODPS("LTAI5tLocalCloudTestKey", "localcloud-test-secret-0123456789", "localcloud", endpoint=sys.argv[1] + "/api")
o.execute_sql("create table bench (c1 bigint, c2 double, c3 boolean, c4 datetime, c5 string, c6 string, "
              "c7 decimal, c8 bigint, c9 string, c10 datetime) partitioned by (pt string)")
o.execute_sql("alter table bench add partition (pt='1')")
PY
}
stop_cloud() { kill "$lc_pid"; wait "$lc_pid" 2>/dev/null || true; lc_pid=""; }

config() { # block size MiB, compress
  cat > "$work/w.json" <<JSON
{"odpsServer": "$endpoint/api", "project": "localcloud", "table": "bench", "partition": "pt=1",
 "column": ["*"], "truncate": false, "accessId": "LTAI5tLocalCloudTestKey",
 "accessKey": "localcloud-test-secret-0123456789", "blockSizeInMB": $1, "isCompress": $2}
JSON
}

# One writer process per input file, all at once; prints one result line.
run() { # label, block MiB, compress, files...
  local label=$1 block=$2 compress=$3; shift 3
  start_cloud
  config "$block" "$compress"
  local start end n=0 pids=() bytes=0
  start=$(date +%s.%N)
  for f in "$@"; do
    /usr/bin/time -f "%e %U %S %M" -o "$work/time.$n" \
      "$bin/writer-odps" write --config "$work/w.json" < "$f" 2> "$work/log.$n" &
    pids+=($!)
    n=$((n + 1))
    bytes=$((bytes + $(stat -c %s "$f")))
  done
  wait "${pids[@]}" || true
  end=$(date +%s.%N)
  "$python" - "$label" "$start" "$end" "$rows" "$work" "$n" "$bytes" <<'PY'
import re, sys, datetime
label, start, end, rows, work, n = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5], int(sys.argv[6])
size = int(sys.argv[7])
cpu = rss = 0.0
first = last = None
def ts(line):
    return datetime.datetime.fromisoformat(line.split()[0].rstrip("Z")).timestamp()
for i in range(n):
    e, u, s, m = open(f"{work}/time.{i}").read().split()[-4:]
    cpu += float(u) + float(s)
    rss = max(rss, int(m) / 1024)
    log = open(f"{work}/log.{i}").read().splitlines()
    begin = [ts(l) for l in log if "upload session created" in l]
    done = [l for l in log if "uploaded its blocks" in l]
    if not begin or not done:
        sys.exit(f"{label}: writer {i} failed:\n" + "\n".join(log[-5:]))
    first = min(first or begin[0], begin[0])
    last = max(last or ts(done[0]), ts(done[0]))
wall = end - start
upload = last - first
print(f"{label:<28} total {wall:6.2f} s {rows/wall:>9,.0f} rec/s {size/wall/1e6:6.1f} MB/s | "
      f"upload phase {upload:5.2f} s {rows/upload:>9,.0f} rec/s {size/upload/1e6:6.1f} MB/s | "
      f"writer CPU {cpu:5.2f} s ({cpu/rows*1e6:4.2f} s per 10^6 rows) | peak RSS {rss:5.1f} MiB")
PY
  stop_cloud
}

# Through the engine (when it is built): reader-stream with constant values of the
# same shape → engine → writer-odps, N channels into one upload session.
run_engine() { # channels
  local channels=$1
  start_cloud
  config 64 false
  local s400 s150
  s400=$(printf 'x%.0s' $(seq 400)); s150=$(printf 'y%.0s' $(seq 150))
  cat > "$work/job.json" <<JSON
{"job": {"setting": {"speed": {"channel": $channels}},
 "content": [{"reader": {"name": "streamreader", "parameter": {"sliceRecordCount": $((rows / channels)), "column": [
   {"type": "long", "sequence": 1}, {"type": "double", "value": "123.456"}, {"type": "bool", "value": "true"},
   {"type": "date", "value": "2024-01-01 00:00:00"}, {"type": "string", "value": "$s400"},
   {"type": "string", "value": "$s400"}, {"type": "decimal", "value": "12345.6789"},
   {"type": "long", "value": "123456789"}, {"type": "string", "value": "$s150"},
   {"type": "date", "value": "2024-01-01 00:00:00"}]}},
  "writer": {"name": "odpswriter", "parameter": $(cat "$work/w.json")}}]}}
JSON
  local start end
  start=$(date +%s.%N)
  "$bin/engine" run "$work/job.json" --plugin-dir "$bin" -q 2> "$work/engine.log" || { tail -20 "$work/engine.log"; exit 1; }
  end=$(date +%s.%N)
  "$python" - "engine, $channels channel(s), 64 MiB" "$start" "$end" "$rows" <<'PY'
import sys
label, start, end, rows = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
wall = end - start
print(f"{label:<28} total {wall:6.2f} s {rows/wall:>9,.0f} rec/s {rows*1012/wall/1e6:6.1f} MB/s (about 1,012 bytes a row)")
PY
  stop_cloud
}

run "1 channel, 64 MiB blocks" 64 false "$work/all.bin"
run "1 channel, 512 MiB blocks" 512 false "$work/all.bin"
run "1 channel, 64 MiB, deflate" 64 true "$work/all.bin"
run "4 channels, 64 MiB blocks" 64 false "$work"/q{0,1,2,3}.bin
if [ -x "$bin/engine" ]; then
  run_engine 1
  run_engine 4
fi
