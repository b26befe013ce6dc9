"""Full training steps of OverLoCK on the lean `na2d_av` against the same model on the unfold reference, side by side.

    python bench/overlock_train.py [--model overlock_xt] [--batch 32] [--steps 3] [--threads 2]

Each (input size, implementation) runs in a fresh process: forward (train mode, main + aux head), the deep-supervision
loss, backward and an AdamW step on random images, 10 classes. Columns: images per second (median of the timed steps
after one warm-up step), peak memory (MB: the process's resident set on CPU, max_memory_allocated on CUDA), and the ratios ours / reference.
"""
import argparse
import json
import os
import subprocess
import sys

import pandas as pd


def child(model_name: str, px: int, batch: int, steps: int, threads: int) -> dict:
    "Run in a fresh process with $WORKBENCH_NA2D set: throughput and peak memory of training steps."
    import resource
    import statistics
    import time

    import timm
    import torch

    import workbench.models  # noqa: F401
    from workbench.models.overlock import overlock_loss

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = timm.create_model(model_name, num_classes=10).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x, y = torch.randn(batch, 3, px, px, device=device), torch.randint(0, 10, (batch,), device=device)
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        loss = overlock_loss(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda"  # GPU memory on CUDA, else RSS
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return dict(images_per_s=batch / statistics.median(times[1:]), peak_MB=peak)


def measure(impl: str, **kw) -> dict:
    code = ("import json, sys; sys.path.insert(0, 'bench'); import overlock_train as b; "
            "print(json.dumps(b.child(**json.loads(sys.argv[1]))))")
    env = {**os.environ, "WORKBENCH_NA2D": impl}
    out = subprocess.run([sys.executable, "-c", code, json.dumps(kw)], capture_output=True, text=True, env=env,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if out.returncode:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="overlock_xt")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64])
    args = parser.parse_args()
    rows = []
    for px in args.sizes:
        kw = dict(model_name=args.model, px=px, batch=args.batch, steps=args.steps, threads=args.threads)
        ref, lean = measure("reference", **kw), measure("auto", **kw)
        rows.append(dict(model=args.model, px=px, batch=args.batch, reference_img_s=ref["images_per_s"],
                         ours_img_s=lean["images_per_s"], speedup=lean["images_per_s"] / ref["images_per_s"],
                         reference_peak_MB=ref["peak_MB"], ours_peak_MB=lean["peak_MB"],
                         memory_ratio=lean["peak_MB"] / ref["peak_MB"]))
        print(pd.DataFrame(rows[-1:]).to_string(index=False, header=len(rows) == 1, float_format="%.2f"), flush=True)
    print(f"\n{args.model} training step (forward, aux loss, backward, AdamW), {args.threads} threads; "
          "ours = WORKBENCH_NA2D=auto (lean on CPU, Triton on CUDA)")
    print(pd.DataFrame(rows).to_string(index=False, float_format="%.2f"))


if __name__ == "__main__":
    main()
