"""`na2d_av` forward+backward at the shapes OverLoCK runs, every implementation side by side in one run.

    python bench/na2d.py [--threads 2] [--quick]

One row per distinct shape, labelled with the models (xt, t) and input sizes that produce it: ContMix calls `na2d_av`
twice per block, with the 5x5 kernel on one channel half and the KxK kernel (13 in stage 3, 7 in stage 4) on the other.
Batch 8 and 32 (`--quick`: 32), and 8 alone for the segmentation-sized maps. Inputs smaller than K·16 px are
upsampled to a KxK grid (so 32 and 64 px inputs give the same shapes); 224 px gives 14x14 / 7x7 maps; 1024 px
(segmentation-sized) gives 64x64 / 32x32 maps.

Columns: milliseconds per forward+backward (best of the timed repetitions) and peak extra memory of one
forward+backward in a fresh process (CPU: growth of the sampled resident set; CUDA: max_memory_allocated), for the unfold
reference, the lean path and, when CUDA is available, the Triton kernels; then the ratios reference / ours.
"""
import argparse
import os

import pandas as pd
import torch

from measure import best_ms, peak_mb_in_fresh_process, peak_mb_of
from workbench.kernels.na2d import na2d_av

# (model, Focus stage) -> (groups G, channels per group c); c = C / (2 G)
STAGES = {("overlock_xt", 3): (8, 16), ("overlock_xt", 4): (12, 14),
          ("overlock_t", 3): (8, 16), ("overlock_t", 4): (16, 16)}
# input px -> (stage-3 map, stage-4 map) that ContMix sees
MAPS = {"32-64": (13, 7), "224": (14, 7), "1024": (64, 32)}
LARGE_K = {3: 13, 4: 7}


def cases(quick: bool):
    "Distinct (groups, channels, map, kernel) shapes, labelled with every (model, input size) that produces them."
    found = {}
    for (model, stage), (G, c) in STAGES.items():
        for px, maps in MAPS.items():
            side = maps[stage - 3]
            if quick and (model != "overlock_xt" or px == "1024"):
                continue
            for k in (5, LARGE_K[stage]):
                key = (stage, G, c, side, k)
                models, sizes = found.setdefault(key, ([], []))
                models.append(model) if model not in models else None
                sizes.append(px) if px not in sizes else None
    for (stage, G, c, side, k), (models, sizes) in found.items():
        # classification-sized maps at batch 8 and 32 (`--quick`: 32); segmentation-sized maps at batch 8
        for batch in (8,) if side > 16 else (32,) if quick else (8, 32):
            yield dict(model="/".join(m.removeprefix("overlock_") for m in models), px="/".join(sizes), stage=stage,
                       batch=batch, map=f"{side}x{side}", K=k, G=G, c=c, side=side)


def inputs(case, device, requires_grad=True):
    # filled in place, so that creating them leaves no freed temporaries behind to hide the op's own peak
    torch.manual_seed(0)
    shape = (case["batch"], case["G"], case["side"], case["side"])
    attn = torch.rand(*shape, case["K"] ** 2, device=device) / case["K"] ** 2
    value = torch.randn(*shape, case["c"], device=device)
    return attn.requires_grad_(requires_grad), value.requires_grad_(requires_grad)


def step(attn, value, case, impl):
    out = na2d_av(attn, value, case["K"], impl=impl)
    out.backward(torch.ones_like(out))


def time_ms(case, impl, device, budget_s=3.0, max_reps=20) -> float:
    "Best forward+backward time in ms: one warm-up, then repetitions until `budget_s` or `max_reps`."
    attn, value = inputs(case, device)

    def call():
        attn.grad = value.grad = None
        step(attn, value, case, impl)

    return best_ms(call, device, budget_s, max_reps)


def peak_mb_child(case, impl, device_name):
    "Run in a fresh process: peak memory (MB) of one forward+backward beyond its inputs."
    device = torch.device(device_name)
    # a tiny call first, so that one-time initialisation (BLAS workspaces, thread pools, caches) is not counted
    step(*inputs({**case, "batch": 1, "G": 1}, device), case, impl)
    attn, value = inputs(case, device)
    return peak_mb_of(lambda: step(attn, value, case, impl), device)


def peak_mb(case, impl, device, threads) -> float:
    return peak_mb_in_fresh_process("na2d", case, impl, device, threads)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--quick", action="store_true", help="overlock_xt at 64 and 224 px only")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    impls = ["reference", "lean"] + (["triton"] if device.type == "cuda" else [])
    rows = []
    for case in cases(args.quick):
        row = {k: case[k] for k in ("model", "px", "stage", "batch", "map", "K")}
        for impl in impls:
            row[f"{impl}_ms"] = time_ms(case, impl, device)
            row[f"{impl}_MB"] = peak_mb(case, impl, device, args.threads)
        for impl in impls[1:]:
            row[f"speedup_{impl}"] = row["reference_ms"] / row[f"{impl}_ms"]
            row[f"memory_{impl}"] = row[f"{impl}_MB"] / max(row["reference_MB"], 1e-9)
        rows.append(row)
        print(pd.DataFrame([row]).to_string(index=False, header=len(rows) == 1, float_format="%.2f"), flush=True)
    table = pd.DataFrame(rows)
    print(f"\nna2d_av forward+backward on {device} ({torch.get_num_threads()} threads), torch {torch.__version__}")
    print(table.to_string(index=False, float_format="%.2f"))


if __name__ == "__main__":
    main()
