"""Simplicity & shortcuts: which features networks prefer, and what it costs. Five papers, one tab each: stored runs
side by side, and a small new run started from the page."""
import sys
from pathlib import Path

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # apps/: the shared run views, under AppTest too
from run_views import compared_runs, per_run, stacked, start_run  # noqa: E402

from workbench.runs import RunStore  # noqa: E402
from workbench.shortcuts import availability, representation, slabs, subpopulations, useful  # noqa: E402

st.title("Simplicity & shortcuts")
st.caption("How networks prefer simple, available features, and what it costs: the slab datasets of Shah et al. "
           "(NeurIPS 2020), the availability framework of Hermann et al. (ICLR 2024), USEFUL and SAM (Nguyen et al., "
           "NeurIPS 2024), representation biases (Lampinen et al., TMLR 2024) and accuracy on the curve (Liang et al., "
           "ICML 2023). Every view reads the runs of its experiment notebook and of this page.")
store = RunStore()


def learned_and_final(table: pd.DataFrame, accuracy: float = 0.99, measure: str = "variance_explained") -> pd.DataFrame:
    "Per training (run, variant, seed): R² (`measure`) per kind when every head first reaches `accuracy`, and at the end."
    keys = ["run"] + [c for c in ("variant", "seed") if c in table]
    rows = []
    for key, history in table.groupby(keys, sort=False):
        learned = representation.when_learned(history, accuracy)
        row = dict(zip(keys, key), **{"learned at step": learned.step.iloc[0] if len(learned) else None})
        for moment, at in (("learned", learned), ("end", history[history.step == history.step.max()])):
            row.update({f"R² {kind} ({moment})": r2 for kind, r2 in at.groupby("kind")[measure].mean().items()})
        rows.append(row)
    return pd.DataFrame(rows).round(3)


def representation_page_run(params: dict, on_progress) -> dict[str, pd.DataFrame]:
    "A page run's artifacts: its history (the last hidden layer) and every hidden layer when learned and at the end."
    layered = representation.representation_bias_experiment(**params, on_progress=on_progress, by_layer=True)
    return {"history.csv": representation.representation_rows(layered),
            "learned_by_layer.csv": representation.when_learned(layered),
            "final_by_layer.csv": layered[layered.step == layered.step.max()]}


# the readings by layer of notebook 57 and of page runs; runs stored before them have neither
LAYER_ARTIFACTS = {"when learned": "learned_by_layer.csv", "end of training": "final_by_layer.csv"}


def layers_of(store: RunStore, runs: dict[str, str]) -> pd.DataFrame:
    "The by-layer readings of those of `runs` that stored them, with a `moment` column (empty when none did)."
    layered = {run_id: label for run_id, label in runs.items()
               if all((store.artifact_dir(run_id) / artifact).exists() for artifact in LAYER_ARTIFACTS.values())}
    if not layered:
        return pd.DataFrame()
    return pd.concat({moment: stacked(store, layered, artifact) for moment, artifact in LAYER_ARTIFACTS.items()},
                     names=["moment"]).reset_index("moment").reset_index(drop=True)


def by_training(table: pd.DataFrame) -> pd.DataFrame:
    "`table` with a `training` column naming its variant and seed (a notebook run holds many trainings)."
    return table.assign(training=table[[c for c in ("variant", "seed") if c in table]].astype(str).agg(", ".join, axis=1))


REPRESENTATION_SETTINGS = {"ours": "ours: ±1 bits, ReLU", "demo": "the first author's demo"}
AVERAGES = {"variance_explained": "inputs (the paper's formula)", "variance_explained_units": "units (the demo's)"}

slab_tab, availability_tab, useful_tab, representation_tab, curve_tab = st.tabs(
    ["Simplicity bias", "Availability", "USEFUL & SAM", "Representations", "Accuracy on the curve"])

