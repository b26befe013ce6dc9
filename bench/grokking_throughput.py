"""Throughput of the grokking slice on this machine, measured side by side in one run.

    python bench/grokking_throughput.py [--steps 2000] [--threads 1]

Table 1: training step time for the Li2 network by group order M and width K, without metrics and with the
dynamics instruments logged every 20 steps (Fourier power/entropy, energy, coverage) into a real run store,
and the ratio of the two (the instruments' overhead).
Table 2: run-store metric writes, batched (the default: one transaction per 200 rows) against one transaction
per row, and the ratio.
"""
import argparse
import tempfile
import time
from dataclasses import replace

import pandas as pd

from workbench.core import set_threads
from workbench.dynamics.grokking import GrokkingConfig, train_grokking
from workbench.runs import RunStore


def time_training(config: GrokkingConfig, store: RunStore | None) -> float:
    "Seconds per training step of `config`, logging into `store` if given."
    start = time.perf_counter()
    if store is None:
        train_grokking(config, progress_bar=False)
    else:
        with store.create_run("bench", {}) as run:
            train_grokking(config, run=run, progress_bar=False)
    return (time.perf_counter() - start) / config.steps


def training_table(steps: int) -> pd.DataFrame:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(tmp)
        time_training(GrokkingConfig(group="Z23", width=128, steps=200), store)  # warm-up: allocator, store schema
        for M in (23, 47, 97):
            for K in (128, 512):
                base = GrokkingConfig(group=f"Z{M}", train_fraction=0.5, width=K, steps=steps)
                bare = time_training(replace(base, log_every=steps, snapshot_every=steps), None)
                logged = time_training(replace(base, log_every=20, snapshot_every=200), store)
                rows.append(dict(M=M, K=K, train_pairs=round(0.5 * M * M), ms_per_step_bare=1e3 * bare,
                                 ms_per_step_logged=1e3 * logged, logged_over_bare=logged / bare))
    return pd.DataFrame(rows)


def store_table(rows_total: int = 20_000) -> pd.DataFrame:
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(tmp)
        for label, flush_rows in (("batched (200 rows)", 200), ("one row per transaction", 1)):
            run = store.create_run("bench", {})
            run.flush_rows = flush_rows
            start = time.perf_counter()
            for step in range(rows_total):
                run.log(step, loss=1.0 / (step + 1))
            run.finish()
            out.append(dict(mode=label, rows=rows_total, rows_per_s=rows_total / (time.perf_counter() - start)))
    table = pd.DataFrame(out)
    table["ratio_vs_per_row"] = table.rows_per_s / table.rows_per_s.iloc[-1]
    return table


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    set_threads(args.threads)
    pd.set_option("display.width", 200)
    print(f"torch threads: {args.threads}, steps per config: {args.steps}\n")
    print(training_table(args.steps).round(3).to_string(index=False), "\n")
    print(store_table().round(2).to_string(index=False))
