"""The documentation does what it says: every fenced shell block of every README.md (and
of the guides under docs/) runs
and exits 0, and every relative link of every Markdown file points at something that
exists.

The conventions (documented in README.md, "Documentation tests"):

* Blocks fenced as ```sh, ```bash, ```shell or ```console are run; other blocks
  (```text, ```json, unlabelled) are not. In a ```console block only the lines starting
  with `$ ` are commands (a trailing `\\` continues one, on a line that may start with
  `> `); the rest is output.
* Each block runs on its own, from the repository root, as `bash -euo pipefail`: every
  command of it must succeed, a pipeline included, and every variable it uses must be
  set by the block itself.
* `target/release/` and `target/debug/` in a block mean the built binaries: the test
  replaces them by $STREAMPORT_BIN_DIR (or target/debug), which is also on PATH.
  `cargo build …` does nothing (the binaries are built before the test); every other
  cargo command runs.
* A block that shows a failure says which exit code it ends with on a comment line
  `# doc-test: exit 2`; the test checks that code instead of 0.
* A block that cannot run here (real Alibaba Cloud endpoints, `scripts/test` itself,
  tools that are not installed) carries a visible comment line
  `# doc-test: skip (why)`. A skip without a reason fails.

A block gets BLOCK_TIMEOUT_S seconds; whatever it leaves running (say a localcloud it
started before a command failed) is killed with its process group afterwards.
"""

import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from conftest import WORKSPACE

BLOCK_TIMEOUT_S = 180
SHELL_LANGUAGES = {"sh", "bash", "shell", "console"}
PRUNE = {".git", "target", ".venv", "venv", "node_modules", "__pycache__", "corpus", "artifacts"}
SKIP = re.compile(r"^\s*#\s*doc-test:\s*skip\b\s*(.*)$", re.MULTILINE)
EXIT = re.compile(r"^\s*#\s*doc-test:\s*exit\s+(\d+)\s*$", re.MULTILINE)
FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})\s*([^`\s]*)[^`]*$")
BINARY_PATH = re.compile(r"(?<![\w./-])target/(?:release|debug)/")


def markdown_files(name=None):
    out = []
    for root, dirs, files in os.walk(WORKSPACE):
        dirs[:] = sorted(d for d in dirs if d not in PRUNE)
        for f in sorted(files):
            if (name and f == name) or (not name and f.lower().endswith(".md")):
                out.append(pathlib.Path(root) / f)
    return out


def fenced_blocks(text):
    """(first line number, language, body) of every fenced block of a Markdown text."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang = len(m.group(1)), m.group(2), m.group(3).lower()
        body, j = [], i + 1
        while j < len(lines):
            stripped = lines[j].strip()
            if stripped.startswith(fence[0] * len(fence)) and set(stripped) == {fence[0]}:
                break
            line = lines[j]
            body.append(line[min(indent, len(line) - len(line.lstrip(" "))):])
            j += 1
        blocks.append((i + 1, lang, "\n".join(body) + "\n"))
        i = j + 1
    return blocks


def console_commands(body):
    """The commands of a console block: `$ ` lines and their `\\` continuations."""
    out, continuing = [], False
    for line in body.splitlines():
        if continuing:
            out.append(line[2:] if line.startswith("> ") else line)
        elif line.startswith("$ "):
            out.append(line[2:])
        else:
            continue
        continuing = line.rstrip().endswith("\\")
    return "\n".join(out) + "\n"


def shell_blocks():
    out = []
    guides = sorted((WORKSPACE / "docs").glob("*.md"))
    for readme in markdown_files("README.md") + guides:
        rel = readme.relative_to(WORKSPACE)
        for line, lang, body in fenced_blocks(readme.read_text(encoding="utf-8")):
            if lang in SHELL_LANGUAGES:
                script = console_commands(body) if lang == "console" else body
                out.append(pytest.param(script, id="%s:%d" % (rel, line)))
    return out


BLOCKS = shell_blocks()


@pytest.fixture(scope="module")
def doc_env(bins, tmp_path_factory):
    """PATH with a `cargo` whose `build` does nothing, then the binaries."""
    shim_dir = tmp_path_factory.mktemp("doc-test-bin")
    real_cargo = shutil.which("cargo") or "cargo"
    shim = shim_dir / "cargo"
    shim.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = build ]; then echo "doc-test: skipped: cargo $* (the binaries are built)" >&2; exit 0; fi\n'
        'exec "%s" "$@"\n' % real_cargo)
    shim.chmod(0o755)
    env = dict(os.environ)
    # The Python of the tests (with the `msgpack` package the Python reader example uses)
    # is the `python3` of the blocks.
    env["PATH"] = os.pathsep.join([str(shim_dir), str(bins), os.path.dirname(sys.executable), env.get("PATH", "")])
    env["STREAMPORT_BIN_DIR"] = str(bins)
    return env


def run_block(script, env, bins):
    script = BINARY_PATH.sub(str(bins).rstrip("/") + "/", script)
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(["bash", "-euo", "pipefail", "-c", script], cwd=WORKSPACE, env=env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        t0 = time.time()
        try:
            code = proc.wait(timeout=BLOCK_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # what the block left running
            except ProcessLookupError:
                pass
            proc.wait()
        out.seek(0)
        output = out.read().decode("utf-8", "replace")
    return code, output, time.time() - t0


@pytest.mark.parametrize("script", BLOCKS)
def test_readme_shell_block_runs(script, doc_env, bins):
    skip = SKIP.search(script)
    if skip:
        reason = skip.group(1).strip()
        assert re.fullmatch(r"\(.*\S.*\)", reason), \
            "a `# doc-test: skip` needs its reason in parentheses: %r" % skip.group(0)
        pytest.skip("marked in the README: %s" % reason[1:-1])
    expected = int(EXIT.search(script).group(1)) if EXIT.search(script) else 0
    code, output, took = run_block(script, doc_env, bins)
    assert code == expected, "the block %s, not %d (after %.1f s):\n%s\n--- its output (tail) ---\n%s" % (
        "timed out" if code is None else "exited %d" % code, expected, took, script, output[-4000:])


# ---- links ----------------------------------------------------------------------------

LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.MULTILINE)
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+\1", re.DOTALL)


def without_code(text, inline=True):
    lines, out, fence = text.splitlines(), [], None
    for line in lines:
        m = FENCE.match(line)
        if fence is None and m:
            fence = m.group(2)
            continue
        if fence is not None:
            stripped = line.strip()
            if stripped.startswith(fence) and set(stripped) == {fence[0]}:
                fence = None
            continue
        out.append(line)
    text = "\n".join(out)
    return INLINE_CODE.sub("", text) if inline else text


def slug(heading):
    """GitHub's anchor of a heading."""
    text = re.sub(r"[*_`]|<[^>]+>", "", heading.strip().lower())
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path):
    text = without_code(path.read_text(encoding="utf-8"), inline=False)
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.*?)\s*#*\s*$", text, re.MULTILINE)}


