"""The example plugin written outside Rust (examples/plugins/writer-pyjsonl): its
MessagePack and frames against the protocol's golden frames, standalone behind
reader-stream, each job-level step, and as the writer of a job run by the engine."""

import importlib.machinery
import importlib.util
import json
import os
import subprocess

import pytest

from conftest import WORKSPACE, require

PLUGIN = WORKSPACE / "examples" / "plugins" / "writer-pyjsonl"
GOLDEN = WORKSPACE / "protocol" / "testdata" / "golden"


def load_plugin():
    loader = importlib.machinery.SourceFileLoader("writer_pyjsonl", str(PLUGIN))
    spec = importlib.util.spec_from_loader("writer_pyjsonl", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


py = load_plugin()


def as_golden_json(message):
    """A decoded message in the golden .json form: records as JSON lines, bytes as text."""
    out = {}
    for k, v in message.items():
        if k == "records" and message["type"] == "batch":
            v = [json.dumps([py.value_to_json(x) for x in r], ensure_ascii=False, separators=(",", ":"))
                 for r in py.unpackb(v)]
        elif k == "record" and message["type"] == "dirty":
            v = json.dumps([py.value_to_json(x) for x in py.unpackb(v)], ensure_ascii=False, separators=(",", ":"))
        elif isinstance(v, bytes):
            v = v.decode()
        out[k] = v
    return out


def compact(text):
    return json.dumps(json.loads(text), ensure_ascii=False, separators=(",", ":"))


@pytest.mark.parametrize("name", sorted(p.stem for p in GOLDEN.glob("*.hex")))
def test_golden_frames_decode_and_encode_byte_for_byte(name):
    frame = bytes.fromhex((GOLDEN / (name + ".hex")).read_text().strip())
    reader = py.FrameReader(__import__("io").BytesIO(py.PREAMBLE + frame))
    message = reader.next_message()
    assert reader.next_message() is None
    want = json.loads((GOLDEN / (name + ".json")).read_text())
    got = as_golden_json(message)
    if name == "batch" or name == "dirty":
        key = "records" if name == "batch" else "record"
        want_lines = want.pop(key)
        got_lines = got.pop(key)
        want_lines = want_lines if isinstance(want_lines, list) else [want_lines]
        got_lines = got_lines if isinstance(got_lines, list) else [got_lines]
        assert [json.loads(x) for x in got_lines] == [json.loads(x) for x in want_lines]
    assert got == want
    assert py.encode_frame(message) == frame


def test_a_corrupt_frame_is_refused():
    frame = bytearray(bytes.fromhex((GOLDEN / "eos.hex").read_text().strip()))
    frame[-1] ^= 1
    with pytest.raises(py.PluginError, match="checksum"):
        py.FrameReader(__import__("io").BytesIO(py.PREAMBLE + bytes(frame))).next_message()
    with pytest.raises(py.PluginError, match="not a streamport"):
        py.FrameReader(__import__("io").BytesIO(b"hello world\n")).next_message()


def job(tmp_path, channel=1, records=20, path=None):
    return {"job": {"setting": {"speed": {"channel": channel}, "errorLimit": {"record": 0}},
                    "content": [{"reader": {"name": "streamreader", "parameter": {
                        "sliceRecordCount": records,
                        "column": [{"type": "long", "sequence": 1}, {"type": "string", "value": "héllo, \"w\""},
                                   {"type": "date", "value": "2024-01-15 08:30:00"},
                                   {"type": "bool", "value": "true"}, {"type": "bytes", "value": "test"},
                                   {"type": "double", "value": "2.5"}]}},
                                 "writer": {"name": "pyjsonlwriter", "parameter": {
                                     "path": str(path or tmp_path / "out"), "fileName": "rows"}}}]}}


def write_job(tmp_path, **kw):
    f = tmp_path / "job.json"
    f.write_text(json.dumps(job(tmp_path, **kw)))
    return f


def reader_lines(bins, job_file):
    out = subprocess.run([str(bins / "reader-stream"), "read", "--config", str(job_file), "--format", "jsonl"],
                         check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines()]


def read_outputs(directory):
    return {p.name: [json.loads(line) for line in p.read_text().splitlines()] for p in sorted(directory.iterdir())}


def test_standalone_behind_reader_stream_frames_and_jsonl(bins, tmp_path):
    require(bins, "reader-stream")
    job_file = write_job(tmp_path)
    reader = subprocess.Popen([str(bins / "reader-stream"), "read", "--config", str(job_file)], stdout=subprocess.PIPE)
    subprocess.run([str(PLUGIN), "write", "--config", str(job_file)], stdin=reader.stdout, check=True)
    assert reader.wait() == 0
    want = reader_lines(bins, job_file)
    assert len(want) == 20
    assert read_outputs(tmp_path / "out") == {"rows-0.jsonl": want}
    # The same records as JSON lines on stdin.
    text = "\n".join(json.dumps(r) for r in want) + "\n"
    subprocess.run([str(PLUGIN), "write", "--config", str(job_file), "--input-format", "jsonl"],
                   input=text, text=True, check=True)
    assert read_outputs(tmp_path / "out") == {"rows-0.jsonl": want}


def test_a_truncated_stream_fails_and_leaves_nothing(bins, tmp_path):
    require(bins, "reader-stream")
    job_file = write_job(tmp_path)
    frames = subprocess.run([str(bins / "reader-stream"), "read", "--config", str(job_file)],
                            check=True, capture_output=True).stdout
    cut = subprocess.run([str(PLUGIN), "write", "--config", str(job_file)], input=frames[:-30], capture_output=True)
    assert cut.returncode == 1
    assert b"stream ended" in cut.stderr or b"without eos" in cut.stderr
    assert list((tmp_path / "out").iterdir()) == []
    # A reader that failed or was killed right after its hello: no eos, no commit.
    # (the preamble, then the hello frame: length, body, CRC-32)
    first_frame = frames[:12 + 4 + int.from_bytes(frames[12:16], "big") + 4]
    cut = subprocess.run([str(PLUGIN), "write", "--config", str(job_file)], input=first_frame, capture_output=True)
    assert cut.returncode == 1 and b"without eos" in cut.stderr, cut.stderr
    assert list((tmp_path / "out").iterdir()) == []


def step(command, request, *extra):
    proc = subprocess.run([str(PLUGIN), command, "--engine", *extra], input=json.dumps(request),
                          capture_output=True, text=True)
    return proc.returncode, json.loads(proc.stdout)


def test_steps_in_engine_mode(tmp_path):
    out = tmp_path / "out"
    ctx = {"parameter": {"path": str(out), "fileName": "r"}, "state": None,
           "job": {"job_id": "j", "fingerprint": "f" * 32, "time_zone": "UTC", "task_index": 0, "task_count": 2}}
    assert step("check", ctx) == (0, {"ok": True, "value": None, "error": None})
    out.mkdir()
    (out / "r-7.jsonl").write_text("old\n")
    code, answer = step("prepare", ctx)
    assert code == 0 and answer["ok"] and not (out / "r-7.jsonl").exists()
    code, answer = step("split", dict(ctx, count=3))
    assert code == 0 and len(answer["value"]) == 3
    tmp = out / (".r-%s-1.jsonl.tmp" % ("f" * 32))
    tmp.write_text("[1]\n")
    code, answer = step("abort", ctx)
    assert code == 0 and not tmp.exists()
    tmp.write_text("[1]\n")
    code, answer = step("post", dict(ctx, reports=[{"temp": str(tmp), "task_index": 1}]))
    assert code == 0 and (out / "r-1.jsonl").read_text() == "[1]\n" and not tmp.exists()
    bad = dict(ctx, parameter={"path": str(out), "writeMode": "sometimes"})
    code, answer = step("check", bad)
    assert code == 2 and not answer["ok"] and answer["error"]["kind"] == "config"
    assert "writeMode" in answer["error"]["message"]
    spec = json.loads(subprocess.run([str(PLUGIN), "spec"], capture_output=True, text=True, check=True).stdout)
    assert spec["plugin"] == "writer-pyjsonl" and [p["name"] for p in spec["parameters"]] == [
        "path", "fileName", "writeMode"]


def test_standalone_steps_with_files(tmp_path):
    job_file = write_job(tmp_path)
    assert subprocess.run([str(PLUGIN), "check", "--config", str(job_file)]).returncode == 0
    state = subprocess.run([str(PLUGIN), "prepare", "--config", str(job_file)], capture_output=True, text=True,
                           check=True).stdout
    assert json.loads(state) == {"path": str(tmp_path / "out")}
    tasks = subprocess.run([str(PLUGIN), "split", "--config", str(job_file), "--count", "2"], capture_output=True,
                           text=True, check=True).stdout
    assert len(json.loads(tasks)) == 2
    missing = subprocess.run([str(PLUGIN), "prepare"], capture_output=True, text=True)
    assert missing.returncode == 2 and "--config" in missing.stderr


def run_engine(bins, job_file, extra=()):
    return subprocess.run([str(bins / "engine"), "run", str(job_file), "--plugin-dir", str(PLUGIN.parent),
                           *extra], capture_output=True, text=True, env=dict(os.environ, PATH=str(bins) + ":" +
                                                                                 os.environ.get("PATH", "")))


def test_writer_of_a_job_run_by_the_engine(bins, tmp_path):
    require(bins, "engine", "reader-stream")
    job_file = write_job(tmp_path, channel=2, records=50)
    proc = run_engine(bins, job_file, ["--summary-json", str(tmp_path / "summary.json")])
    assert proc.returncode == 0, proc.stderr[-3000:]
    outputs = read_outputs(tmp_path / "out")
    single = reader_lines(bins, job_file)
    # Two tasks of 50 records each (the sequence continues across slices), no temporary
    # file left.
    assert sorted(outputs) == ["rows-0.jsonl", "rows-1.jsonl"]
    assert [len(rows) for rows in outputs.values()] == [50, 50]
    every = sorted(outputs["rows-0.jsonl"] + outputs["rows-1.jsonl"])
    assert every == [[i + 1] + single[0][1:] for i in range(100)]
    assert json.loads((tmp_path / "summary.json").read_text())["records"] == 100
    # The same window again replaces the output instead of adding to it.
    assert run_engine(bins, job_file).returncode == 0
    assert sorted(read_outputs(tmp_path / "out")) == ["rows-0.jsonl", "rows-1.jsonl"]


def test_a_refused_configuration_stops_the_job(bins, tmp_path):
    require(bins, "engine", "reader-stream")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    job_file = write_job(tmp_path, path=blocker)
    proc = run_engine(bins, job_file)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "not a directory" in proc.stderr
