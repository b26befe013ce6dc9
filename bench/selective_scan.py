"""Mamba's selective scan, forward and forward+backward, at VCMamba's shapes, every implementation side by side in one run.

    python bench/selective_scan.py [--threads 2] [--quick] [--chunks 4,8,16]

VCMamba runs four scans per Mamba block (one per scan order) at E = 2·C4 channels, N = 16 states, L = H·W tokens of
the 7x7 (224 px) or 14x14 (448 px) stage-4 map. Rows: batch 8 (two images x four orders), E = 576 (VCMamba-S) and
1024 (VCMamba-B), L = 49 and 196; `--quick` keeps E = 576. Inputs as Mamba makes them: Δ = softplus(δ + δ_bias),
A = −(1..16) (S4D-real), D and δ_bias present; float32.

Columns: milliseconds (best of the timed repetitions) of the forward alone and of forward+backward, and peak extra
memory of one forward+backward in a fresh process (CPU: growth of the sampled resident set; CUDA:
max_memory_allocated), for the Python-loop reference, the chunked PyTorch fast path, the compiled C loops (`native`,
CPU, when a C compiler is there) and, when CUDA is available, the Triton kernels; then the ratios reference / ours.
`--chunks` adds the fast path at those chunk lengths (time only).
"""
import argparse
import os

import pandas as pd
import torch

from measure import best_ms, peak_mb_in_fresh_process, peak_mb_of
from workbench.kernels.selective_scan import selective_scan, selective_scan_fast
from workbench.kernels.selective_scan_native import native_available

STATES = 16
MODELS = {"S": 576, "B": 1024}  # VCMamba variant -> E = 2·C4
TOKENS = {"224": 49, "448": 196}  # input px -> L of the 7x7 / 14x14 stage-4 map


def cases(quick: bool):
    for model, E in MODELS.items():
        if quick and model != "S":
            continue
        for px, L in TOKENS.items():
            yield dict(model=f"VCMamba-{model}", px=px, Bt=8, E=E, N=STATES, L=L)


def inputs(case, device, requires_grad=True):
    "u, delta, A, B, C, D, delta_bias as a VCMamba block makes them, each a leaf."
    torch.manual_seed(0)
    Bt, E, N, L = case["Bt"], case["E"], case["N"], case["L"]
    tensors = [torch.randn(Bt, E, L), torch.randn(Bt, E, L) - 4, -torch.arange(1.0, N + 1).repeat(E, 1),
               torch.randn(Bt, N, L), torch.randn(Bt, N, L), torch.ones(E), torch.randn(E) * 0.5]
    return [t.to(device).requires_grad_(requires_grad) for t in tensors]


def run(tensors, impl, backward: bool, chunk=None):
    if chunk is not None:
        y = selective_scan_fast(*tensors, delta_softplus=True, chunk=chunk)
    else:
        y = selective_scan(*tensors, delta_softplus=True, impl=impl)
    if backward:
        y.backward(torch.ones_like(y))


def time_ms(case, impl, device, backward: bool, chunk=None, budget_s=2.0, max_reps=20) -> float:
    "Best time in ms: one warm-up, then repetitions until `budget_s` or `max_reps`."
    tensors = inputs(case, device, requires_grad=backward)

    def call():
        for t in tensors:
            t.grad = None
        run(tensors, impl, backward, chunk)

    return best_ms(call, device, budget_s, max_reps)


def peak_mb_child(case, impl, device_name):
    "Run in a fresh process: peak memory (MB) of one forward+backward beyond its inputs."
    device = torch.device(device_name)
    # a tiny call first, so that one-time initialisation (thread pools, caches, kernel builds) is not counted
    run(inputs({**case, "Bt": 1, "E": 2}, device), impl, True)
    tensors = inputs(case, device)
    return peak_mb_of(lambda: run(tensors, impl, True), device)


def peak_mb(case, impl, device, threads) -> float:
    return peak_mb_in_fresh_process("selective_scan", case, impl, device, threads)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--quick", action="store_true", help="VCMamba-S (E = 576) only")
    parser.add_argument("--chunks", default="", help="comma-separated chunk lengths to time the fast path at")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    impls = ["reference", "fast"] + (["triton"] if device.type == "cuda" else ["native"] if native_available() else [])
    chunks = [int(c) for c in args.chunks.split(",") if c]
    rows = []
    for case in cases(args.quick):
        row = {k: case[k] for k in ("model", "px", "Bt", "E", "L")}
        for impl in impls:
            row[f"{impl}_fwd_ms"] = time_ms(case, impl, device, backward=False)
            row[f"{impl}_fwdbwd_ms"] = time_ms(case, impl, device, backward=True)
            row[f"{impl}_MB"] = peak_mb(case, impl, device, args.threads)
        for impl in impls[1:]:
            row[f"fwd_x_{impl}"] = row["reference_fwd_ms"] / row[f"{impl}_fwd_ms"]
            row[f"fwdbwd_x_{impl}"] = row["reference_fwdbwd_ms"] / row[f"{impl}_fwdbwd_ms"]
            row[f"memory_{impl}"] = row[f"{impl}_MB"] / max(row["reference_MB"], 1e-9)
        for chunk in chunks:
            row[f"T{chunk}_fwdbwd_ms"] = time_ms(case, "fast", device, backward=True, chunk=chunk)
        rows.append(row)
        print(pd.DataFrame([row]).to_string(index=False, header=len(rows) == 1, float_format="%.2f"), flush=True)
    table = pd.DataFrame(rows)
    print(f"\nselective_scan on {device} ({torch.get_num_threads()} threads), torch {torch.__version__}")
    print(table.to_string(index=False, float_format="%.2f"))


if __name__ == "__main__":
    main()
