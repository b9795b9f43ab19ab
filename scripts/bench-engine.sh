#!/usr/bin/env bash
# Engine forwarding benchmark (BENCHMARKS.md, section "Engine").
#
#   cargo build --release -p engine -p reader-stream -p writer-stream -p plugin-misbehave
#   scripts/bench-engine.sh [RECORDS] [RUNS] [RSS_RECORDS]
#
# For RECORDS records (default 10,000,000) it measures, best of RUNS runs (default 3):
#   * cat of the reader's frame bytes through a pipe (the floor of any pipe);
#   * the direct pipe reader-stream | writer-stream (no engine), 1 and 4 pipes at once;
#   * reader-stream → engine → writer-stream with 1 and 4 channels;
# and, once per size in RSS_RECORDS (default "1000000 50000000"), the engine's own CPU
# time (utime + stime from /proc/<pid>/stat) and the peak RSS of the
# engine (VmHWM from /proc, sampled every 50 ms; /usr/bin/time would report the largest
# child's instead) and of each plugin process (/usr/bin/time in a wrapper), and the wall
# time of a job that moves no record.
set -euo pipefail

RECORDS=${1:-10000000}
RUNS=${2:-3}
RSS_RECORDS=${3:-"1000000 50000000"}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/target/release}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

COLUMNS='[{"type": "long", "sequence": 0}, {"type": "string", "value": "hello, benchmark"},
  {"type": "double", "value": "3.25"}, {"type": "date", "value": "2024-01-01 00:00:00"},
  {"type": "bool", "value": "true"}]'

reader_param() { echo "{\"sliceRecordCount\": $1, \"column\": $COLUMNS}"; }
echo '{"print": false}' > "$WORK/w.json"
reader_param "$RECORDS" > "$WORK/r1.json"
reader_param $((RECORDS / 4)) > "$WORK/r4.json"

job() { # channels, records per task
  cat <<JOB
{"job": {"setting": {"speed": {"channel": $1}},
  "content": [{"reader": {"name": "stream", "parameter": $(reader_param "$2")},
               "writer": {"name": "stream", "parameter": {"print": false}}}]}}
JOB
}
job 1 "$RECORDS" > "$WORK/job1.json"
job 4 $((RECORDS / 4)) > "$WORK/job4.json"

# measure LABEL COMMAND: best wall time of RUNS runs, with the CPU time (user + system,
# the pipeline's processes together) of that run.
measure() {
  local label=$1 cmd=$2 best="" cpu="" wall user sys
  for _ in $(seq "$RUNS"); do
    /usr/bin/time -o "$WORK/t" -f "%e %U %S" bash -c "$cmd" >/dev/null 2>&1
    read -r wall user sys < "$WORK/t"
    if [ -z "$best" ] || [ "$(echo "$wall < $best" | bc -l)" = 1 ]; then
      best=$wall
      cpu=$(echo "$user + $sys" | bc -l)
    fi
  done
  python3 - "$label" "$best" "$cpu" "$RECORDS" "$DATAX_BYTES" "$FRAME_BYTES" <<'PY'
import sys
label, secs, cpu = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
records, datax, frame = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
secs = max(secs, 0.001)
print(f"| {label} | {secs:.2f} | {records/secs:,.0f} | {datax/secs/1e6:,.1f} | {frame/secs/1e6:,.1f} | {cpu:.2f} |")
PY
}

R="$BIN/reader-stream"; W="$BIN/writer-stream"
DIRECT1="$R read --config $WORK/r1.json 2>/dev/null | $W write --config $WORK/w.json"
DIRECT4="for i in 1 2 3 4; do ($R read --config $WORK/r4.json 2>/dev/null | $W write --config $WORK/w.json) & done; wait"
ENGINE1="$BIN/engine run $WORK/job1.json -q --plugin-dir $BIN"
ENGINE4="$BIN/engine run $WORK/job4.json -q --plugin-dir $BIN"
"$R" read --config "$WORK/r1.json" 2>/dev/null > "$WORK/frames.bin"
CAT="cat $WORK/frames.bin | cat"

