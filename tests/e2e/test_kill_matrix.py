"""The kill matrix (issue 14, acceptance): for both pipelines and their write modes
(OSS `writeMode` truncate, append, nonConflict; MaxCompute `truncate` true, false),
the engine is interrupted by SIGINT, SIGTERM, SIGKILL and the stall watchdog, at
random moments of a run and at moments inside the writer's and the reader's `post`
(slowed by a localcloud latency fault on CompleteMultipartUpload / CommitUpload /
the reader's checkpoint PutRow; the signal is sent once the post step process is seen
running), including a second signal during `post` and a post timeout, also when the
commit request took effect and only its answer is slow (`after_apply`). Each case
writes to its own target, which first holds a known "old" output. After each case:
* what the engine reported (exit code, summary JSON `outcome`, `committed`,
  `commit_detail`) matches what is visible: "none" → the old output exactly, "all" or
  exit 0 → the new output exactly; "partial"/"unknown" only after a second signal or
  the post timeout;
* no process of the engine outlives it, SIGKILL included;
* a re-run of the window gives exactly the new output: no loss, no duplicate (for
  MaxCompute `truncate: false`, no doubled rows).
Every case is run and recorded before the test fails, with a table of all of them.

The moments come from a seeded RNG; the seed is printed. KILL_MATRIX_SEED sets it,
KILL_MATRIX_ROUNDS (default 1) repeats the random moments that many times.
"""

import os
import random
import signal

import pytest

import expected_rows as er
import killmatrix as km
import pipelines

SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGKILL]


@pytest.fixture(scope="module", autouse=True)
def subreaper():
    pipelines.become_subreaper()


def cases(rng, target, full_s, rounds):
    out = []

    def add(moment, sig=None, delay=0.0, operation=None):
        out.append(km.Case("c%02d" % (len(out) + 1), moment, sig, round(delay, 3), operation))

    for _ in range(rounds):
        for sig in SIGNALS:
            add("random", sig, rng.uniform(0.02, full_s))
        for sig in SIGNALS:
            add("post", sig, rng.uniform(0.1, km.POST_LATENCY_S - 1.0))
        add("post2", rng.choice(SIGNALS[:2]), rng.uniform(0.1, 1.0))
        add("rpost", rng.choice(SIGNALS), rng.uniform(0.1, km.POST_LATENCY_S - 1.0))
        add("rpost2", rng.choice(SIGNALS[:2]), rng.uniform(0.1, 1.0))
        add("stall", operation=rng.choice(target.transfer_operations))
    add("post2-applied", rng.choice(SIGNALS[:2]), rng.uniform(0.1, 1.0))
    add("post-stall")
    add("post-timeout")
    add("post-timeout-applied")
    return out


def matrix(cloud, tmp_path, which, setting, seed):
    seed = int(os.environ.get("KILL_MATRIX_SEED", seed))
    rounds = int(os.environ.get("KILL_MATRIX_ROUNDS", "1"))
    rng = random.Random(seed)
    window = pipelines.Window()
    log = tmp_path / "ops.jsonl"
    pipelines.create_person_table(cloud)
    pipelines.run_workload(cloud, log, window, changes=40, outside=5, keys=15, seed=seed)
    target = km.TARGETS[which](cloud, window, er.read_log(str(log)), setting, tmp_path)

    # The uninterrupted run: the reference time for random moments, and a check that
    # the cell works at all.
    base = km.run_case(target, km.Case("c00", "none"), tmp_path)
    full_s = base["secs"]
    lines, failures = [km.describe(base)], []
    problems = km.verdict(base)
    if base["rc"] != 0 or base["late"] != "new":
        problems.append("the uninterrupted run failed: exit %s, visible %s; stderr: %s" % (
            base["rc"], base["late"], base["stderr"].read_text()[-2000:]))
    if problems:
        failures.append(("c00", problems))
        lines.append("    PROBLEMS: " + "; ".join(problems))
    todo = cases(rng, target, full_s, rounds)
    for case in todo:
        r = km.run_case(target, case, tmp_path)
        problems = km.verdict(r) + km.rerun(target, case.name, tmp_path)
        lines.append(km.describe(r))
        if problems:
            failures.append((case.label(), problems))
            lines.append("    PROBLEMS: " + "; ".join(problems))
    report = "%s %s seed %d (KILL_MATRIX_SEED), full run %.2fs\n%s" % (
        which, setting, seed, full_s, "\n".join(lines))
    print(report)
    assert not failures, "%d of %d cases broke the commit contract\n%s" % (
        len(failures), len(todo) + 1, report)


@pytest.mark.parametrize("mode", ["truncate", "append", "nonConflict"])
def test_kill_matrix_oss(cloud, oss_bins, tmp_path, mode):
    matrix(cloud, tmp_path, "oss", mode, {"append": 1401, "truncate": 1402, "nonConflict": 1403}[mode])


@pytest.mark.parametrize("truncate", [True, False], ids=["truncate", "append"])
def test_kill_matrix_maxcompute(cloud, odps_bins, tmp_path, truncate):
    matrix(cloud, tmp_path, "odps", "truncate" if truncate else "append", 1411 + truncate)
