"""Run store: every run the workbench recorded, its provenance, artifacts and metric curves."""
import pandas as pd
import streamlit as st

from workbench.runs import RUN_STATUSES, RunStore
from workbench.viz import metric_curves

st.title("Run store")
store = RunStore()
st.caption(f"`{store.root}` · set `WORKBENCH_RUNS` to browse another store")

runs = store.runs()
if runs.empty:
    st.info("No runs yet. Start one from the *Grokking dynamics* page, or `workbench run grokking`.")
    st.stop()

left, right = st.columns(2)
experiments = left.multiselect("experiment", sorted(runs.experiment.unique()), key="runs_experiments")
statuses = right.multiselect("status", list(RUN_STATUSES), key="runs_statuses")
shown = store.runs(experiment=experiments or None, status=statuses or None)

counts = shown.status.value_counts()
st.markdown(" · ".join(f"**{int(counts.get(status, 0))}** {status}" for status in RUN_STATUSES))

table = shown[["run_id", "experiment", "status", "started_at", "duration_s", "parent_id"]].copy()
table["params"] = shown.params.map(lambda p: ", ".join(f"{k}={v}" for k, v in p.items() if k not in ("run_id", "runs_root")))
table["summary"] = shown.summary.map(lambda s: ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in (s or {}).items()))
st.dataframe(table, hide_index=True, width="stretch")

chosen = st.multiselect("runs to plot", list(shown.run_id), default=list(shown.run_id[:1]), key="runs_chosen")
if chosen:
    metrics = store.metrics(chosen)
    if metrics.empty:
        st.info("These runs logged no metrics.")
    else:
        names = sorted(metrics.name.unique())
        preferred = [n for n in ("train_acc", "test_acc", "train_loss", "test_loss") if n in names] or names[:4]
        picked = st.multiselect("metrics", names, default=preferred, key="runs_metric_names")
        if picked:
            st.altair_chart(metric_curves(metrics, picked), width="content")

    run = store.get(chosen[0])
    with st.expander(f"details of {run['run_id']}"):
        st.json({k: run[k] for k in ("experiment", "status", "seed", "git_commit", "host", "notebook", "error", "params", "summary", "versions")})
        files = sorted(p for p in store.artifact_dir(run["run_id"]).glob("*") if p.is_file())
        for f in files:
            st.download_button(f"download {f.name}", f.read_bytes(), file_name=f.name, key=f"dl_{f.name}")