with slab_tab:
    st.markdown("**The Pitfalls of Simplicity Bias** (Shah et al.): every coordinate of LMS-5 predicts the label "
                "fully, yet a 2×100 ReLU network relies on the linear one alone. Randomizing it (S) drops the test AUC "
                "to chance (paper: 0.507); randomizing all the others (S^c) leaves it at 1.0. The dominoes stack a "
                "simple and a complex image block, both fully predictive.")
    with st.form("slab_run"):
        left, middle, right = st.columns(3)
        dataset = left.selectbox("dataset", slabs.DATASETS, key="slab_dataset")
        n_train = middle.select_slider("training points", [500, 1000, 2000, 5000, 20000], 2000, key="slab_n_train")
        epochs = right.slider("epochs (at most)", 1, 100, 10, key="slab_epochs")
        seed = left.number_input("seed", 0, 1000, 0, key="slab_seed")
        go = st.form_submit_button("Train and randomize", type="primary")
    if go:
        params = dict(dataset=dataset, n_train=n_train, n_test=2000, epochs=epochs, seed=int(seed))
        start_run(store, "simplicity_bias", params, lambda on_progress: {"results.csv": slabs.simplicity_bias_experiment(
            **params, on_epoch=lambda epoch, _: on_progress(epoch, epochs))})
    table = stacked(store, compared_runs(store, "simplicity_bias", "results.csv", "slab_runs"), "results.csv")
    if not table.empty:
        table["setting"] = table.dataset + np.where(table.rotated, " (rotated)", "") + np.where(
            table.trained_on == "both", "", " trained on " + table.trained_on.astype(str))
        st.altair_chart(per_run(alt.Chart(table).mark_bar().encode(
            x=alt.X("randomized:N", sort=list(slabs.RANDOMIZED), title=None),
            y=alt.Y("mean(auc):Q", scale=alt.Scale(domain=[0, 1]), title="test AUC (mean over seeds)"),
            color=alt.Color("randomized:N", sort=list(slabs.RANDOMIZED), legend=None),
            tooltip=["run", "setting", "randomized", alt.Tooltip("mean(auc):Q", format=".3f"),
                     alt.Tooltip("mean(accuracy):Q", format=".3f"), alt.Tooltip("count():Q", title="seeds")],
        ), "setting", 120, 200), width="content")

with availability_tab:
    st.markdown("**On the Foundations of Shortcut Learning** (Hermann et al.): two latent features, the core one "
                "more predictive; the shortcut is made more *available* by amplifying it, or the core less available "
                "by nesting it inside random tanh layers. Shortcut bias is the "
                "reliance on the shortcut beyond that of the Bayes-optimal (LDA) classifier, read from the model's "
                "decisions on a uniform probe grid over latent space, where the two cues conflict far from the data. "
                "The paper: linear models stay near 0, ReLU and Tanh networks lean to the available feature even "
                "when it predicts less, more so when deeper. Notebook 53: amplification gives linear ≈ 0 and "
                "nonlinear up to 0.34; nesting the core gives the paper's picture (Tanh and 2+ layer ReLU nets "
                "0.4–0.7 with a less predictive shortcut, the paper's inset 0.53; one → two ReLU layers raises the "
                "bias, more layers do not).")
    with st.form("availability_run"):
        left, middle, right = st.columns(3)
        models = left.multiselect("models", ["linear", "relu-1", "tanh-1", "relu-2", "relu-3"], ["linear", "relu-1"],
                                  key="availability_models")
        predictivities = middle.multiselect("shortcut predictivity", [0.4, 0.5, 0.6, 0.7, 0.8], [0.6],
                                            key="availability_rhos")
        amplifications = right.multiselect("shortcut amplification", [1.0, 2.0, 4.0, 8.0], [1.0, 8.0],
                                           key="availability_alphas")
        steps = left.slider("training steps", 50, 2000, 500, 50, key="availability_steps")
        core_nesting = middle.selectbox("core nesting η_c", [0, 1, 2], key="availability_nesting")
        go = st.form_submit_button("Measure shortcut bias", type="primary")
    if go:
        params = dict(models=models, shortcut_predictivities=predictivities, amplifications=amplifications, steps=steps,
                      core_nesting=core_nesting)
        start_run(store, "shortcut_availability", params, lambda on_progress: {"results.csv": availability.shortcut_bias_grid(
            **params, on_progress=on_progress).assign(arm="grid")})
    table = stacked(store, compared_runs(store, "shortcut_availability", "results.csv", "availability_runs"), "results.csv")
    if not table.empty:
        grid = table[table.arm.isin(["grid", "nesting"])] if "arm" in table else table
        grid = grid.assign(availability=[f"α_s {a:g} · η_c {n:g}" for a, n in
                                         zip(grid.shortcut_amplification, grid.core_nesting)])
        st.altair_chart(per_run(alt.Chart(grid).mark_rect().encode(
            x=alt.X("availability:O", title="shortcut amplification α_s · core nesting η_c"),
            y=alt.Y("shortcut_predictivity:O", sort="descending", title="shortcut predictivity"),
            color=alt.Color("mean(bias):Q", scale=alt.Scale(scheme="redblue", domainMid=0, reverse=True),
                            title="shortcut bias"),
            tooltip=["run", "model", "shortcut_predictivity", "shortcut_amplification", "core_nesting",
                     alt.Tooltip("mean(bias):Q", format=".3f"), alt.Tooltip("mean(test_accuracy):Q", format=".3f")],
        ), "model", 140, 140), width="content")

