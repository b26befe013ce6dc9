"""Grokking dynamics (Li2): start runs from sliders with live progress, compare stored runs, look inside one."""
import numpy as np
import pandas as pd
import streamlit as st

from workbench.dynamics.grokking import ALIVE_NORM, GROKKING_EXPERIMENT, GrokkingConfig, detect_stages, load_snapshots, run_grokking
from workbench.dynamics.groups import critical_train_size, group_from_spec
from workbench.runs import RunStore
from workbench.viz import metric_curves, node_curves, spectrum_heatmap, spectrum_over_time

# The first-start experiment: small enough for a few seconds on a laptop CPU, large enough to grok.
DEFAULT_CONFIG = GrokkingConfig(group="Z23", train_fraction=0.5, width=256, steps=2000, log_every=20, snapshot_every=100)
CURVES = ["train_acc", "test_acc", "train_loss", "test_loss", "fourier_entropy_median", "energy_median"]

st.title("Grokking dynamics")
st.caption("Li₂ (Tian, 2025): a two-layer network on group arithmetic memorises first, then its hidden nodes "
           "become group Fourier features and test accuracy follows. Three stages: lazy → independent → interactive.")
store = RunStore()


def train(config: GrokkingConfig) -> str:
    "Train `config` as a new stored run, drawing live progress; returns the run id."
    live = st.empty()
    history = []

    def show(step, metrics):
        history.append({"step": step, **metrics})
        if len(history) % 10 == 1:
            df = pd.DataFrame(history).melt(id_vars="step", value_vars=["train_acc", "test_acc"], var_name="name")
            live.altair_chart(metric_curves(df.assign(run_id="live"), ["train_acc", "test_acc"], columns=2, height=140), width="content")

    outcome = run_grokking(config, root=store.root, callback=show)
    live.empty()
    return outcome["run_id"]


# ---- sidebar: a new run from sliders -------------------------------------------------------------
with st.sidebar.form("new_run"):
    st.subheader("New run")
    family = st.selectbox("group", ["cyclic Z_M", "product Z_a × Z_b", "symmetric S_n", "dihedral D_n"])
    if family == "cyclic Z_M":
        spec = f"Z{st.slider('M', 5, 97, 23)}"
    elif family == "product Z_a × Z_b":
        spec = f"{st.slider('a', 2, 12, 4)}x{st.slider('b', 2, 12, 6)}"
    elif family == "symmetric S_n":
        spec = f"S{st.slider('n', 3, 5, 4)}"
    else:
        spec = f"D{st.slider('n', 3, 30, 7)}"
    critical = st.checkbox("training set at the critical size n ≈ 2.7482·M·ln M", value=False)
    train_fraction = st.slider("training fraction", 0.05, 0.95, 0.5, 0.05, disabled=critical)
    width = st.select_slider("hidden width K", [32, 64, 128, 256, 512, 1024], value=256)
    weight_decay = st.select_slider("weight decay", [0.0, 1e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3], value=1e-4)
    activation = st.selectbox("activation", ["sqr", "relu", "silu", "relusqr"])
    optimizer = st.selectbox("optimizer", ["adam", "sgd", "muon"])
    loss = st.selectbox("loss", ["mse", "ce"])
    lr = st.select_slider("learning rate", [1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2], value=1e-2)
    steps = st.slider("steps (full-batch)", 200, 20000, 2000, 200)
    seed = st.number_input("seed", 0, 10_000, 0)
    submitted = st.form_submit_button("Train", type="primary")

group = group_from_spec(spec)
n_crit = critical_train_size(group)
st.sidebar.caption(f"{spec}: |G| = {group.order}, {group.order ** 2} pairs, critical n ≈ {n_crit:.0f} "
                   f"({n_crit / group.order ** 2:.1%} of the pairs)")

