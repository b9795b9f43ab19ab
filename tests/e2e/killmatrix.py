"""Building blocks of the kill matrix (test_kill_matrix.py): the two targets with an
"old" output that a run must either leave exactly as it was or replace by exactly the
"new" one, a run of the engine that is interrupted at a chosen moment (a signal at a
random time, a signal while the writer's `post` is seen running, a second signal, a
stalled service), and the verdict on what the engine reported against what is visible.

The commit contract the verdict checks (issue 14, notes/COMMIT-CONTRACT.md):
* exit 0 ⇔ outcome "succeeded", and then everything is committed;
* the summary JSON has `committed` ("all", "none", "partial", "unknown") and
  `commit_detail`; "none" means the old output is visible exactly, "all" the new one;
  "partial"/"unknown" are allowed only after a second signal or the post timeout;
* a first SIGINT/SIGTERM or the stall watchdog while `post` runs does not stop it;
* no process of the engine outlives it (also after SIGKILL).
"""

import json
import os
import pathlib
import re
import signal
import subprocess
import time

import pipelines

# ---- processes ----------------------------------------------------------------------


def descendants(pid):
    """(pid, argv) of every living process below `pid`."""
    parent_of = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = pathlib.Path("/proc", entry, "stat").read_text()
        except OSError:
            continue
        rest = stat[stat.rindex(")") + 2:].split()
        if rest[0] != "Z":
            parent_of[int(entry)] = int(rest[1])
    out, frontier = [], {pid}
    while frontier:
        nxt = {p for p, pp in parent_of.items() if pp in frontier}
        for p in nxt:
            try:
                argv = pathlib.Path("/proc", str(p), "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            out.append((p, [a.decode(errors="replace") for a in argv if a]))
        frontier = nxt
    return out


def step_running(engine_pid, writer, step):
    """Whether `<writer> <step> --engine` runs below the engine."""
    return step_pid(engine_pid, writer, step) is not None


def step_pid(engine_pid, plugin, step):
    """The process id of `<plugin> <step> --engine` running below the engine, or of the
    plugin's step session (`<plugin> session --engine`) while it runs `step` (the
    session names itself `<step>:<plugin>`, cut to 15 bytes, in its comm); else None."""
    for pid, argv in descendants(engine_pid):
        if len(argv) < 2 or os.path.basename(argv[0]) != plugin:
            continue
        if argv[1] == step:
            return pid
        if argv[1] == "session":
            try:
                comm = pathlib.Path("/proc", str(pid), "comm").read_text().strip()
            except OSError:
                continue
            if comm.startswith(step + ":"):
                return pid
    return None


def leftovers(exclude, grace_s):
    """The processes (below this one, a subreaper) still running `grace_s` after the
    engine ended, as "pid name" texts; then waits for all of them (up to 60 s) so that
    the next run cannot race them."""
    deadline = time.monotonic() + grace_s
    while True:
        live = [(p, a) for p, a in descendants(os.getpid()) if p not in exclude]
        reap()
        if not live or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    named = ["%d %s" % (p, " ".join(a[:2])) for p, a in live]
    if live:
        pipelines.wait_orphans(exclude=exclude)
    reap()
    return named


def reap():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


# ---- localcloud faults ----------------------------------------------------------------


def add_fault(cloud, service, rule):
    import urllib.request
    req = urllib.request.Request(cloud.info[service]["endpoint"] + "/-/faults", method="POST",
                                 data=json.dumps(rule).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        r.read()


def clear_faults(cloud):
    import urllib.request
    for service in ("ots", "oss", "odps"):
        req = urllib.request.Request(cloud.info[service]["endpoint"] + "/-/faults", method="DELETE")
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()


def injected(cloud, service):
    return [f["operation"] for f in cloud.get(service, "/-/faults")["injected"]]


# ---- targets ------------------------------------------------------------------------


def derive_job(source, replacements, path):
    text = source.read_text()
    for old, new in replacements:
        assert old in text, "%s has no %r" % (source, old)
        text = text.replace(old, new)
    path.write_text(text)
    return path


class OssTarget:
    """Stream → OSS, `writeMode` `mode`. Each case writes under its own prefix (`-p
    case=…` in `object`), so cases do not see each other. Old output:
    `<object>_old.csv`, which `truncate` must remove and `append` must keep (with
    `nonConflict`, nothing: any object there is a conflict); new output: that (append)
    plus one object `<object>__<32 hex>` holding exactly the derived records."""

    service, writer = "oss", "writer-oss"
    post_operation = "CompleteMultipartUpload"
    transfer_operations = [("ots", "GetStreamRecord"), ("oss", "InitiateMultipartUpload"),
                           ("oss", "UploadPart"), ("oss", "CompleteMultipartUpload")]

    def __init__(self, cloud, window, ops, mode, tmp_path):
        self.cloud, self.window, self.mode = cloud, window, mode
        self.job = derive_job(pipelines.OSS_JOB, [
            ('"writeMode": "truncate"', '"writeMode": "%s"' % mode),
            ('"object": "tablestore/users/${start_time}"', '"object": "tablestore/users/${start_time}/${case}/out"'),
        ], tmp_path / ("oss-%s.json" % mode))
        want, _ = pipelines.expected_oss_records(ops, window)
        assert want
        self.want = "".join(want)
        self.bucket = cloud.oss_bucket()

    def params(self, case):
        return dict(pipelines.oss_params(self.window), case=case)

    def object(self, case):
        return "tablestore/users/%d/%s/out" % (self.window.start_ms, case)

    def old(self, case):
        if self.mode == "nonConflict":
            return {}
        return {self.object(case) + "_old.csv": "OLD,%s\n" % case}

    def set_old(self, case):
        for k, v in self.old(case).items():
            self.bucket.put_object(k, v.encode())

    def visible(self, case):
        return pipelines.oss_objects(self.cloud, prefix="tablestore/users/%d/%s/" % (self.window.start_ms, case))

    def classify(self, case, got):
        """"old", "new", or a description of what else is visible."""
        if got == self.old(case):
            return "old"
        if not got:
            return "nothing (the old output is gone, nothing new)"
        rest = dict(got)
        if self.mode != "truncate":
            for k, v in self.old(case).items():
                if rest.pop(k, None) != v:
                    return "mixed: the old object %s is gone or changed; keys %s" % (k, sorted(got))
        pattern = re.escape(self.object(case)) + r"__[0-9a-f]{32}"
        new = [k for k in rest if re.fullmatch(pattern, k)]
        if len(new) == 1 and len(rest) == 1 and rest[new[0]] == self.want:
            return "new"
        return "mixed: keys %s%s" % (sorted(got), "" if len(new) != 1 else (
            ", new object %s" % ("complete" if rest[new[0]] == self.want else "with other content")))


class OdpsTarget:
    """Stream → MaxCompute, table person. Each case writes its own partition
    `pt=<bizdate>_<case>`. Old output: one row ("old-<case>", …) in that partition;
    new output: the derived rows (truncate) or the old row and the derived rows (append),
    each exactly once."""

    service, writer = "odps", "writer-odps"
    post_operation = "CommitUpload"
    transfer_operations = [("ots", "GetStreamRecord"), ("odps", "CreateUploadSession"),
                           ("odps", "UploadBlock"), ("odps", "CommitUpload")]

    def __init__(self, cloud, window, ops, setting, tmp_path):
        truncate = setting == "truncate"
        self.cloud, self.window, self.truncate = cloud, window, truncate
        replacements = [('"partition": "pt=${bdp.system.bizdate}"', '"partition": "pt=${bdp.system.bizdate}_${case}"')]
        if not truncate:
            replacements.append(('"truncate": true', '"truncate": false'))
        self.job = derive_job(pipelines.ODPS_JOB, replacements, tmp_path / ("odps-%s.json" % setting))
        self.want = sorted(pipelines.expected_odps_rows(ops, window), key=pipelines.sort_key)
        assert self.want
        pipelines.create_person_table(cloud)
        self.table = cloud.odps().get_table(pipelines.ODPS_TABLE)

    def params(self, case):
        return dict(pipelines.odps_params(), case=case)

    def spec(self, case):
        return "pt=%s_%s" % (self.window.bizdate, case)

    def old(self, case):
        return [["old-%s" % case, "name", 1, "before", "U", None]]

    def set_old(self, case):
        with self.table.open_writer(partition=self.spec(case), create_partition=True) as w:
            w.write(self.old(case))

    def visible(self, case):
        if not self.table.exist_partition(self.spec(case)):
            return None
        with self.table.open_reader(partition=self.spec(case), reopen=True) as reader:
            rows = [[r[c] for c in ("id", "colname", "version", "colvalue", "optype", "sequenceinfo")]
                    for r in reader]
        return sorted(rows, key=pipelines.sort_key)

    def classify(self, case, got):
        old = sorted(self.old(case), key=pipelines.sort_key)
        new = self.want if self.truncate else sorted(self.old(case) + self.want, key=pipelines.sort_key)
        if got == old:
            return "old"
        if got == new:
            return "new"
        if got is None:
            return "nothing (the partition is gone)"
        n_new = sum(1 for r in got if r in self.want)
        return "mixed: %d rows (%d old, %d of the derived ones, want %d)" % (
            len(got), sum(1 for r in got if r in old), n_new, len(self.want))


TARGETS = {"oss": OssTarget, "odps": OdpsTarget}


# ---- one interrupted run ------------------------------------------------------------


EXIT_OF = {signal.SIGINT: 130, signal.SIGTERM: 143}
POST_LATENCY_S = 2.0


READER = "reader-otsstream"
# The reader's post persists its checkpoints in the status table, with PutRow (only
# there).
READER_POST_OPERATION = ("ots", "PutRow")
IN_POST = ("post", "post2", "post-stall", "post-timeout", "rpost", "rpost2", "post2-applied",
           "post-timeout-applied")


class Case:
    """One cell entry: `moment` is "random" (the signal after `delay` s), "post" (the
    signal `delay` s after the writer's post step is seen running, the post slowed by a
    latency fault), "post2" (the same, then a second signal), "rpost"/"rpost2" (the same
    in the reader's post, after the writer committed), "post-stall" (no signal; a
    stall timeout shorter than the slowed post), "post-timeout" (no signal; a post
    timeout shorter than the slowed post) or "stall" (a latency fault on `operation`
    longer than the stall timeout). "-applied": the commit request takes effect at
    once and only its answer is slowed (a commit that happened while the writer was
    stopped: its abort must find that out)."""

    def __init__(self, name, moment, sig=None, delay=0.0, operation=None):
        self.name, self.moment, self.sig, self.delay, self.operation = name, moment, sig, delay, operation

    def label(self):
        s = self.sig.name if self.sig else "-"
        extra = (" %s" % "/".join(self.operation)) if self.operation else ""
        return "%s %s %s@%.2fs%s" % (self.name, self.moment, s, self.delay, extra)


def run_case(target, case, tmp_path, timeout_s=90):
    """Runs the engine interrupted as `case` says; returns the record of what happened."""
    cloud = target.cloud
    target.set_old(case.name)
    summary_path = tmp_path / ("%s.summary.json" % case.name)
    log_path = tmp_path / ("%s.stderr" % case.name)
    extra = []
    latency_s = 0.0
    step_of = READER if case.moment.startswith("rpost") else target.writer
    if case.moment in IN_POST:
        latency_s = POST_LATENCY_S
        service, op = READER_POST_OPERATION if step_of == READER else (target.service, target.post_operation)
        add_fault(cloud, service, {"operation": op, "times": 1, "kind": "latency", "ms": int(latency_s * 1000),
                                   "after_apply": case.moment.endswith("-applied")})
    moment = case.moment.replace("-applied", "")
    if case.moment == "post-stall":
        extra += ["--stall-timeout", "1"]
    if moment == "post-timeout":
        extra += ["--post-timeout", "1"]
    if case.moment == "stall":
        latency_s = 4.0
        service, op = case.operation
        add_fault(cloud, service, {"operation": op, "times": 1, "kind": "latency", "ms": int(latency_s * 1000)})
        extra += ["--stall-timeout", "1"]
    cmd = pipelines.engine_command(target.job, target.params(case.name), target.window, summary_path, extra)
    env = dict(os.environ, **cloud.env())
    with open(log_path, "w") as log:
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log)
    post_seen = None
    sent = []
    try:
        if case.moment == "random":
            try:
                proc.wait(timeout=case.delay)
            except subprocess.TimeoutExpired:
                proc.send_signal(case.sig)
                sent.append(round(time.monotonic() - t0, 3))
        elif case.moment in IN_POST:
            while proc.poll() is None and post_seen is None:
                if step_running(proc.pid, step_of, "post"):
                    post_seen = time.monotonic()
                else:
                    time.sleep(0.02)
            if case.sig is not None and post_seen is not None:
                time.sleep(case.delay)
                if proc.poll() is None:
                    proc.send_signal(case.sig)
                    sent.append(round(time.monotonic() - t0, 3))
                if moment in ("post2", "rpost2"):
                    time.sleep(0.3)
                    if proc.poll() is None:
                        proc.send_signal(case.sig)
                        sent.append(round(time.monotonic() - t0, 3))
        rc = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = "hung (killed after %d s)" % timeout_s
        proc.wait()
    ended = time.monotonic()
    early = target.visible(case.name)
    left = leftovers(exclude={cloud.pid}, grace_s=1.0)
    # A request the service delays may still take effect after the engine ended: look
    # again once every delayed request has been answered.
    if latency_s:
        time.sleep(max(0.0, (post_seen or t0) + latency_s + 0.5 - time.monotonic()))
    clear_faults(cloud)
    late = target.visible(case.name)
    summary = None
    # The engine empties the summary file at start (never a stale one), so an engine
    # killed by SIGKILL leaves it empty.
    if summary_path.exists() and summary_path.read_text().strip():
        summary = json.loads(summary_path.read_text())
    return {
        "case": case, "rc": rc, "secs": round(ended - t0, 2), "sent": sent,
        "post_seen": None if post_seen is None else round(post_seen - t0, 3),
        "summary": summary, "left": left, "early": target.classify(case.name, early),
        "late": target.classify(case.name, late), "stderr": log_path,
    }


def verdict(r):
    """The problems with one interrupted run (empty: it kept the contract)."""
    case, rc, s = r["case"], r["rc"], r["summary"]
    moment = case.moment.replace("-applied", "")
    problems = []
    if r["left"]:
        problems.append("processes outlived the engine by 1 s: %s" % r["left"])
    if r["early"] != r["late"] and (s or {}).get("committed") != "unknown":
        problems.append("the output changed after the engine ended: %s, then %s" % (r["early"], r["late"]))
    visible = r["late"]
    if not isinstance(rc, int):
        problems.append("engine %s" % rc)
        return problems
    if case.moment in IN_POST and r["post_seen"] is None:
        problems.append("the %s post step was never seen running: the case tested nothing" % (
            "reader's" if moment.startswith("rpost") else "writer's"))
    if case.sig == signal.SIGKILL and rc == -signal.SIGKILL:
        return problems  # nothing reported; only the re-run and the leftovers count
    if s is None:
        problems.append("exit %d without a summary JSON" % rc)
        return problems
    if (rc == 0) != (s.get("outcome") == "succeeded"):
        problems.append("exit %d with outcome %r" % (rc, s.get("outcome")))
    if "committed" not in s or "commit_detail" not in s:
        problems.append("summary has no committed/commit_detail (outcome %r, exit %d, visible %s)" % (
            s.get("outcome"), rc, visible))
    committed = s.get("committed")
    tail = r["stderr"].read_text(errors="replace").splitlines()[-20:]
    if committed and not any("ommit" in line and committed in line for line in tail):
        problems.append("the engine's last lines on stderr do not say committed %r" % committed)
    if rc == 0 and visible != "new":
        problems.append("exit 0 but visible is %s" % visible)
    if committed == "all" and visible != "new":
        problems.append("committed 'all' but visible is %s" % visible)
    if committed == "none" and visible != "old":
        problems.append("committed 'none' but visible is %s" % visible)
    if committed in ("partial", "unknown") and moment not in ("post2", "post-timeout"):
        problems.append("committed %r where the contract does not allow it" % committed)
    if committed not in (None, "all", "none", "partial", "unknown"):
        problems.append("committed %r is not one of all/none/partial/unknown" % committed)
    if moment in ("post", "rpost", "post-stall") and rc != 0:
        problems.append("%s during post stopped the commit: exit %d, %r" % (
            "the stall watchdog" if moment == "post-stall" else case.sig.name, rc, s.get("error")))
    if moment in ("post2", "rpost2") and rc not in (0, EXIT_OF[case.sig]):
        problems.append("second %s: exit %d, want %d" % (case.sig.name, rc, EXIT_OF[case.sig]))
    if moment == "rpost2" and committed != "all":
        problems.append("second %s in the reader's post, after the writer's: committed %r, want 'all'" % (
            case.sig.name, committed))
    if moment in ("post2", "rpost2") and r["sent"] and len(r["sent"]) == 2 and r["secs"] - r["sent"][1] > 5.0:
        problems.append("second signal: the engine took %.1f s more to exit" % (r["secs"] - r["sent"][1]))
    if moment == "post-timeout" and rc != 1:
        problems.append("post timeout: exit %d, want 1 (%r)" % (rc, s.get("error")))
    if moment == "random" and case.sig in EXIT_OF and rc not in (0, EXIT_OF[case.sig]):
        problems.append("%s: exit %d, want %d (or 0)" % (case.sig.name, rc, EXIT_OF[case.sig]))
    if moment == "stall" and rc not in (0, 1):
        problems.append("stall: exit %d, want 1 (or 0)" % rc)
    return problems


def rerun(target, case_name, tmp_path):
    """Runs the case's window again to its end; the problems with its result."""
    summary_path = tmp_path / ("%s.rerun.summary.json" % case_name)
    proc = pipelines.run_engine(target.cloud, target.job, target.params(case_name), target.window,
                                summary=summary_path, check=False)
    problems = []
    left = leftovers(exclude={target.cloud.pid}, grace_s=1.0)
    if left:
        problems.append("re-run: processes outlived the engine: %s" % left)
    got = target.classify(case_name, target.visible(case_name))
    if proc.returncode != 0:
        problems.append("re-run exited %d: %s" % (proc.returncode, proc.stderr.strip().splitlines()[-3:]))
    if got != "new":
        problems.append("re-run: visible is %s, want exactly the new output" % got)
    if summary_path.exists():
        s = json.loads(summary_path.read_text())
        if proc.returncode == 0 and s.get("committed") != "all":
            problems.append("re-run: exit 0 with committed %r" % s.get("committed"))
    return problems


def describe(r):
    s = r["summary"] or {}
    return "%-34s exit %-4s %5.2fs sent %-14s post@%-6s outcome %-13r committed %-9r visible %s%s | %s" % (
        r["case"].label(), r["rc"], r["secs"], r["sent"], r["post_seen"], s.get("outcome"),
        s.get("committed"), r["late"], "" if r["early"] == r["late"] else " (at exit: %s)" % r["early"],
        (s.get("commit_detail") or s.get("error") or "")[:300])
