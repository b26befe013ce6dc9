"""Wall time of sampling trained hypotheses for the exact-inductive-bias measure on each executor, side by side.

    python bench/parallel.py [--hypotheses 8] [--arch small_cnn] [--steps 100] [--jobs 2]

Every executor trains the same `--hypotheses` networks (same seeds, so the same test losses: the table checks it)
on 100 MNIST digits, through `workbench.measures.exact_bias.sample_network_losses`. "serial" runs them in this
process; "process" in `--jobs` local worker processes; "ray" on a local Ray cluster of `--jobs` CPUs, whose start
(several seconds) is timed separately and included in the "ray, with cluster start" row. Each worker trains on one
thread, so the speed-up over serial is bounded by the number of cores.
"""
import argparse
import time

import numpy as np
import pandas as pd
import torch

from workbench.measures.exact_bias import DIGIT_ARCHITECTURES, mnist_hypothesis_data, sample_network_losses
from workbench.parallel import ray_cluster


def sample(executor: str, args, train, test) -> tuple[float, np.ndarray]:
    model, kwargs = DIGIT_ARCHITECTURES[args.arch]
    start = time.perf_counter()
    table = sample_network_losses(model, train, test, args.hypotheses, model_kwargs=kwargs, steps=args.steps,
                                  batch_size=50, executor=executor, jobs=args.jobs)
    assert (table.status == "finished").all(), table.error.dropna().tolist()
    return time.perf_counter() - start, table.test_mse.to_numpy()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hypotheses", type=int, default=8)
    parser.add_argument("--arch", default="small_cnn", choices=list(DIGIT_ARCHITECTURES))
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)  # serial trains on one thread too, as each worker does
    train, test = mnist_hypothesis_data(100, 200)
    rows, losses = [], {}
    for executor in ["serial", "process"]:
        seconds, losses[executor] = sample(executor, args, train, test)
        rows.append(dict(executor=executor, seconds=seconds))
    start = time.perf_counter()
    with ray_cluster(jobs=args.jobs):
        started = time.perf_counter() - start
        seconds, losses["ray"] = sample("ray", args, train, test)
    rows += [dict(executor="ray", seconds=seconds), dict(executor="ray, with cluster start", seconds=seconds + started)]
    table = pd.DataFrame(rows)
    table["hypotheses_per_s"] = args.hypotheses / table.seconds
    table["speedup_vs_serial"] = table.seconds.iloc[0] / table.seconds
    same = all(np.allclose(losses["serial"], losses[e], rtol=1e-5) for e in ("process", "ray"))
    print(f"{args.hypotheses} × {args.arch}, {args.steps} steps on 100 MNIST digits, {args.jobs} jobs; "
          f"same test losses on every executor: {same}")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))


if __name__ == "__main__":
    main()
