#!/usr/bin/env python3
"""Throughput of `reader-stream read | writer-oss write` into localcloud OSS as CSV.

Usage (release build first):
    cargo build --release -p engine -p writer-oss -p reader-stream -p localcloud
    python3 writer-oss/scripts/benchmark.py [--mib 256] [--engine]

For each record size (100 B, 1 KiB) and channel count (1, 4) it writes about --mib MiB
and reports MB/s and records/s over the wall time, the writers' CPU seconds per GB
written, and the largest writer peak RSS. Without --engine it runs `channels` direct
pipes `reader-stream read | writer-oss write` at once (GNU time measures each writer);
with --engine one `engine run` job with `channels` channels (the writer processes'
CPU time and peak RSS are sampled from /proc while they run).
The emulator keeps objects in memory; every run truncates its prefix.
"""

import argparse
import json
import os
import pathlib
import subprocess
import tempfile
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release"


def listing(endpoint):
    with urllib.request.urlopen(endpoint + "/-/oss/buckets/localcloud") as r:
        return json.load(r)["objects"]


def sample_writers(engine_pid, stats):
    """CPU seconds and peak RSS (KiB) of the engine's writer-oss children, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) != engine_pid:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if not f.read().split(b"\0")[0].endswith(b"writer-oss"):
                    continue
            with open(f"/proc/{entry}/status") as f:
                hwm = next(int(l.split()[1]) for l in f if l.startswith("VmHWM"))
        except (OSError, StopIteration):
            continue
        cpu = (int(fields[11]) + int(fields[12])) / tick
        old_cpu, old_hwm = stats.get(entry, (0, 0))
        stats[entry] = (max(cpu, old_cpu), max(hwm, old_hwm))


def run_engine(info, tmp, record_bytes, channels, total_mib):
    oss = info["oss"]
    payload = record_bytes - 9
    records = total_mib * 1024 * 1024 // record_bytes
    per_channel = records // channels
    prefix = f"bench-engine/{record_bytes}-{channels}/"
    job = tmp / "job.json"
    job.write_text(json.dumps({"job": {"setting": {"speed": {"channel": channels}}, "content": [{
        "reader": {"name": "streamreader", "parameter": {
            "sliceRecordCount": per_channel,
            "column": [{"type": "long", "sequence": 1000000},
                       {"type": "string", "value": "x" * payload}]}},
        "writer": {"name": "osswriter", "parameter": {
            "endpoint": oss["endpoint"], "accessId": info["access_key_id"],
            "accessKey": info["access_key_secret"], "bucket": oss["bucket"],
            "object": prefix + "data", "writeMode": "truncate", "fileFormat": "csv"}},
    }]}}))
    stats = {}
    start = time.monotonic()
    proc = subprocess.Popen([BIN / "engine", "run", "-q", "--plugin-dir", BIN, job],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp)
    while proc.poll() is None:
        sample_writers(proc.pid, stats)
        time.sleep(0.05)
    wall = time.monotonic() - start
    assert proc.returncode == 0
    objects = [o for o in listing(oss["endpoint"]) if o["key"].startswith(prefix)]
    written = sum(o["size"] for o in objects)
    cpu = sum(c for c, _ in stats.values())
    return {
        "mode": "engine", "record_bytes": record_bytes, "channels": channels,
        "objects": len(objects), "records": per_channel * channels, "bytes": written,
        "wall_s": round(wall, 2), "MB_per_s": round(written / wall / 1e6, 1),
        "records_per_s": round(per_channel * channels / wall),
        "writer_cpu_s_per_GB (sampled)": round(cpu / (written / 1e9), 2),
        "peak_rss_MiB (sampled)": round(max((h for _, h in stats.values()), default=0) / 1024, 1),
    }


def run(info, tmp, record_bytes, channels, total_mib):
    oss = info["oss"]
    payload = record_bytes - 9  # "1234567," + payload + "\n" ≈ record_bytes
    records = total_mib * 1024 * 1024 // record_bytes
    per_channel = records // channels
    procs = []
    prefix = f"bench/{record_bytes}-{channels}/"
    start = time.monotonic()
    for c in range(channels):
        reader = tmp / f"r{c}.json"
        reader.write_text(json.dumps({
            "sliceRecordCount": per_channel,
            "column": [{"type": "long", "sequence": 1000000},
                       {"type": "string", "value": "x" * payload}],
        }))
        writer = tmp / f"w{c}.json"
        writer.write_text(json.dumps({
            "endpoint": oss["endpoint"], "accessId": info["access_key_id"],
            "accessKey": info["access_key_secret"], "bucket": oss["bucket"],
            "object": f"{prefix}c{c}/data", "writeMode": "truncate", "fileFormat": "csv",
        }))
        timing = tmp / f"t{c}.txt"
        r = subprocess.Popen([BIN / "reader-stream", "read", "--config", reader],
                             stdout=subprocess.PIPE)
        w = subprocess.Popen(["/usr/bin/time", "-f", "%e %U %S %M", "-o", timing,
                              BIN / "writer-oss", "write", "--config", writer],
                             stdin=r.stdout, stderr=subprocess.DEVNULL)
        r.stdout.close()
        procs.append((r, w, timing))
    for r, w, _ in procs:
        assert w.wait() == 0 and r.wait() == 0
    wall = time.monotonic() - start
    cpu = 0.0
    rss_kib = 0
    for _, _, timing in procs:
        _, user, system, rss = timing.read_text().split()
        cpu += float(user) + float(system)
        rss_kib = max(rss_kib, int(rss))
    objects = [o for o in listing(oss["endpoint"]) if o["key"].startswith(prefix)]
    written = sum(o["size"] for o in objects)
    return {
        "mode": "pipe", "record_bytes": record_bytes, "channels": channels, "objects": len(objects),
        "records": per_channel * channels, "bytes": written, "wall_s": round(wall, 2),
        "MB_per_s": round(written / wall / 1e6, 1),
        "records_per_s": round(per_channel * channels / wall),
        "writer_cpu_s_per_GB": round(cpu / (written / 1e9), 2),
        "peak_rss_MiB": round(rss_kib / 1024, 1),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--engine", action="store_true")
    args = parser.parse_args()
    server = subprocess.Popen([BIN / "localcloud", "serve"], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    try:
        info = json.loads(server.stdout.readline())
        with tempfile.TemporaryDirectory() as tmp:
            for record_bytes in (100, 1024):
                for channels in (1, 4):
                    bench = run_engine if args.engine else run
                    print(json.dumps(bench(info, pathlib.Path(tmp), record_bytes, channels, args.mib)),
                          flush=True)
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
