"""pybackprop against its peers, side by side, in one interleaved run.

    python benchmarks/run.py                 # everything, ~10 minutes on 2 cores
    python benchmarks/run.py --quick         # fewer/shorter windows, smaller E: a smoke run
    python benchmarks/run.py --only A,D,F    # a selection of workloads

Backends: pybackprop eager (model(x), loss_fn, loss.backward(), opt.step(), opt.zero_grad()),
pybackprop compiled (pb.compile(model, loss_fn, opt) -> step(x, y)), numpy written by hand the way
the lectures do backprop, PyTorch eager and JAX jit — each peer only if it is installed. Workloads
A-F are in peers/common.py (ReLU hidden layers and softmax cross-entropy unless said otherwise).

Processes, threads and interleaving
-----------------------------------
Every (backend, thread count) pair is its own long-lived worker process, started once
(`run.py --worker BACKEND --threads N`) and driven by this coordinator over a pipe, one JSON
line per command. Why processes:
  * JAX cannot change its thread count after start-up; it needs XLA_FLAGS
    ("--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1") before import. On
    jaxlib 0.10 those flags alone still leave two busy threads (the thunk runtime sizes its pool
    from the CPU affinity mask), so the affinity mask is what really holds it to one core.
  * Each library brings its own thread pool (OpenBLAS for numpy, OpenMP/MKL for torch, Eigen/XNNPACK
    for XLA, pybackprop's own pool). Sharing one process, one pool's spinning workers would steal
    the core another library is being timed on.
  * Every worker gets its thread count once, before any work: env OMP/OPENBLAS/MKL/
    PYBACKPROP_NUM_THREADS, then in-process threadpoolctl (numpy), torch.set_num_threads,
    pb.set_num_threads, and the XLA flags (JAX, 1 thread). Nothing is switched back and forth.
Pinning (on unless --no-pin): a 1-thread worker runs under `taskset -c <one cpu>` (the same cpu
for all), a 2-thread worker under `taskset -c <two cpus>`. So "1 thread" means one core for every
framework: JAX's asynchronous dispatch cannot overlap Python with compute on a second core.

Interleaving: per workload, all workers build the model (shared initial weights and data,
fingerprinted), run the loss-agreement check, warm up and calibrate how many steps fill a
window of --window-s seconds. Then come --windows rounds; in each round every worker runs one
timed window, one after another (round r starts at worker r mod n, so no worker always follows
the same one). Only one worker computes at a time; the others block on their pipe. Between
windows the coordinator sleeps --settle-s so that the previous library's spinning threads
(OpenBLAS spins ~0.1 s after a call) have gone to sleep. Slow drifts of the machine's load hit
every backend alike; the reported figure is the median over windows, with the range.
A window is timed inside the worker with time.perf_counter_ns around run(n) + sync() (JAX
dispatches asynchronously; sync blocks on the parameters). Samples/s = steps·batch/time; for F
(forward only, batch 1) the latency is time/calls. Steps per window are calibrated on the fastest
of four warm-up chunks; a window that a busy neighbour stretches past 4× its length stops early
(its rate is still steps done / time taken), so a loaded machine cannot blow up the run time.
A worker that does not answer within --timeout seconds is killed (its Python stacks are dumped
to stderr first) and its column reads "failed". --wait-quiet MIN first waits for a quiet machine.

Each framework is measured at 1 and 2 threads; its best setting (higher median) is the one
compared and is named in the table. pybackprop's figure in the ratios is the better of its eager
and compiled columns; both columns are reported.

Correctness gate
----------------
Before timing, every worker runs the first --check-steps training steps from the same weights on
the same batches and reports each step's loss (F: the outputs); the coordinator compares them with
numpy-by-hand in float64 and prints the max relative difference. A backend beyond --check-rtol
stops the run (exit status 1) unless --keep-going, which marks it WRONG and leaves it out.

Output: a markdown table (printed, and written into the "## Peers (run.py)" section of
benchmarks/RESULTS.md with the machine, date, versions and load), benchmarks/results/<stamp>.json
and latest.json with every window, and a bar chart <stamp>.png / latest.png of speeds relative to
the best peer. The machine's load is recorded as os.getloadavg() and as the CPU time other
processes took during the timed rounds (from /proc/stat minus our own processes).
"""
import argparse
import datetime
import importlib
import json
import os
import platform
import select
import shutil
import signal
import statistics
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from peers import MODULES, PEERS, PYBACKPROP  # noqa: E402
from peers import common  # noqa: E402

LABELS = {"pb_eager": "pybackprop eager", "pb_compiled": "pybackprop compiled",
          "numpy": "numpy by hand", "torch": "torch eager", "jax": "jax jit"}
# pybackprop ÷ best peer must reach these (F: latency ≤ 0.3× the best peer's, i.e. speed-up ≥ 1/0.3).
TARGETS = {"A": 1.5, "B": 1.5, "C": 1.1, "D": 10.0, "E": 1.05, "F": 1 / 0.3}
TARGET_TEXT = {"A": "≥ 1.5×", "B": "≥ 1.5×", "C": "≥ 1.1×", "D": "≥ 10×", "E": "≥ 1.05×",
               "F": "latency ≤ 0.3× (≥ 3.33×)"}
XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


# ----------------------------------------------------------------------------------------------
# Worker side
# ----------------------------------------------------------------------------------------------
def worker_main(backend, threads):
    # The protocol owns the original stdout; anything a library prints goes to stderr.
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    import faulthandler
    faulthandler.register(signal.SIGUSR1, all_threads=True)   # the coordinator's "you hung" probe
    mod = importlib.import_module("peers." + MODULES[backend])
    ok, why = mod.available()
    if ok:
        try:
            mod.setup_threads(threads)
        except Exception as exc:
            ok, why = False, f"setting {threads} threads failed: {exc}"
    state = {"runner": None, "pos": 0, "spec": None}

    def handle(msg):
        cmd = msg["cmd"]
        if cmd == "hello":
            return {"available": ok, "reason": why, "pid": os.getpid(),
                    "affinity": sorted(os.sched_getaffinity(0)),
                    "versions": mod.versions() if ok else {}}
        if cmd == "setup":
            state["runner"] = None
            import gc
            gc.collect()
            spec = common.workload(msg["wid"], msg["quick"])
            layers, data = common.initial_weights(spec), common.batches(spec)
            fp = common.fingerprint(layers, data)
            t0 = time.perf_counter()
            state["runner"], state["pos"], state["spec"] = mod.build(spec, layers, data), 0, spec
            return {"fingerprint": fp, "build_s": time.perf_counter() - t0}
        runner = state["runner"]
        if cmd == "check":
            t0 = time.perf_counter()
            values = runner.check(msg["k"])
            state["pos"] = msg["k"]
            return {"values": values, "check_s": time.perf_counter() - t0}
        if cmd == "warmup":
            # One step, then about `seconds` worth of steps in four chunks. Steps per window are
            # calibrated on the fastest chunk, so that a hiccup of the machine during warm-up does
            # not leave this config with needlessly short (noisy) windows.
            t0 = time.perf_counter_ns()
            runner.run(1, state["pos"])
            runner.sync()
            step_s = (time.perf_counter_ns() - t0) * 1e-9
            state["pos"] += 1
            done, chunks, spent = 1, [], step_s
            n = max(1, int(msg["seconds"] / 4 / max(step_s, 1e-9)))
            for _ in range(4):
                if spent >= msg["seconds"] and done >= msg["min_steps"]:   # (E: one step is enough)
                    break
                t0 = time.perf_counter_ns()
                runner.run(n, state["pos"])
                runner.sync()
                chunks.append((time.perf_counter_ns() - t0) * 1e-9 / n)
                spent += chunks[-1] * n
                state["pos"] += n
                done += n
            if chunks:
                step_s = min(chunks)
            spw = max(1, int(round(msg["window_s"] / step_s)))
            return {"step_s": step_s, "steps_per_window": spw, "warmup_steps": done}
        if cmd == "window":
            # n steps in 8 chunks; if the machine stalls us, stop after cap_s (the rate stays exact:
            # steps done / time taken) so that a busy neighbour cannot blow up the run's duration.
            n, pos = msg["n"], state["pos"]
            chunk, done, cap = max(1, n // 8), 0, int(msg["cap_s"] * 1e9)
            t0 = time.perf_counter_ns()
            while done < n:
                k = min(chunk, n - done)
                runner.run(k, pos + done)
                done += k
                if time.perf_counter_ns() - t0 > cap:
                    break
            runner.sync()
            ns = time.perf_counter_ns() - t0
            state["pos"] += done
            out = {"ns": ns, "steps": done, "capped": done < n}
            if backend in PYBACKPROP and threads >= 2 and ok:
                # The one-way handoff between this process's two threads just after the window:
                # ~30 ns while the VM's two vCPUs share a die, 140-200 ns while they do not (a
                # far window explains a slow one).
                from pybackprop import _core
                out["handoff_ns"] = _core._handoff_ns(10.0)
            return out
        if cmd == "teardown":
            state["runner"] = None
            import gc
            gc.collect()
            return {}
        raise ValueError(f"unknown command {cmd!r}")

    for line in sys.stdin:
        msg = json.loads(line)
        if msg["cmd"] == "quit":
            break
        try:
            reply = handle(msg)
        except Exception as exc:
            reply = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        proto.write(json.dumps(reply) + "\n")
        proto.flush()


# ----------------------------------------------------------------------------------------------
# Coordinator side
# ----------------------------------------------------------------------------------------------
class Worker:
    def __init__(self, backend, threads, cpus, pin, timeout):
        self.backend, self.threads, self.timeout = backend, threads, timeout
        self.key = f"{backend}@{threads}t"
        env = dict(os.environ)
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "PYBACKPROP_NUM_THREADS"):
            env[var] = str(threads)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        env["JAX_PLATFORMS"] = "cpu"
        if backend == "jax" and threads == 1:
            env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + XLA_ONE_THREAD).strip()
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", backend, "--threads", str(threads)]
        self.cpus = cpus[-1:] if threads == 1 else cpus[:threads]
        if pin and shutil.which("taskset"):
            cmd = ["taskset", "-c", ",".join(map(str, self.cpus))] + cmd
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                                     text=True, bufsize=1)
        self.alive, self.reason, self.info = True, "", {}

    def request(self, **msg):
        if not self.alive:
            return {"error": self.reason}
        try:
            self.proc.stdin.write(json.dumps(msg) + "\n")
            self.proc.stdin.flush()
            ready, _, _ = select.select([self.proc.stdout], [], [], self.timeout)
            if not ready:             # hung (e.g. a deadlocked thread pool): dump its stacks, kill it
                self.proc.send_signal(signal.SIGUSR1)
                time.sleep(0.5)
                self.proc.kill()
                self.alive = False
                self.reason = f"no answer to {msg['cmd']!r} within {self.timeout:g} s: killed (stacks on stderr)"
                return {"error": self.reason}
            line = self.proc.stdout.readline()
        except (BrokenPipeError, OSError) as exc:
            line, err = "", exc
        else:
            err = None
        if not line:
            self.alive = False
            self.reason = f"worker exited (status {self.proc.poll()}){': ' + str(err) if err else ''}"
            return {"error": self.reason}
        return json.loads(line)

    def close(self):
        if self.alive and self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.proc.stdin.flush()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def cpu_ticks(pids):
    """(busy ticks of the whole machine, ticks used by `pids`) from /proc."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        total = sum(fields[:8])
        busy = total - fields[3] - fields[4]
        ours = 0
        for pid in pids:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    st = f.read().rsplit(")", 1)[1].split()
                ours += int(st[11]) + int(st[12])
            except OSError:
                pass
        return total, busy, ours
    except OSError:
        return None


def others_cores(before, after, ncpu):
    """Average number of cores other processes kept busy between two cpu_ticks() samples."""
    if not before or not after or after[0] == before[0]:
        return None
    total, busy, ours = (a - b for a, b in zip(after, before))
    return max(0.0, (busy - ours) / total * ncpu)


def wait_until_quiet(minutes, threshold=0.25, sample_s=5.0, needed=3):
    """Wait (at most `minutes`) until other processes have used less than `threshold` cores
    in `needed` consecutive samples of `sample_s` seconds."""
    deadline = time.monotonic() + minutes * 60
    ncpu = os.cpu_count() or 1
    quiet = 0
    while True:
        a = cpu_ticks([os.getpid()])
        time.sleep(sample_s)
        busy = others_cores(a, cpu_ticks([os.getpid()]), ncpu)
        quiet = quiet + 1 if (busy is None or busy < threshold) else 0
        if quiet >= needed:
            print(f"machine quiet for {needed * sample_s:g} s (others use {busy or 0:.2f} cores)", flush=True)
            return
        if time.monotonic() > deadline:
            print(f"machine still busy (others use {busy:.2f} cores) after {minutes:g} min: running anyway",
                  flush=True)
            return
        print(f"waiting for a quiet machine: others use {busy:.2f} cores", flush=True)


def rel_diff(values, ref, forward):
    if forward:
        scale = max(max(abs(v) for row in ref for v in row), 1e-30)
        return max(abs(a - b) for ra, rb in zip(values, ref) for a, b in zip(ra, rb)) / scale
    return max(abs(a - b) / max(abs(b), 1e-30) for a, b in zip(values, ref))


def reference(spec, k):
    """The first k losses (F: outputs) of numpy-by-hand in float64 from the shared init."""
    import numpy as np
    from peers import numpy_by_hand
    runner = numpy_by_hand.Runner(spec, common.initial_weights(spec), common.batches(spec), dtype=np.float64)
    return runner.check(k)


def summarize_windows(wins, batch, forward):
    rates = [w["steps"] * batch / (w["ns"] * 1e-9) for w in wins]
    out = {"median": statistics.median(rates), "min": min(rates), "max": max(rates), "n": len(rates)}
    if forward:
        lat = [w["ns"] * 1e-3 / w["steps"] for w in wins]
        out.update(lat_us_median=statistics.median(lat), lat_us_min=min(lat), lat_us_max=max(lat))
    return out


def fmt_rate(x):
    if x is None:
        return "n/a"
    for div, suf in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if x >= div:
            v = x / div
            return f"{v:.3g}{suf}" if v < 100 else f"{v:.0f}{suf}"
    return f"{x:.3g}"


def fmt_us(x):
    return f"{x:.3g} µs" if x < 100 else f"{x:.0f} µs"


def fmt_ratio(x):
    if x is None:
        return "n/a"
    return f"{x:.2f}×" if x < 10 else f"{x:.1f}×"


def cell(st, forward):
    """'812k [790k–830k] 2t' or '11.2 µs [10.9–12.0] 1t'."""
    if forward:
        return (f"{fmt_us(st['lat_us_median'])} [{st['lat_us_min']:.3g}–{st['lat_us_max']:.3g}] "
                f"{st['threads']}t")
    return f"{fmt_rate(st['median'])} [{fmt_rate(st['min'])}–{fmt_rate(st['max'])}] {st['threads']}t"


def run_workload(wid, args, workers, report):
    spec = common.workload(wid, args.quick)
    forward = spec["kind"] == "forward"
    print(f"\n=== {wid}: {common.describe(spec)}", flush=True)
    res = {"id": wid, "spec": {k: v for k, v in spec.items()}, "describe": common.describe(spec),
           "configs": {}, "check": {}}
    live = [w for w in workers if w.alive and w.info.get("available")]

    # 1. build everywhere, same weights and data
    fps = {}
    for w in live:
        r = w.request(cmd="setup", wid=wid, quick=args.quick)
        if "error" in r:
            res["configs"][w.key] = {"error": r["error"]}
            print(f"  {w.key:16s} setup FAILED: {r['error']}", flush=True)
            if r.get("traceback"):
                print(r["traceback"], file=sys.stderr)
            continue
        fps[w.key] = r["fingerprint"]
    if len(set(fps.values())) > 1:
        raise SystemExit(f"workers disagree on the initial weights/data: {fps}")
    live = [w for w in live if w.key in fps]

    # 2. correctness gate: first steps' losses against numpy in float64
    k = args.check_steps_e if wid == "E" else args.check_steps
    k = 4 if forward else k
    t0 = time.perf_counter()
    ref = reference(spec, k)
    print(f"  reference (numpy float64, {k} {'outputs' if forward else 'steps'}) in "
          f"{time.perf_counter() - t0:.1f}s; "
          + ("" if forward else f"loss {ref[0]:.6g} -> {ref[-1]:.6g}"), flush=True)
    res["check"]["reference"] = ref
    wrong = []
    for w in list(live):
        r = w.request(cmd="check", k=k)
        if "error" in r:
            res["configs"][w.key] = {"error": r["error"]}
            print(f"  {w.key:16s} check FAILED to run: {r['error']}", flush=True)
            if r.get("traceback"):
                print(r["traceback"], file=sys.stderr)
            live.remove(w)
            continue
        d = rel_diff(r["values"], ref, forward)
        ok = d <= args.check_rtol
        res["check"][w.key] = {"max_rel_diff": d, "ok": ok, "values": r["values"]}
        print(f"  {w.key:16s} check max rel diff {d:.2e} {'ok' if ok else 'DISAGREES'}", flush=True)
        if not ok:
            wrong.append(w)
    for b in PYBACKPROP:   # not required, but worth knowing: are pybackprop's 1t and 2t results identical?
        v = [res["check"].get(f"{b}@{t}t", {}).get("values") for t in args.threads]
        if len(v) > 1 and all(x is not None for x in v):
            same = all(x == v[0] for x in v)
            res["check"][f"{b}_threads_bit_identical"] = same
            print(f"  {b}: results at {'/'.join(map(str, args.threads))} threads "
                  f"{'bit-identical' if same else 'DIFFER (not bit-identical)'}", flush=True)
    if wrong:
        names = ", ".join(w.key for w in wrong)
        msg = (f"!!! {wid}: {names} computed something else: loss/output beyond rtol {args.check_rtol:g} "
               f"of numpy float64")
        print("\n" + "!" * len(msg) + "\n" + msg + "\n" + "!" * len(msg), flush=True)
        if not args.keep_going:
            raise SystemExit(1)
        for w in wrong:
            res["configs"][w.key] = {"error": "WRONG: failed the loss-agreement check"}
            live.remove(w)

    # 3. warm up and calibrate
    window_s = args.window_s
    for w in live:
        r = w.request(cmd="warmup", seconds=args.warmup_s, min_steps=1 if wid == "E" else 5,
                      window_s=window_s)
        if "error" in r:
            res["configs"][w.key] = {"error": r["error"]}
            print(f"  {w.key:16s} warm-up FAILED: {r['error']}", flush=True)
            continue
        w.spw = r["steps_per_window"]
        res["configs"][w.key] = {"backend": w.backend, "threads": w.threads, "step_s_warmup": r["step_s"],
                                 "steps_per_window": w.spw, "windows": []}
    live = [w for w in live if "windows" in res["configs"].get(w.key, {})]

    # 4. interleaved timed windows
    n_windows = args.windows_e if wid == "E" else args.windows
    pids = [os.getpid()] + [w.proc.pid for w in workers]
    t_start = time.perf_counter()
    loads = []
    for rnd in range(n_windows):
        shift = rnd % max(1, len(live))
        order = live[shift:] + live[:shift]
        before = cpu_ticks(pids)
        for pos, w in enumerate(order):
            time.sleep(args.settle_s)
            r = w.request(cmd="window", n=w.spw, cap_s=4 * window_s)
            if "error" in r:
                print(f"  {w.key:16s} window FAILED: {r['error']}", flush=True)
                res["configs"][w.key]["error"] = r["error"]
                continue
            r.update(round=rnd, position=pos, t=time.perf_counter() - t_start)
            res["configs"][w.key]["windows"].append(r)
        oc = others_cores(before, cpu_ticks(pids), os.cpu_count() or 1)
        loads.append(oc)
    res["others_cores_per_round"] = loads
    res["elapsed_s"] = time.perf_counter() - t_start
    for w in live:
        w.request(cmd="teardown")

    # 5. statistics: per config, best thread setting per backend
    best = {}
    for key, c in res["configs"].items():
        if not c.get("windows"):
            continue
        st = summarize_windows(c["windows"], spec["batch"], forward)
        st["threads"] = c["threads"]
        c["stats"] = st
        b = c["backend"]
        if b not in best or st["median"] > best[b]["median"]:
            best[b] = dict(st, key=key)
    res["best"] = best
    peers = {b: s for b, s in best.items() if b in PEERS}
    pbs = {b: s for b, s in best.items() if b in PYBACKPROP}
    res["best_peer"] = max(peers, key=lambda b: peers[b]["median"]) if peers else None
    res["pb_best"] = max(pbs, key=lambda b: pbs[b]["median"]) if pbs else None
    ratios = {}
    if res["best_peer"]:
        bp = peers[res["best_peer"]]["median"]
        for b in PYBACKPROP:
            ratios[f"{b}/best_peer"] = best[b]["median"] / bp if b in best else None
        if res["pb_best"]:
            pbm = pbs[res["pb_best"]]["median"]
            for b in PEERS:
                ratios[f"pb/{b}"] = pbm / best[b]["median"] if b in best else None
            ratios["pb/best_peer"] = pbm / bp
    res["ratios"] = ratios
    res["target"] = TARGETS[wid]
    pbr = ratios.get("pb/best_peer")
    res["met"] = None if pbr is None else pbr >= TARGETS[wid]
    for key, c in res["configs"].items():
        if "stats" in c:
            print(f"  {key:16s} {cell(c['stats'], forward)}  ({c['stats']['n']} windows × "
                  f"{c['steps_per_window']} steps)", flush=True)
    oc = [x for x in loads if x is not None]
    print(f"  {res['elapsed_s']:.1f}s timed; other processes used "
          f"{(statistics.mean(oc) if oc else float('nan')):.2f} cores on average", flush=True)
    report.append(res)
    return res


# ----------------------------------------------------------------------------------------------
# Reporting
# ----------------------------------------------------------------------------------------------
def machine_info():
    info = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "python": platform.python_version(), "platform": platform.platform(),
            "cpu_count": os.cpu_count(), "affinity": sorted(os.sched_getaffinity(0))}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            k, _, v = line.partition(":")
            k, v = k.strip(), v.strip()
            if k in ("Model name", "Core(s) per socket", "Thread(s) per core", "Socket(s)", "CPU(s)",
                     "L2 cache", "L3 cache", "Hypervisor vendor"):
                info["lscpu " + k] = v
        flags = [f for f in ("avx2", "fma", "avx512f") if f" {f} " in out.replace("\n", " ")]
        info["isa flags"] = " ".join(flags)
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def tables(report, meta):
    backends = [b for b in MODULES]
    lines = []
    add = lines.append
    add(f"Samples/s of whole training steps (F: latency of one batch-1 forward call), median over the "
        f"timed windows [min–max], at the framework's best thread setting (1t/2t). Speed-ups are "
        f"pybackprop ÷ peer (> 1: pybackprop is faster); \"pybackprop\" in the ratios is the better "
        f"of its two columns.")
    add("")
    add("| id | workload | " + " | ".join(LABELS[b] for b in backends) + " |")
    add("|---|---|" + "---|" * len(backends))
    for res in report:
        fwd = res["spec"]["kind"] == "forward"
        cells = []
        for b in backends:
            st = res["best"].get(b)
            if st:
                cells.append(cell(st, fwd))
            else:
                errs = [c.get("error", "") for k, c in res["configs"].items() if k.startswith(b + "@")]
                why = meta["unavailable"].get(b) or next((e for e in errs if e), "")
                cells.append("WRONG" if why.startswith("WRONG") else ("failed" if errs and not
                                                                     meta["unavailable"].get(b) else "n/a"))
        add(f"| {res['id']} | {res['describe']} | " + " | ".join(cells) + " |")
    add("")
    add("| id | best peer | eager ÷ best peer | compiled ÷ best peer | pybackprop ÷ numpy | "
        "pybackprop ÷ torch | pybackprop ÷ jax | target | met |")
    add("|---|---|---|---|---|---|---|---|---|")
    for res in report:
        r = res["ratios"]
        bp = res["best_peer"]
        bps = f"{LABELS[bp]} ({res['best'][bp]['threads']}t)" if bp else "n/a"
        met = "n/a" if res["met"] is None else ("**yes**" if res["met"] else "no")
        add(f"| {res['id']} | {bps} | {fmt_ratio(r.get('pb_eager/best_peer'))} | "
            f"{fmt_ratio(r.get('pb_compiled/best_peer'))} | {fmt_ratio(r.get('pb/numpy'))} | "
            f"{fmt_ratio(r.get('pb/torch'))} | {fmt_ratio(r.get('pb/jax'))} | {TARGET_TEXT[res['id']]} | {met} |")
    return lines


def detail_table(report, threads):
    lines = ["| id | " + " | ".join(f"{LABELS[b]} {t}t" for b in MODULES for t in threads) + " |",
             "|---|" + "---|" * (len(MODULES) * len(threads))]
    for res in report:
        fwd = res["spec"]["kind"] == "forward"
        cells = []
        for b in MODULES:
            for t in threads:
                c = res["configs"].get(f"{b}@{t}t", {})
                st = c.get("stats")
                if not st:
                    cells.append("n/a")
                elif fwd:
                    cells.append(f"{st['lat_us_median']:.3g} µs")
                else:
                    cells.append(f"{fmt_rate(st['median'])} (±{(st['max'] - st['min']) / 2 / st['median'] * 100:.0f}%)")
        lines.append(f"| {res['id']} | " + " | ".join(cells) + " |")
    return lines


def check_table(report, threads):
    lines = ["| id | " + " | ".join(f"{LABELS[b]} {t}t" for b in MODULES for t in threads) + " |",
             "|---|" + "---|" * (len(MODULES) * len(threads))]
    for res in report:
        cells = []
        for b in MODULES:
            for t in threads:
                c = res["check"].get(f"{b}@{t}t")
                cells.append("n/a" if not c else f"{c['max_rel_diff']:.1e}" + ("" if c["ok"] else " WRONG"))
        lines.append(f"| {res['id']} | " + " | ".join(cells) + " |")
    return lines


def machine_lines(meta):
    m = meta["machine"]
    v = meta["versions"]
    load = meta["load"]
    cpu = m.get("lscpu Model name", platform.processor())
    out = [f"- Machine: {cpu}, {m.get('cpu_count')} CPUs "
           f"({m.get('lscpu Core(s) per socket', '?')} cores/socket × {m.get('lscpu Socket(s)', '?')}, "
           f"{m.get('lscpu Thread(s) per core', '?')} thread/core), L2 {m.get('lscpu L2 cache', '?')}, "
           f"L3 {m.get('lscpu L3 cache', '?')}, flags {m.get('isa flags', '')}"
           + (f", hypervisor {m['lscpu Hypervisor vendor']}" if m.get("lscpu Hypervisor vendor") else ""),
           f"- Date: {m['date']}; run took {meta['elapsed_s'] / 60:.1f} min "
           f"({'--quick' if meta['args']['quick'] else 'default settings'}; {meta['args']['windows']} windows of "
           f"~{meta['args']['window_s']} s, E {meta['args']['windows_e']})",
           "- Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
           f"- Load: os.getloadavg() {tuple(round(x, 2) for x in load['start'])} at start, "
           f"{tuple(round(x, 2) for x in load['end'])} at end; other processes kept "
           f"{load['others_cores_mean']:.2f} cores busy on average during the timed rounds "
           f"(max {load['others_cores_max']:.2f} of {m.get('cpu_count')})",
           *([f"- Core distance: after {h['near'] + h['far']} of pybackprop's 2-thread windows its thread pool "
              f"measured the handoff between its two threads: {h['near']} near (≤ 80 ns, the vCPUs on one die), "
              f"{h['far']} far (> 80 ns); median over all {h['median']:.0f} ns, max {h['max']:.0f}"]
             if (h := meta.get("handoff_ns")) and h["near"] + h["far"] else []),
           f"- Threads: every framework at {', '.join(str(t) for t in meta['args']['threads'])} thread(s), "
           f"each (framework, threads) its own process{', pinned with taskset' if meta['args']['pin'] else ''}; "
           f"interleaved round-robin windows (see the docstring of benchmarks/run.py)"]
    if meta["unavailable"]:
        out.append("- Not measured: " + "; ".join(f"{LABELS[b]}: {why}" for b, why in meta["unavailable"].items()))
    return out


def write_results_md(path, section_lines):
    head = "## Peers (run.py)"
    text = open(path).read() if os.path.exists(path) else "# Benchmark results\n"
    body = head + "\n\n" + "\n".join(section_lines).rstrip() + "\n"
    lines = text.splitlines(keepends=True)
    start = next((i for i, l in enumerate(lines) if l.strip() == head), None)
    if start is None:
        new = text.rstrip("\n") + "\n\n" + body
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        tail = "".join(lines[end:])
        new = "".join(lines[:start]) + body + ("\n" + tail if tail else "")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(new)
    os.replace(tmp, path)


def plot(report, path_png):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception as exc:
        print(f"(no chart: matplotlib unavailable: {exc})")
        return False
    backends = list(MODULES)
    colors = {"pb_eager": "#1f77b4", "pb_compiled": "#08306b", "numpy": "#ff7f0e", "torch": "#d62728",
              "jax": "#2ca02c"}
    fig, ax = plt.subplots(figsize=(11, 5))
    width = 0.8 / len(backends)
    xs = range(len(report))
    ymax = 1.0
    for j, b in enumerate(backends):
        vals = []
        for res in report:
            st, bp = res["best"].get(b), res["best_peer"]
            vals.append(st["median"] / res["best"][bp]["median"] if st and bp else 0.0)
        pos = [x - 0.4 + width * (j + 0.5) for x in xs]
        bars = ax.bar(pos, [v if v > 0 else float("nan") for v in vals], width, label=LABELS[b], color=colors[b])
        for rect, v in zip(bars, vals):
            if v > 0:
                ymax = max(ymax, v)
                ax.annotate(f"{v:.2g}", (rect.get_x() + rect.get_width() / 2, v), ha="center", va="bottom",
                            fontsize=7, xytext=(0, 1), textcoords="offset points")
    for x, res in zip(xs, report):
        t = TARGETS[res["id"]]
        ax.plot([x - 0.42, x + 0.42], [t, t], color="black", linestyle="--", linewidth=1)
        ymax = max(ymax, t)
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_ylim(top=ymax * 2)
    ax.set_xticks(list(xs))
    ax.set_xticklabels([f"{r['id']}\n{r['describe'].split(',')[0]}" for r in report], fontsize=8)
    ax.set_ylabel("speed relative to the best peer (log)")
    ax.set_title("pybackprop vs peers, best thread setting each (dashed: target)")
    ax.legend(fontsize=8, ncol=5, loc="upper left")
    fig.tight_layout()
    fig.savefig(path_png, dpi=110)
    plt.close(fig)
    return True


def readme_snippet(report, meta):
    lines = ["<!-- generated by benchmarks/run.py; see benchmarks/RESULTS.md for ranges and every setting -->",
             "| workload | best peer | pybackprop eager | pybackprop compiled | speed-up vs best peer | target |",
             "|---|---|---|---|---|---|"]
    for res in report:
        fwd = res["spec"]["kind"] == "forward"
        bp = res["best_peer"]

        def show(b):
            st = res["best"].get(b)
            if not st:
                return "n/a"
            return (fmt_us(st["lat_us_median"]) if fwd else fmt_rate(st["median"]) + "/s") + f" ({st['threads']}t)"
        bps = f"{LABELS[bp]}: {show(bp)}" if bp else "n/a"
        r = res["ratios"].get("pb/best_peer")
        mark = "" if res["met"] is None else (" ✓" if res["met"] else " ✗")
        add = f"{fmt_ratio(r)}{mark}"
        lines.append(f"| {res['id']} {res['describe']} | {bps} | {show('pb_eager')} | {show('pb_compiled')} | "
                     f"{add} | {TARGET_TEXT[res['id']]} |")
    m = meta["machine"]
    lines += ["", f"Measured {m['date']} on {m.get('lscpu Model name', '?')} ({m.get('cpu_count')} CPUs), "
              f"each framework at its best of 1 and 2 threads, interleaved in one run "
              f"(`python benchmarks/run.py`). ![speed relative to the best peer](benchmarks/results/latest.png)"]
    return lines


# ----------------------------------------------------------------------------------------------
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="3 short windows, small E: a smoke run")
    p.add_argument("--only", default="A,B,C,D,E,F", help="workloads, e.g. A,D,F")
    p.add_argument("--backends", default=",".join(MODULES), help="subset of " + ",".join(MODULES))
    p.add_argument("--threads", default="1,2", help="thread settings to measure (default 1,2)")
    p.add_argument("--windows", type=int, default=None, help="timed windows per config (default 7; quick 3)")
    p.add_argument("--windows-e", type=int, default=None, help="timed windows for E (default 5; quick 3)")
    p.add_argument("--window-s", type=float, default=None, help="seconds per window (default 0.25; quick 0.1)")
    p.add_argument("--warmup-s", type=float, default=None, help="warm-up seconds per config (default 0.5)")
    p.add_argument("--settle-s", type=float, default=0.1, help="pause between windows (default 0.1 s)")
    p.add_argument("--check-steps", type=int, default=10, help="training steps compared (default 10)")
    p.add_argument("--check-steps-e", type=int, default=2, help="training steps compared on E (default 2)")
    p.add_argument("--check-rtol", type=float, default=1e-4, help="max relative loss difference (default 1e-4)")
    p.add_argument("--keep-going", action="store_true", help="mark a disagreeing backend WRONG instead of stopping")
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="MIN",
                   help="first wait up to MIN minutes until other processes use < 0.25 cores")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds before a silent worker counts as hung")
    p.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin workers with taskset")
    p.add_argument("--out-dir", default=os.path.join(HERE, "results"))
    p.add_argument("--results-md", default=os.path.join(HERE, "RESULTS.md"))
    p.add_argument("--readme-snippet", default="/work/team/README_bench.md")
    p.add_argument("--no-write", action="store_true", help="print only; write no files")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.threads = [int(t) for t in args.threads.split(",")]
    if args.worker:
        return worker_main(args.worker, args.threads[0])
    q = args.quick
    args.windows = args.windows or (3 if q else 7)
    args.windows_e = args.windows_e or (3 if q else 5)
    args.window_s = args.window_s or (0.1 if q else 0.25)
    args.warmup_s = args.warmup_s or (0.2 if q else 0.5)
    only = [w.strip().upper() for w in args.only.split(",") if w.strip()]
    bad = [w for w in only if w not in common.WORKLOADS]
    if bad:
        p.error(f"unknown workload(s) {bad}; choose from {','.join(common.WORKLOADS)}")
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    bad = [b for b in backends if b not in MODULES]
    if bad:
        p.error(f"unknown backend(s) {bad}; choose from {','.join(MODULES)}")

    cpus = sorted(os.sched_getaffinity(0))
    threads = [t for t in args.threads if t <= len(cpus)]
    if threads != args.threads:
        print(f"(only {len(cpus)} CPUs: measuring threads {threads})")
    args.threads = threads
    if args.wait_quiet > 0:
        wait_until_quiet(args.wait_quiet)
    t_run = time.perf_counter()
    load_start = os.getloadavg()
    print(f"load average at start: {load_start}", flush=True)

    workers = [Worker(b, t, cpus, args.pin, args.timeout) for b in backends for t in threads]
    unavailable, versions = {}, {"python": platform.python_version()}
    for w in workers:
        r = w.request(cmd="hello")
        w.info = r if "error" not in r else {"available": False, "reason": r["error"]}
        if not w.info.get("available"):
            unavailable.setdefault(w.backend, w.info.get("reason", "?"))
        else:
            for k, v in w.info.get("versions", {}).items():
                if not k.endswith("threads") and k != "xla_flags":
                    versions.setdefault(k, v)
        print(f"  worker {w.key:16s} pid {w.info.get('pid', '-')} cpus {w.info.get('affinity', '-')} "
              + ("ok" if w.info.get("available") else f"n/a: {w.info.get('reason')}"), flush=True)

    report = []
    try:
        for wid in only:
            run_workload(wid, args, workers, report)
    finally:
        for w in workers:
            w.close()

    load_end = os.getloadavg()
    oc = [x for res in report for x in res.get("others_cores_per_round", []) if x is not None]
    handoffs = [win["handoff_ns"] for res in report for c in res["configs"].values()
                for win in c.get("windows", []) if win.get("handoff_ns", -1) >= 0]
    meta = {"machine": machine_info(), "versions": versions, "unavailable": unavailable,
            "elapsed_s": time.perf_counter() - t_run,
            "args": {k: v for k, v in vars(args).items() if k != "worker"},
            "workers": {w.key: {k: v for k, v in w.info.items()} for w in workers},
            "load": {"start": load_start, "end": load_end,
                     "others_cores_mean": statistics.mean(oc) if oc else float("nan"),
                     "others_cores_max": max(oc) if oc else float("nan")},
            "handoff_ns": {"near": sum(h <= 80 for h in handoffs), "far": sum(h > 80 for h in handoffs),
                           "median": statistics.median(handoffs) if handoffs else float("nan"),
                           "max": max(handoffs) if handoffs else float("nan")}}
    tab = tables(report, meta)
    section = ["Generated by `python benchmarks/run.py` — do not edit by hand.", ""] + machine_lines(meta) + [""] + tab
    section += ["", "All settings (median samples/s, ± half the min–max range; F: latency):", ""]
    section += detail_table(report, threads)
    section += ["", "Loss-agreement check (max relative difference to numpy float64 over the first steps):", ""]
    section += check_table(report, threads)

    print("\n" + "\n".join(machine_lines(meta)) + "\n\n" + "\n".join(tab))
    print("\n" + "\n".join(detail_table(report, threads)))
    if args.no_write:
        return 0
    os.makedirs(args.out_dir, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    blob = {"meta": meta, "workloads": report, "table_markdown": "\n".join(tab)}
    for name in (f"{stamp}.json", "latest.json"):
        with open(os.path.join(args.out_dir, name), "w") as f:
            json.dump(blob, f, indent=1, default=float)
    if plot(report, os.path.join(args.out_dir, f"{stamp}.png")):
        shutil.copyfile(os.path.join(args.out_dir, f"{stamp}.png"), os.path.join(args.out_dir, "latest.png"))
        section += ["", f"![speed relative to the best peer](results/latest.png)"]
    write_results_md(args.results_md, section)
    if args.readme_snippet:
        with open(args.readme_snippet, "w") as f:
            f.write("\n".join(readme_snippet(report, meta)) + "\n")
    print(f"\nwrote {args.out_dir}/{stamp}.json, latest.json, latest.png, {args.results_md}"
          + (f", {args.readme_snippet}" if args.readme_snippet else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