FRAME_BYTES=$(stat -c %s "$WORK/frames.bin")
"$BIN/engine" run "$WORK/job1.json" -q --plugin-dir "$BIN" --summary-json "$WORK/s.json" 2>/dev/null
DATAX_BYTES=$(python3 -c "import json;print(json.load(open('$WORK/s.json'))['bytes'])")

echo "records: $RECORDS, best of $RUNS runs, DataX bytes: $DATAX_BYTES, frame bytes: $FRAME_BYTES, load average before: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
echo
echo "| pipeline | seconds | records/s | DataX MB/s | wire MB/s | CPU seconds |"
echo "|---|---|---|---|---|---|"
measure "cat frames \| cat" "$CAT"
measure "reader-stream \| writer-stream (direct pipe)" "$DIRECT1"
measure "reader-stream → engine → writer-stream, 1 channel" "$ENGINE1"
measure "4 direct pipes at once (RECORDS/4 each)" "$DIRECT4"
measure "reader-stream → engine → writer-stream, 4 channels" "$ENGINE4"

# Peak RSS: each plugin runs under /usr/bin/time through a wrapper in a plugin dir.
echo
echo "| records | channels | engine peak RSS KiB | engine's own CPU seconds | reader-stream peak RSS KiB (largest task) | writer-stream peak RSS KiB (largest task) |"
echo "|---|---|---|---|---|---|"
mkdir -p "$WORK/plugins"
for p in reader-stream writer-stream; do
  cat > "$WORK/plugins/$p" <<WRAP
#!/bin/sh
exec /usr/bin/time -a -o "$WORK/rss-$p" -f "%M" "$BIN/$p" "\$@"
WRAP
  chmod +x "$WORK/plugins/$p"
done
peak() { sort -n "$1" | tail -1; }
engine_hwm() { # runs the engine in the background; samples its VmHWM and its own CPU
  "$BIN/engine" "$@" 2>/dev/null &
  local pid=$! hwm=0 ticks=0 v t
  while kill -0 "$pid" 2>/dev/null; do
    v=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    t=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || true)
    if [ -n "$v" ]; then hwm=$v; fi
    if [ -n "$t" ]; then ticks=$t; fi
    sleep 0.05
  done
  wait "$pid"
  echo "$hwm $(echo "$ticks / $(getconf CLK_TCK)" | bc -l)"
}
for n in $RSS_RECORDS; do
  job 1 "$n" > "$WORK/rss1.json"
  job 4 $((n / 4)) > "$WORK/rss4.json"
  for channels in 1 4; do
    rm -f "$WORK"/rss-*
    read -r hwm cpu < <(engine_hwm run "$WORK/rss$channels.json" -q --plugin-dir "$WORK/plugins")
    printf "| %s | %s | %s | %.2f | %s | %s |\n" "$n" "$channels" "$hwm" "$cpu" "$(peak "$WORK/rss-reader-stream")" "$(peak "$WORK/rss-writer-stream")"
  done
done

# A job that moves no record (reader-misbehave with records: 0), best of 10.
cat > "$WORK/empty.json" <<'JOB'
{"job": {"content": [{"reader": {"name": "misbehave", "parameter": {"records": 0}},
                      "writer": {"name": "misbehave", "parameter": {}}}]}}
JOB
echo
best=""
for _ in $(seq 10); do
  t0=$(date +%s.%N); "$BIN/engine" run "$WORK/empty.json" -q --plugin-dir "$BIN" 2>/dev/null; t1=$(date +%s.%N)
  t=$(echo "$t1 - $t0" | bc -l)
  if [ -z "$best" ] || [ "$(echo "$t < $best" | bc -l)" = 1 ]; then best=$t; fi
done
echo "empty job (8 step processes + 1 task), best of 10: $best s"
