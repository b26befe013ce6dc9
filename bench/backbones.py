"""CPU (or GPU) throughput of every workbench backbone, training and inference, at 32 and 224 px, side by side.

    python bench/backbones.py [--sizes 32,224] [--models overlock_xt,coswin_cifar,...] [--threads 2] [--quick]

Each (model, input size) runs in a fresh process on random images, 10 classes: inference (eval mode, no_grad) and a
training step (train mode; every output head gets a cross-entropy term, as the models' own losses do; backward; AdamW).
Columns: images per second (median of the timed steps after one warm-up), peak memory (MB: resident set on CPU,
max_memory_allocated on CUDA), parameters, and each model's throughput relative to the first model of the table.
MLPs take the input size as part of their architecture (`img_size`), so they are built at each size.
"""
import argparse
import json
import os
import subprocess
import sys

import pandas as pd

MODELS = ["overlock_xt", "coswin_cifar", "swin_cifar", "duoformer_r18_tiny", "duoformer_r50_s2", "vcmamba_s",
          "bmlp_b6_wi512", "smlp_b6_wi512"]
QUICK = ["overlock_xt", "coswin_cifar", "duoformer_r18_tiny", "vcmamba_s", "bmlp_b6_wi512"]
SIZED_BY_CONSTRUCTION = ("bmlp_", "smlp_")  # the flattened image is the first layer's input


def child(model_name: str, px: int, batch: int, steps: int, threads: int) -> dict:
    "Run in a fresh process: inference and training throughput and peak memory of one model at one size."
    import resource
    import statistics
    import time
    from collections.abc import Mapping

    import timm
    import torch
    import torch.nn.functional as F

    import workbench.models  # noqa: F401  registers the workbench models

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    kwargs = dict(img_size=px) if model_name.startswith(SIZED_BY_CONSTRUCTION) else {}
    model = timm.create_model(model_name, num_classes=10, **kwargs).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x, y = torch.randn(batch, 3, px, px, device=device), torch.randint(0, 10, (batch,), device=device)

    def loss_of(output):
        outputs = output.values() if isinstance(output, Mapping) else output if isinstance(output, tuple) else [output]
        return sum(F.cross_entropy(o, y) for o in outputs)

    def timed(step) -> float:
        times = []
        for _ in range(steps + 1):
            start = time.perf_counter()
            step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        return batch / statistics.median(times[1:])

    def train_step():
        loss = loss_of(model(x))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def eval_step():
        with torch.no_grad():
            model(x)

    model.eval()
    eval_rate = timed(eval_step)
    model.train()
    train_rate = timed(train_step)
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return dict(eval_images_per_s=eval_rate, train_images_per_s=train_rate, peak_MB=peak,
                params_M=sum(p.numel() for p in model.parameters()) / 1e6)


def measure(**kw) -> dict:
    code = ("import json, sys; sys.path.insert(0, 'bench'); import backbones as b; "
            "print(json.dumps(b.child(**json.loads(sys.argv[1]))))")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(kw)], capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if out.returncode:
        return dict(error=out.stderr.strip().splitlines()[-1][:120])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--sizes", default="32,224")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="five models, two timed steps")
    args = parser.parse_args()
    models = QUICK if args.quick else args.models.split(",")
    steps = 2 if args.quick else args.steps
    rows = []
    for px in map(int, args.sizes.split(",")):
        batch = 32 if px <= 64 else 8
        for name in models:
            result = measure(model_name=name, px=px, batch=batch, steps=steps, threads=args.threads)
            rows.append(dict(model=name, px=px, batch=batch, **result))
            print(rows[-1], file=sys.stderr, flush=True)
    table = pd.DataFrame(rows)
    for column in ("eval_images_per_s", "train_images_per_s"):
        if column in table:  # relative to the first model measured at the same size
            table[column.replace("images_per_s", "vs_first")] = table.groupby("px")[column].transform(lambda s: s / s.iloc[0])
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))


if __name__ == "__main__":
    main()
