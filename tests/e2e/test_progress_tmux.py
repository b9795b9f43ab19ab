"""The engine's live progress display on a real terminal (tmux), at 80 and 200 columns.

A speed-limited job (2 tasks × 40,000 records at 16,000 records/s, about 5 s) runs in a
tmux pane of the given width. The pane is captured while it runs: the live lines show
read and written records, bytes, speed, the waits on the reader, the writer and the
speed limit, dirty records, tasks and an ETA, each line within the pane's width (never
wrapped), with values that move forward and stay plausible. After the job, the whole
pane with its scrollback holds no live line any more (no stale or wrapped leftovers),
and the summary and its JSON carry the new fields.
"""

import json
import re
import shutil
import subprocess
import time
import uuid

import pytest

RECORDS_PER_TASK = 40000
TASKS = 2
LIMIT = 16000  # records/s for the whole job (batches are of 8,192 records)

LIVE_READ = re.compile(
    r"^read (?P<read>[\d,]+) rec (?P<mib>[\d.]+) MiB · written (?P<written>[\d,]+) · "
    r"(?P<rps>[\d,]+) rec/s (?P<mibps>[\d.]+) MiB/s$"
)
LIVE_WAIT = re.compile(
    r"^waited on reader (?P<reader>[\d.:]+)s?, writer (?P<writer>[\d.:]+)s?, "
    r"speed limit (?P<limit>[\d.:]+)s? · dirty (?P<dirty>\d+)$"
)
LIVE_TASKS = re.compile(
    r"^tasks (?P<running>\d+) running, (?P<done>\d+)/(?P<total>\d+) done · "
    r"elapsed (?P<elapsed>[\d.:]+)s?(?: · ETA (?P<eta>\d+:\d\d|\?))?$"
)


def number(text):
    return int(text.replace(",", ""))


def tmux(socket, *args):
    return subprocess.run(["tmux", "-L", socket, "-f", "/dev/null", *args],
                          check=True, capture_output=True, text=True).stdout


def engine_of(bins):
    for name in ("streamport", "engine"):
        if (bins / name).exists():
            return bins / name
    pytest.skip("the engine is not built")


@pytest.mark.parametrize("width", [80, 200])
def test_live_progress_fits_the_terminal_and_leaves_nothing_behind(bins, tmp_path, width):
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (apt-get install tmux): the live display needs a terminal")
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"job": {
        "setting": {"speed": {"channel": TASKS, "record": LIMIT}},
        "content": [{
            "reader": {"name": "streamreader", "parameter": {
                "sliceRecordCount": RECORDS_PER_TASK,
                "column": [{"type": "long", "value": "7"}, {"type": "string", "value": "progress"}]}},
            "writer": {"name": "streamwriter", "parameter": {"print": False}},
        }]}}))
    summary = tmp_path / "summary.json"
    command = "%s run %s --summary-json %s --plugin-dir %s; echo __EXIT_$?__; sleep 120" % (
        engine_of(bins), job, summary, bins)
    socket = "streamport-progress-%s" % uuid.uuid4().hex[:8]
    tmux(socket, "new-session", "-d", "-s", "job", "-x", str(width), "-y", "50",
         "-c", str(tmp_path), command)
    frames = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            screen = tmux(socket, "capture-pane", "-p", "-t", "job")
            frames.append(screen)
            if "__EXIT_" in screen:
                break
            time.sleep(0.25)
        final = tmux(socket, "capture-pane", "-p", "-t", "job", "-S", "-", "-E", "-")
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True)
    assert "__EXIT_0__" in final, final

    # While it ran: the live lines, whole, within the width, with plausible values.
    seen = []
    for screen in frames:
        lines = screen.splitlines()
        for i, line in enumerate(lines):
            # Each live line whole on its row: one that did not fit would be cut or
            # wrapped onto the next row, and the patterns (anchored at both ends) fail.
            m = LIVE_READ.match(line)
            if not m or i + 2 >= len(lines):
                continue
            wait, tasks = LIVE_WAIT.match(lines[i + 1]), LIVE_TASKS.match(lines[i + 2])
            assert wait and tasks, "the live lines are incomplete:\n%s" % screen
            seen.append((m, wait, tasks))
    reads = [number(m["read"]) for m, _, _ in seen]
    assert len(set(reads)) >= 3, "fewer than 3 refreshes of the live display: %s\n%s" % (reads, frames[-1])
    assert reads == sorted(reads), reads
    total = RECORDS_PER_TASK * TASKS
    for m, wait, tasks in seen:
        read, written, rps = number(m["read"]), number(m["written"]), number(m["rps"])
        assert 0 <= written <= read <= total, m.group(0)
        # Batches of 8,192 records pass the limit whole: a short window may see two.
        assert rps <= LIMIT * 3, "a speed far above the limit: %s" % m.group(0)
        assert wait["dirty"] == "0"
        assert tasks["total"] == str(TASKS)
        assert int(tasks["running"]) + int(tasks["done"]) <= TASKS
    # The speed limit held records back, the writers reported progress, the readers'
    # estimate gave an ETA.
    assert any(float(w["limit"]) > 0 for _, w, _ in seen if ":" not in w["limit"]), seen[-1][1].group(0)
    assert any(number(m["written"]) > 0 for m, _, _ in seen), [m.group(0) for m, _, _ in seen]
    etas = [t["eta"] for _, _, t in seen if t["eta"] and t["eta"] != "?"]
    assert etas, [t.group(0) for _, _, t in seen]
    eta_secs = [int(e.split(":")[0]) * 60 + int(e.split(":")[1]) for e in etas]
    # The job takes total / LIMIT = 5 s; a slow start (a loaded machine) may show more.
    assert min(eta_secs) <= total / LIMIT * 2 and max(eta_secs) <= 120, etas

    # After it: no live line is left anywhere, scrollback included.
    stale = [line for line in final.splitlines() if "·" in line or " rec/s " in line]
    assert not stale, "stale progress lines:\n%s" % "\n".join(stale)
    assert "summary" in final
    report = json.loads(summary.read_text())
    assert report["records"] == total and report["written_records"] == total, report
    assert report["wait_limit_secs"] > 1.0, report
    assert report["wait_reader_secs"] >= 0 and report["wait_writer_secs"] >= 0, report
    assert {p["name"] for p in report["plugins"]} == {"reader-stream", "writer-stream"}, report
    assert re.fullmatch(r"[0-9a-f]{32}", report["fingerprint"]), report