if submitted:
    config = GrokkingConfig(group=spec, train_fraction=train_fraction, critical=critical,
                            width=width, weight_decay=weight_decay, activation=activation, optimizer=optimizer,
                            loss=loss, lr=lr, steps=steps, seed=int(seed), log_every=max(steps // 200, 1),
                            snapshot_every=max(steps // 40, 1))
    st.session_state["grokking_runs"] = [train(config)]

runs = store.runs(experiment=GROKKING_EXPERIMENT)
if runs.empty:
    with st.status("First start: training a small default experiment (Z₂₃, half of the pairs, 2,000 steps: about 5 s on a 2-core CPU)…", expanded=True) as first:
        st.session_state["grokking_runs"] = [train(DEFAULT_CONFIG)]
        first.update(label="First start: trained the default experiment; start more from the sidebar.", state="complete", expanded=False)
    runs = store.runs(experiment=GROKKING_EXPERIMENT)

# ---- compare stored runs -----------------------------------------------------------------------------
labels = {r.run_id: f"{r.run_id} · {r.status} · {r.params.get('group')} frac={r.params.get('train_fraction')} "
                    f"K={r.params.get('width')} wd={r.params.get('weight_decay')}" for r in runs.itertuples()}
# A new run (or a first visit) selects itself; otherwise the widget keeps the user's choice.
kept = [r for r in st.session_state.get("grokking_runs", []) if r in labels]
st.session_state["grokking_runs"] = kept if "grokking_runs" in st.session_state else list(runs.run_id[:1])
selected = st.multiselect("runs", list(labels), format_func=labels.get, key="grokking_runs")
if not selected:
    st.info("Pick one or more runs to compare.")
    st.stop()

metrics = store.metrics(selected)
stages = detect_stages(metrics[metrics.run_id == selected[0]]) if not metrics.empty else {}
st.subheader("Training curves")
if metrics.empty:
    st.info("The selected runs logged no metrics yet.")
else:
    marks = {"memorised": stages["memorization_step"], "independent": stages["independent_start"],
             "interactive": stages["interactive_start"], "generalised": stages["generalization_step"]}
    st.caption("Dashed rules: stages detected in " + selected[0] + ": "
               + ", ".join(f"{k} at step {v}" for k, v in marks.items() if v is not None))
    st.altair_chart(metric_curves(metrics, [n for n in CURVES if n in set(metrics.name)], stages=marks, columns=3,
                                  width=230, height=150), width="content")
    summary = runs.set_index("run_id").loc[selected, ["status", "duration_s"]]
    st.dataframe(summary.join(pd.DataFrame({r: store.get(r)["summary"] for r in selected}).T), width="stretch")

# ---- inside one run: spectra and energies -------------------------------------------------------------
st.subheader("Inside a run")
focus = st.selectbox("run", selected, format_func=labels.get, key="grokking_focus")
snapshots = load_snapshots(store.artifact_dir(focus))
if snapshots is None:
    st.info("This run saved no spectrum snapshots (it may have been interrupted before its first one).")
    st.stop()
steps_logged = snapshots["steps"]
at = st.select_slider("snapshot step", list(steps_logged), value=int(steps_logged[-1]), key="grokking_snapshot")
i = int(np.searchsorted(steps_logged, at))
left, right = st.columns(2)
# Weight decay shrinks most nodes to ~0; their normalised spectra are noise, so show the surviving ones.
alive = snapshots["norm"][i] >= ALIVE_NORM * snapshots["norm"][i].max()
left.altair_chart(spectrum_heatmap(snapshots["power"][i][alive], list(snapshots["irrep_labels"]),
                                   title=f"Fourier power of the {alive.sum()} surviving nodes at step {at}"), width="stretch")
right.altair_chart(spectrum_over_time(steps_logged, snapshots["power"], list(snapshots["irrep_labels"]),
                                      weights=snapshots["norm"] ** 2), width="stretch")
st.altair_chart(node_curves(steps_logged, snapshots["energy_unit"], name="unit energy E(w/|w|)"), width="stretch")