with useful_tab:
    st.markdown("**USEFUL** (Nguyen et al.): train briefly, split each class's examples into two k-means clusters "
                "of the network's outputs, upsample the higher-loss cluster (the examples whose slow feature is not "
                "yet learned) and retrain. The paper: USEFUL beats the baseline and random upsampling of the same "
                "size, and SAM learns the features more uniformly than SGD.")
    with st.form("useful_run"):
        left, middle, right = st.columns(3)
        data = left.selectbox("data", useful.DATA, key="useful_data")
        optimizers = middle.multiselect("optimizers", useful.OPTIMIZERS, ["sgd"], key="useful_optimizers")
        n_seeds = right.slider("seeds", 1, 5, 1, key="useful_seeds")
        steps = left.slider("training steps", 50, 2000, 300, 50, key="useful_steps")
        go = st.form_submit_button("Compare methods", type="primary")
    if go:
        params = dict(data=data, optimizers=optimizers, seeds=list(range(n_seeds)), steps=steps,
                      early_step=max(1, steps // 10))
        start_run(store, "useful", params, lambda on_progress: {"results.csv": useful.useful_experiment(
            **params, on_progress=on_progress)})
    table = stacked(store, compared_runs(store, "useful", "results.csv", "useful_runs"), "results.csv")
    if not table.empty:
        st.altair_chart(per_run(alt.Chart(table).mark_boxplot(extent="min-max").encode(
            x=alt.X("method:N", sort=list(useful.METHODS), title=None),
            y=alt.Y("test_acc:Q", scale=alt.Scale(zero=False), title="test accuracy (one point per seed)"),
            color=alt.Color("optimizer:N"), xOffset="optimizer:N",
            tooltip=["run", "data", "optimizer", "method", "seed", alt.Tooltip("test_acc:Q", format=".4f"),
                     alt.Tooltip("purity:Q", format=".3f")],
        ), "data", 220, 220).resolve_scale(y="independent"), width="content")
        purity = table[table.method == "useful"].groupby(["run", "data", "optimizer"]).purity.mean().reset_index()
        st.caption("Cluster purity (the share of the upsampled cluster that lacks the learned fast feature), mean "
                   "over seeds: " + "; ".join(f"{r.data}/{r.optimizer}: {r.purity:.2f}" for r in purity.itertuples()))

with representation_tab:
    st.markdown("**Learned feature representations are biased** (Lampinen et al.): a network learns an easy "
                "(linear) and a hard (nonlinear) feature equally well, yet the easy one explains far more of the "
                "variance of its representation (paper: ≈ 55% vs ≈ 5%; notebook 57, read when the task is learned: "
                "63% vs 7% in the first author's demo setting, 62% vs 4% in ours; at the end of training the hard "
                "share grows to 10–20%). Pretraining the hard feature narrows the gap when read as the task is learned "
                "(demo setting: easy / hard 9.5 → 1.6), not at the end of training nor with four features of each "
                "kind. Deeper networks show *smaller* gaps in every setting tried, with Adam and with SGD; within one "
                "network the gap in points widens from the first hidden layer to the penultimate one (the chart by "
                "layer), while the parity is computed on the way up. Of two "
                "equally easy features, the one learned first ends with *less* of the representation. Choose the "
                "setting below, and the average of R² (over inputs, the paper's formula; over units, the demo's).")
    with st.form("representation_run"):
        left, middle, right = st.columns(3)
        depth = left.slider("hidden layers", 1, 6, 2, key="representation_depth")
        setting = middle.selectbox("setting", list(REPRESENTATION_SETTINGS), key="representation_setting",
                                   format_func=REPRESENTATION_SETTINGS.get)
        prevalence = middle.slider("hard-feature prevalence", 0.1, 0.9, 0.5, 0.1, key="representation_prevalence")
        pretrain = right.selectbox("pretrain first on", ["none", "hard", "easy"], key="representation_pretrain")
        steps = left.slider("training steps", 100, 3000, 600, 100, key="representation_steps")
        go = st.form_submit_button("Train and measure", type="primary")
    if go:
        params = dict(depth=depth, hard_prevalence=prevalence, pretrain=None if pretrain == "none" else pretrain,
                      steps=steps, pretrain_steps=steps // 3, eval_every=max(1, steps // 6), n_train=4000, n_test=1000)
        if setting == "demo":  # the demo's data, network, batch and sizes; its depth sweep keeps the last 64 units
            params.update({k: v for k, v in representation.DEMO_SETTING.items() if k != "steps"},
                          width=list(representation.demo_widths(depth)), depth=None)
        start_run(store, "representation_bias", params, lambda on_progress: representation_page_run(params, on_progress))
    runs = compared_runs(store, "representation_bias", "history.csv", "representation_runs")
    table, layers = stacked(store, runs, "history.csv"), layers_of(store, runs)
    if not table.empty and "variant" in table:  # a notebook run holds many trainings: draw the chosen configurations
        variants = list(dict.fromkeys(table.variant.dropna()))
        shown = st.multiselect("configurations (notebook runs)", variants, variants[:1], key="representation_variants")
        table = table[table.variant.isin(shown) | table.variant.isna()]
        if "variant" in layers:
            layers = layers[layers.variant.isin(shown) | layers.variant.isna()]
    average = st.radio("R² averaged over", list(AVERAGES), format_func=AVERAGES.get, horizontal=True,
                       key="representation_average")
    if not table.empty and average not in table:
        table = table.assign(**{average: np.nan})
    if not table.empty and table[average].isna().any():  # runs stored before the per-unit average was recorded
        st.info(f"{table[table[average].isna()].run.nunique()} run(s) have no {AVERAGES[average]} R²; they are left out.")
        table = table[table[average].notna()]
    if not table.empty:
        table = by_training(table)  # one line per training and measure
        long = table.melt(id_vars=[c for c in table if c not in ("accuracy", average)],
                          value_vars=["accuracy", average], var_name="measure")
        st.altair_chart(per_run(alt.Chart(long).mark_line(point=True).encode(
            x=alt.X("step:Q"), y=alt.Y("value:Q", scale=alt.Scale(domain=[0, 1]), title=None),
            color=alt.Color("feature:N"), strokeDash=alt.StrokeDash("measure:N"), detail="training:N",
            tooltip=["run", "training", "step", "feature", "measure", alt.Tooltip("value:Q", format=".3f")],
        ), None, 320, 220), width="content")
        st.caption("Each training read at two moments: when the task is learned (the first evaluation at which every "
                   "head is right on ≥ 99% of the test set) and at the end. R² is the mean over the features of a kind.")
        st.dataframe(learned_and_final(table, measure=average), hide_index=True)
    unlayered = set(table.run if not table.empty else ()) - set(layers.run if not layers.empty else ())
    if unlayered:  # runs stored before the readings by layer were recorded
        st.info(f"{len(unlayered)} run(s) have no readings by hidden layer; the chart by layer leaves them out.")
    if not table.empty and not layers.empty:
        layers = by_training(layers)
        per_layer = layers.groupby(["run", "moment", "training", "layer", "kind"], as_index=False)[average].mean()
        st.altair_chart(per_run(alt.Chart(per_layer).mark_line(point=True).encode(
            x=alt.X("layer:O", title="hidden layer"), y=alt.Y(f"{average}:Q", title="R² per feature"),
            color=alt.Color("kind:N"), detail="training:N",
            tooltip=["run", "moment", "training", "layer", "kind", alt.Tooltip(f"{average}:Q", format=".3f")],
        ), "moment", 260, 200), width="content")
        st.caption("Through the layers: R² of every hidden layer (the last is the representation above), when the "
                   "task is learned and at the end; mean over the features of a kind.")

with curve_tab:
    st.markdown("**Accuracy on the Curve** (Liang et al.): across models, hyperparameters and checkpoints, minority "
                "accuracy against majority accuracy follows a curve, not a line, and it bends more as the spurious "
                "correlation strengthens. Here: MNIST digits ≥ 5 vs < 5 with a planted grey patch that agrees with "
                "the label in a share *p* of the training set.")
    with st.form("curve_run"):
        left, middle, right = st.columns(3)
        strengths = left.multiselect("spurious strength p", [0.5, 0.8, 0.9, 0.95, 0.99], [0.5, 0.95],
                                     key="curve_strengths")
        models = middle.multiselect("models", ["linear", "mlp-32", "mlp-256", "cnn-8"], ["linear", "mlp-32"],
                                    key="curve_models")
        steps = right.slider("training steps", 40, 600, 150, 10, key="curve_steps")
        go = st.form_submit_button("Train the zoo", type="primary")
    if go:
        params = dict(strengths=strengths, models=models, steps=steps, lrs=[1e-3, 3e-3], n_trains=[1000])

        def zoo(on_progress):
            points, fits = subpopulations.accuracy_on_the_curve(**params, on_progress=on_progress)
            return {"points.csv": points, "fits.csv": fits}

        start_run(store, "accuracy_on_the_curve", params, zoo)
    chosen = compared_runs(store, "accuracy_on_the_curve", "points.csv", "curve_runs")
    points, fits = stacked(store, chosen, "points.csv"), stacked(store, chosen, "fits.csv")
    if not points.empty:
        span = points.groupby(["run", "strength"]).majority_acc.agg(["min", "max"])

        def fitted_curve(fit) -> pd.DataFrame:
            "The fit drawn over the majority accuracies its own points cover (a quadratic extrapolates badly)."
            grid = np.linspace(*span.loc[(fit.run, fit.strength)], 50)
            return pd.DataFrame(dict(run=fit.run, strength=fit.strength, majority_acc=grid,
                                     minority_acc=subpopulations.moon_curve(fit._asdict(), grid)))

        curves = pd.concat([fitted_curve(fit) for fit in fits.itertuples()], ignore_index=True)
        # one table for both layers: a faceted layer chart needs its data at the top
        both = pd.concat([points.assign(kind="model"), curves.assign(kind="fit")], ignore_index=True)
        base = alt.Chart().encode(
            x=alt.X("majority_acc:Q", scale=alt.Scale(zero=False), title="majority accuracy"),
            y=alt.Y("minority_acc:Q", scale=alt.Scale(zero=False), title="minority accuracy"),
            color=alt.Color("strength:O", title="p"))
        scatter = base.transform_filter("datum.kind == 'model'").mark_point(size=18, opacity=0.6).encode(
            tooltip=["run", "strength", "model", "lr", "n_train", "step", alt.Tooltip("majority_acc:Q", format=".3f"),
                     alt.Tooltip("minority_acc:Q", format=".3f")])
        lines = base.transform_filter("datum.kind == 'fit'").mark_line()
        st.altair_chart(alt.layer(scatter, lines, data=both).properties(width=320, height=300).facet(
            column=alt.Column("run:N", title=None)), width="content")
        st.altair_chart(alt.Chart(fits, title="curvature of the probit-quadratic fit").mark_line(point=True).encode(
            x=alt.X("strength:Q", scale=alt.Scale(zero=False), title="spurious strength p"),
            y=alt.Y("curvature:Q", title="b₂"), color="run:N",
            tooltip=["run", "strength", alt.Tooltip("curvature:Q", format=".3f"),
                     alt.Tooltip("nonlinearity:Q", format=".3f")]).properties(width=320, height=200), width="content")
