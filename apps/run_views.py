"""Views shared by the pages that compare stored runs of experiment notebooks and start small new ones: pick runs,
stack their CSV artifacts, start a run with a progress bar, facet a chart per run."""
from collections.abc import Callable
from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from workbench.core import ParameterError
from workbench.runs import RunStore


def stored_runs(store: RunStore, experiment: str, artifact: str) -> pd.DataFrame:
    "Finished top-level runs of `experiment` that saved `artifact`, newest first."
    runs = store.runs(experiment=experiment)
    runs = runs[(runs.status == "finished") & runs.parent_id.isna()]
    return runs[[(store.artifact_dir(r) / artifact).exists() for r in runs.run_id]]


def run_label(run) -> str:
    origin = "this page" if run.params.get("started_from") == "page" else "notebook"
    return f"{run.run_id} ({origin})"


def compared_runs(store: RunStore, experiment: str, artifact: str, key: str) -> dict[str, str]:
    "A multiselect of the stored runs that saved `artifact` (default: the newest): {run id: label} of those chosen."
    runs = stored_runs(store, experiment, artifact)
    if runs.empty:
        st.info(f"No {experiment} run stored yet: start a small one above, or run the notebook "
                f"(`workbench run {experiment}`).")
        return {}
    labels = {run.run_id: run_label(run) for run in runs.itertuples()}
    chosen = st.multiselect("compare stored runs", list(labels), default=list(labels)[:1], format_func=labels.get,
                            key=key)
    return {run_id: labels[run_id] for run_id in chosen}


def stacked(store: RunStore, runs: dict[str, str], artifact: str) -> pd.DataFrame:
    "The `artifact` tables of `runs` ({run id: label}) one under the other, with the label in a `run` column."
    if not runs:
        return pd.DataFrame()
    return pd.concat([pd.read_csv(store.artifact_dir(run_id) / artifact).assign(run=label)
                      for run_id, label in runs.items()], ignore_index=True)


def start_run(store: RunStore, experiment: str, params: dict, compute: Callable):
    """Run `compute(on_progress)` as a new stored run of `experiment` with a progress bar; `compute` returns
    {artifact name: table}, saved in the run's folder, and calls `on_progress(done, total)` as it goes. A refused
    parameter is shown and the run stored as failed."""
    progress = st.progress(0.0, text="starting…")

    def on_progress(done: int, total: int, *_):
        progress.progress(min(done / max(total, 1), 1.0), text=f"{done} of {total}")

    try:
        with st.spinner("running…"), store.create_run(experiment, params | dict(started_from="page")) as run:
            tables = compute(on_progress)
            for name, table in tables.items():
                table.to_csv(Path(run.dir) / name, index=False)
            run.summarize(artifacts=list(tables), rows={name: len(table) for name, table in tables.items()})
    except ParameterError as e:
        st.error(f"The run stopped (run {run.id}): {e}")
        return
    finally:
        progress.empty()
    st.success(f"Stored run {run.id}.")


def per_run(chart: alt.Chart, column: str | None, width: int, height: int) -> alt.FacetChart:
    "`chart` in one row of panels per compared run, and one column per value of `column` (if given)."
    columns = {} if column is None else dict(column=alt.Column(f"{column}:N", title=None))
    return chart.properties(width=width, height=height).facet(row=alt.Row("run:N", title=None), **columns)
