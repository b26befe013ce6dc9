"""Time and peak memory of one call, shared by the kernel benchmarks.

Time: the best of repeated calls after a warm-up. Peak memory beyond the inputs, measured in a fresh process:

CPU: the growth of the resident set, sampled while the call runs (ru_maxrss would also hold the peak of
`import torch`); the child runs with MALLOC_MMAP_THRESHOLD_ set so that every large tensor is its own mapping,
returned to the OS when freed. CUDA: max_memory_allocated.
"""
import json
import os
import subprocess
import sys
import threading
import time

import torch


def sync(device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def best_ms(call, device: torch.device, budget_s: float = 2.0, max_reps: int = 20) -> float:
    "Best time of `call()` in ms: one warm-up, then repetitions until `budget_s` or `max_reps`."
    call()
    sync(device)
    best, spent, reps = float("inf"), 0.0, 0
    while reps < max_reps and (reps < 2 or spent < budget_s):
        start = time.perf_counter()
        call()
        sync(device)
        elapsed = time.perf_counter() - start
        best, spent, reps = min(best, elapsed), spent + elapsed, reps + 1
    return 1e3 * best


def resident_mb() -> float:
    "This process's resident set now (Linux)."
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb_of(call, device: torch.device) -> float:
    "Peak memory (MB) that `call()` adds while it runs; warm it up first so one-time initialisation is not counted."
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        call()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    base, peak, running = resident_mb(), [0.0], [True]

    def sample():
        while running[0]:
            peak[0] = max(peak[0], resident_mb())
            time.sleep(0.0005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    call()
    running[0] = False
    sampler.join()
    return max(peak[0], resident_mb()) - base


def peak_mb_in_fresh_process(module: str, case: dict, impl: str, device, threads: int) -> float:
    "`bench/<module>.py`'s `peak_mb_child(case, impl, device)`, run in a fresh Python."
    code = (f"import json, sys; sys.path.insert(0, 'bench'); import torch, {module} as bench; "
            f"torch.set_num_threads({threads}); "
            f"print(json.dumps(bench.peak_mb_child(json.loads(sys.argv[1]), {impl!r}, {str(device)!r})))")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(case)], capture_output=True, text=True, check=True,
                         env={**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"},
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return json.loads(out.stdout.strip().splitlines()[-1])
