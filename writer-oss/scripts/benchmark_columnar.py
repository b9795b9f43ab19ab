#!/usr/bin/env python3
"""writer-oss CPU and peak RSS for Parquet (two row-group sizes) and ORC beside CSV, on
the same records, written into localcloud OSS by `reader-stream read | writer-oss write`.

Usage (release build first):
    cargo build --release -p writer-oss -p reader-stream -p localcloud
    python3 writer-oss/scripts/benchmark_columnar.py [--mib 256 512]

The records (reader-stream, fixed seed): a long sequence, a random long, a random
double, a random string of 10-60 characters, a random date, a random boolean: about
100 bytes as a CSV line. For each volume (MiB of CSV) it runs csv, parquet with
rowGroupSizeInMB 16 and 128 (SNAPPY), and orc (SNAPPY); GNU time gives the writer's
CPU (user + system) and peak RSS. CPU is reported per GB of CSV, i.e. per GB of the
same records, whatever the output format's size.
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
CSV_LINE = 100  # bytes of one record as CSV, measured by the csv run

COLUMNS = [
    {"type": "long", "sequence": 1000000},
    {"type": "long", "random": "-1000000000, 1000000000"},
    {"type": "double", "random": "0, 1000000"},
    {"type": "string", "random": "10, 60"},
    {"type": "date", "random": "2020-01-01 00:00:00, 2030-01-01 00:00:00"},
    {"type": "bool", "random": "1, 1"},
]
TYPES = [("id", "bigint"), ("n", "bigint"), ("x", "double"), ("s", "string"),
         ("t", "timestamp"), ("b", "boolean")]

FORMATS = {
    "csv": {"fileFormat": "csv"},
    "parquet rg 16": {"fileFormat": "parquet", "compress": "SNAPPY", "rowGroupSizeInMB": 16},
    "parquet rg 128": {"fileFormat": "parquet", "compress": "SNAPPY", "rowGroupSizeInMB": 128},
    "orc stripe 64": {"fileFormat": "orc", "compress": "SNAPPY", "rowGroupSizeInMB": 64},
}


def listing(endpoint):
    with urllib.request.urlopen(endpoint + "/-/oss/buckets/localcloud") as r:
        return json.load(r)["objects"]


def run(info, tmp, name, records, csv_bytes):
    oss = info["oss"]
    prefix = "bench-columnar/%s/%d/" % (name.replace(" ", "-"), records)
    reader = tmp / "r.json"
    reader.write_text(json.dumps({"sliceRecordCount": records, "seed": 5, "column": COLUMNS}))
    params = {
        "endpoint": oss["endpoint"], "accessId": info["access_key_id"],
        "accessKey": info["access_key_secret"], "bucket": oss["bucket"],
        "object": prefix + "data", "writeMode": "truncate", "timeZone": "UTC",
        "column": [{"name": n, "type": t} for n, t in TYPES],
    }
    params.update(FORMATS[name])
    writer = tmp / "w.json"
    writer.write_text(json.dumps(params))
    timing = tmp / "t.txt"
    start = time.monotonic()
    r = subprocess.Popen([BIN / "reader-stream", "read", "--config", reader], stdout=subprocess.PIPE)
    w = subprocess.Popen(["/usr/bin/time", "-f", "%e %U %S %M", "-o", timing,
                          BIN / "writer-oss", "write", "--config", writer],
                         stdin=r.stdout, stderr=subprocess.DEVNULL)
    r.stdout.close()
    assert w.wait() == 0 and r.wait() == 0
    wall = time.monotonic() - start
    _, user, system, rss = timing.read_text().split()
    cpu = float(user) + float(system)
    written = sum(o["size"] for o in listing(oss["endpoint"]) if o["key"].startswith(prefix))
    gb = (csv_bytes or written) / 1e9
    return {
        "format": name, "records": records, "csv_bytes": csv_bytes or written,
        "object_bytes": written, "wall_s": round(wall, 2), "writer_cpu_s": round(cpu, 2),
        "writer_cpu_s_per_GB_of_records": round(cpu / gb, 2),
        "peak_rss_MiB": round(int(rss) / 1024, 1),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, nargs="+", default=[256, 512])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for mib in args.mib:
            records = mib * 1024 * 1024 // CSV_LINE
            csv_bytes = None
            for name in FORMATS:
                # A fresh emulator per run: it keeps every object in memory.
                server = subprocess.Popen([BIN / "localcloud", "serve"], stdout=subprocess.PIPE,
                                          stderr=subprocess.DEVNULL, text=True)
                try:
                    info = json.loads(server.stdout.readline())
                    result = run(info, pathlib.Path(tmp), name, records, csv_bytes)
                finally:
                    server.terminate()
                    server.wait()
                if name == "csv":
                    csv_bytes = result["object_bytes"]
                print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
