"""One compiled training step of run.py's workloads, on two SIMD paths of the same process.

The path is switched (_core._set_isa) before every timed window, in alternating order, so both
paths see the same weights, data, threads and machine load; the paths give bit-identical
results, so only the speed differs. The figure is the median over rounds of the per-round ratio
(second path ÷ first), with its range. This is the measurement behind the avx512 path's zmm
GEMM microkernels (csrc/gemm/gemm_avx512.cpp).

    python benchmarks/bench_isa_paths.py                     # B, C at 1 and 2 threads
    python benchmarks/bench_isa_paths.py --only C,E --threads 2 --rounds 10
    python benchmarks/bench_isa_paths.py --paths generic,avx2

Pin it yourself for steadier figures: taskset -c 0,1 python benchmarks/bench_isa_paths.py
"""
import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import pybackprop as pb  # noqa: E402
from pybackprop import _core  # noqa: E402

from peers import common  # noqa: E402
from peers import pybackprop_compiled  # noqa: E402


def measure(wid, threads, paths, rounds, window_s):
    pb.set_num_threads(threads)
    spec = common.workload(wid)
    if spec["kind"] != "train":
        raise SystemExit(f"{wid} is not a training workload")
    runner = pybackprop_compiled.build(spec, common.initial_weights(spec), common.batches(spec))
    runner.run(2)
    t0 = time.perf_counter()
    runner.run(2)
    steps = max(1, round(window_s / ((time.perf_counter() - t0) / 2)))
    rates = {p: [] for p in paths}
    for r in range(rounds):
        for p in (paths if r % 2 == 0 else paths[::-1]):
            _core._set_isa(p)
            runner.run(1)  # the first step on a path after a switch is not timed
            t0 = time.perf_counter()
            runner.run(steps)
            rates[p].append(spec["batch"] * steps / (time.perf_counter() - t0))
    return rates


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default="B,C", help="training workloads of run.py, e.g. B,C,E")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--paths", default=None, help="two SIMD paths (default: avx2 and the best one)")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--window-s", type=float, default=0.25)
    args = ap.parse_args(argv)
    supported = list(_core.supported_isas())
    paths = args.paths.split(",") if args.paths else ["avx2", supported[-1]]
    if len(paths) != 2 or any(p not in supported for p in paths) or paths[0] == paths[1]:
        raise SystemExit(f"--paths: two different paths of {supported} (this CPU), got {paths}")
    before = _core.active_isa()
    print(f"pybackprop {pb.__version__}; paths {paths[0]} -> {paths[1]}; {args.rounds} alternating rounds "
          f"of ~{args.window_s} s windows; median samples/s [min-max]")
    try:
        for wid in args.only.split(","):
            for threads in (int(t) for t in args.threads.split(",")):
                rates = measure(wid, threads, paths, args.rounds, args.window_s)
                ratio = sorted(b / a for a, b in zip(rates[paths[0]], rates[paths[1]]))
                cells = "  ".join(f"{p} {statistics.median(v):,.0f} [{min(v):,.0f}-{max(v):,.0f}]"
                                  for p, v in rates.items())
                print(f"{wid} {threads}t  {cells}  {paths[1]}/{paths[0]} {statistics.median(ratio):.3f} "
                      f"[{ratio[0]:.3f}-{ratio[-1]:.3f}]", flush=True)
    finally:
        _core._set_isa(before)


if __name__ == "__main__":
    main()