def broken_links(path):
    text = without_code(path.read_text(encoding="utf-8"))
    bad = []
    for target in [m.group(1) for m in LINK.finditer(text)] + [m.group(1) for m in REFERENCE.finditer(text)]:
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) or target.startswith("//"):
            continue  # http(s), mailto: not checked here
        file_part, _, fragment = target.partition("#")
        file_part = file_part.split("?")[0]
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not resolved.exists():
            bad.append("%s (no such file: %s)" % (target, resolved))
        elif fragment and resolved.suffix.lower() == ".md" and fragment.lower() not in anchors(resolved):
            bad.append("%s (no heading with that anchor in %s)" % (target, resolved.name))
    return bad


def test_relative_links_in_markdown_resolve():
    files = markdown_files()
    assert any(f.name == "README.md" for f in files)
    broken = {}
    for f in files:
        bad = broken_links(f)
        if bad:
            broken[str(f.relative_to(WORKSPACE))] = bad
    assert not broken, "broken links: %s" % broken


def test_the_block_parser_and_link_checker(tmp_path):
    """The conventions above, on a made-up README."""
    text = ("# Title\n\n## A `code` heading\n\n```sh\necho one\n```\n\n```text\nnot run\n```\n\n"
            "  ```console\n  $ echo two \\\n  >   three\n  output\n  ```\n\n```sh\nif x; then\n  y\nfi\n```\n"
            "[ok](#a-code-heading) [bad](#nowhere) [file](missing.md) `[code](missing.md)`\n")
    blocks = fenced_blocks(text)
    assert [(lang, body) for _, lang, body in blocks] == [
        ("sh", "echo one\n"), ("text", "not run\n"), ("console", "$ echo two \\\n>   three\noutput\n"),
        ("sh", "if x; then\n  y\nfi\n")]
    assert console_commands(blocks[2][2]) == "echo two \\\n  three\n"
    readme = tmp_path / "README.md"
    readme.write_text(text)
    assert broken_links(readme) == [
        "#nowhere (no heading with that anchor in README.md)",
        "missing.md (no such file: %s)" % (tmp_path / "missing.md")]
    assert SKIP.search("x\n# doc-test: skip (needs the cloud)\n").group(1) == "(needs the cloud)"
    assert EXIT.search("# doc-test: exit 2\nengine run missing.json\n").group(1) == "2"
    assert BINARY_PATH.sub("/b/", "target/release/engine run && ./x/target/debug/y") == \
        "/b/engine run && ./x/target/debug/y"
