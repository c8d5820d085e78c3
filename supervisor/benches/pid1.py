#!/usr/bin/env python3
"""Start overhead and idle memory of openshell-sandbox against tini-static.

Usage: supervisor/benches/pid1.py [--runs N] [--binary PATH] [--baseline PATH]
                                  [--json FILE]

Times `openshell-sandbox -- true`, `tini-static -- true`, `dumb-init true`
and `true` itself, started directly (not PID 1) and under
`unshare --pid --fork` (PID 1 of a new PID namespace, as in a container).
Every round runs each command once, in a shuffled order, so drift of the
machine spreads over all of them alike; the figures are medians of N rounds
(default 300) after 20 warm-up rounds. The overhead of an init is its median
minus the median of `true` started the same way.

Idle RSS: each init supervises `sleep 60`; once the sleep runs, VmRSS (and
Pss) of the init itself is read from /proc.

--baseline adds another build of openshell-sandbox (an older one, say) to
the same interleaved runs, as "baseline".

Not as PID 1, tini runs with -s (child subreaper), the duty openshell-sandbox
always takes on; otherwise tini warns on every start.

Needs root (unshare --pid), tini (tini-static), dumb-init, util-linux.
"""

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_BINARY = os.path.join(
    ROOT, "target", "x86_64-unknown-linux-musl", "release", "openshell-sandbox"
)


def which(name):
    path = shutil.which(name)
    if path is None:
        sys.exit(f"pid1.py: {name} is needed (apt-get install tini dumb-init util-linux coreutils)")
    return path


def commands(binary, true, tini, dumb_init, as_pid_1, baseline=None):
    prefix = [which("unshare"), "--pid", "--fork", "--"] if as_pid_1 else []
    tini_flags = [] if as_pid_1 else ["-s"]
    cmds = {
        "true": prefix + [true],
        "tini-static": prefix + [tini] + tini_flags + ["--", true],
        "dumb-init": prefix + [dumb_init, true],
        "openshell-sandbox": prefix + [binary, "--", true],
    }
    if baseline:
        cmds["baseline"] = prefix + [baseline, "--", true]
    return cmds


def run_once(argv, devnull):
    start = time.perf_counter_ns()
    pid = os.posix_spawn(
        argv[0],
        argv,
        os.environ,
        file_actions=[
            (os.POSIX_SPAWN_DUP2, devnull, 1),
            (os.POSIX_SPAWN_DUP2, devnull, 2),
        ],
    )
    _, status = os.waitpid(pid, 0)
    elapsed = time.perf_counter_ns() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"pid1.py: {' '.join(argv)} failed with status {status}")
    return elapsed


def time_all(cmds, runs, warmup):
    samples = {name: [] for name in cmds}
    names = list(cmds)
    devnull = os.open(os.devnull, os.O_WRONLY)
    for round_number in range(warmup + runs):
        random.shuffle(names)
        for name in names:
            elapsed = run_once(cmds[name], devnull)
            if round_number >= warmup:
                samples[name].append(elapsed)
    os.close(devnull)
    return samples


def children(pid):
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def memory(pid):
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                values["rss_kib"] = int(line.split()[1])
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    values["pss_kib"] = int(line.split()[1])
    except OSError:
        pass
    return values


def idle_memory(argv, as_pid_1, deadline_s=10.0):
    """Starts argv (an init supervising sleep), returns the init's memory."""
    process_pid = os.posix_spawn(argv[0], argv, os.environ)
    try:
        start = time.monotonic()
        while True:
            if time.monotonic() - start > deadline_s:
                raise RuntimeError(f"{' '.join(argv)}: no sleep started within {deadline_s} s")
            init = process_pid
            if as_pid_1:
                kids = children(process_pid)
                init = kids[0] if kids else None
            if init is not None and any(comm(k) == "sleep" for k in children(init)):
                time.sleep(0.2)  # let it settle into its wait
                return memory(init)
            time.sleep(0.01)
    finally:
        os.kill(process_pid, signal.SIGKILL)
        os.waitpid(process_pid, 0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--binary", default=DEFAULT_BINARY)
    parser.add_argument("--baseline", help="another openshell-sandbox build to time alongside")
    parser.add_argument("--json", help="write every figure to this file")
    args = parser.parse_args()

    if os.geteuid() != 0:
        sys.exit("pid1.py: needs root (unshare --pid)")
    binary = os.path.abspath(args.binary)
    if not os.path.isfile(binary):
        sys.exit(f"pid1.py: {binary} is missing; build it with "
                 "cargo build --release -p openshell-sandbox --target x86_64-unknown-linux-musl")
    true = which("true")
    tini = which("tini-static")
    dumb_init = which("dumb-init")
    sleep = which("sleep")

    report = {"binary": binary, "binary_size": os.path.getsize(binary), "runs": args.runs}
    print(f"{binary}: {os.path.getsize(binary):,} bytes")
    for as_pid_1 in (False, True):
        mode = "as PID 1" if as_pid_1 else "not PID 1"
        baseline = os.path.abspath(args.baseline) if args.baseline else None
        cmds = commands(binary, true, tini, dumb_init, as_pid_1, baseline)
        samples = time_all(cmds, args.runs, args.warmup)
        medians = {name: statistics.median(s) / 1e6 for name, s in samples.items()}
        # The 10th percentile: less moved by other load on the machine.
        p10 = {name: statistics.quantiles(s, n=10)[0] / 1e6 for name, s in samples.items()}
        base = medians["true"]
        print(f"\n{mode}: medians of {args.runs} interleaved runs")
        print(f"  {'command':20} {'median':>10} {'overhead':>10} {'p10':>10} {'overhead':>10}")
        for name in cmds:
            print(
                f"  {name:20} {medians[name]:8.3f} ms {medians[name] - base:+8.3f} ms"
                f" {p10[name]:8.3f} ms {p10[name] - p10['true']:+8.3f} ms"
            )
        ours = medians["openshell-sandbox"] - base
        theirs = medians["tini-static"] - base
        print(f"  openshell-sandbox - tini-static = {ours - theirs:+.3f} ms (goal: at most +0.100 ms)")
        print(f"  overhead ratio openshell-sandbox / tini-static = {ours / theirs:.2f}")
        ours_p10 = p10["openshell-sandbox"] - p10["true"]
        theirs_p10 = p10["tini-static"] - p10["true"]
        print(f"  at the 10th percentile: openshell-sandbox - tini-static = {ours_p10 - theirs_p10:+.3f} ms")
        report[mode] = {
            "median_ms": medians,
            "p10_ms": p10,
            "overhead_ms": {name: medians[name] - base for name in medians},
        }

        rss = {}
        for name in [n for n in cmds if n != "true"]:
            argv = commands(binary, sleep, tini, dumb_init, as_pid_1, baseline)[name] + ["60"]
            rss[name] = idle_memory(argv, as_pid_1)
        print(f"  idle memory, supervising sleep ({mode}):")
        for name, values in rss.items():
            pss = values.get("pss_kib")
            pss_text = f", Pss {pss / 1024:.2f} MiB" if pss is not None else ""
            print(f"    {name:20} VmRSS {values['rss_kib'] / 1024:.2f} MiB{pss_text}")
        report[mode]["idle_memory_kib"] = rss

    if args.json:
        with open(args.json, "w") as out:
            json.dump(report, out, indent=2)


if __name__ == "__main__":
    main()
