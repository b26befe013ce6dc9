"""Bias in representations and explanations: how attributions, probes and a pretrained encoder's representations
encode bias. Five papers, one tab each (stored runs side by side, and a small new run started from the page), and
the attention of a typed sentence."""
import sys
from pathlib import Path

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # apps/: the shared views, under AppTest too
from run_views import compared_runs, per_run, stacked, start_run  # noqa: E402
from widgets import text_attention_view, text_encoder  # noqa: E402

from workbench.core import ParameterError  # noqa: E402
from workbench.explain import disparities, lfa  # noqa: E402
from workbench.representations import biaslens, sae, weat  # noqa: E402
from workbench.runs import RunStore  # noqa: E402

st.title("Bias in representations")
st.caption("How explanations, probes and learned representations encode bias, on real data that works offline: "
           "eight attribution methods as local function approximations (Han et al., NeurIPS 2022), explanation "
           "disparities between groups (Mhasawade et al., 2024), sparse probing with SAEs (Kantamneni et al., ICML "
           "2025), WEAT on static and contextual embeddings (Caliskan et al., 2017; Tan & Celis, NeurIPS 2019) and "
           "BiasLens (2025), on the bundled MiniLM-L6 or any local Hugging Face encoder.")
store = RunStore()
PAGE_BENCHMARK = ["92_glue_sst2", "96_spam_is", "87_glue_cola"]  # three of the paper's datasets, CoLA with a shifted set

attribution_tab, disparity_tab, weat_tab, biaslens_tab, probe_tab, attention_tab = st.tabs(
    ["Attributions", "Disparities", "WEAT", "BiasLens", "SAE probes", "Attention"])


@st.cache_resource(show_spinner="training the model to explain…", max_entries=4)
def trained_task_model(task: str, classifier: str, steps: int, seed: int) -> dict:
    return lfa.train_task_model(task, classifier, steps=steps, seed=seed)


def attribution_chart(maps: pd.DataFrame) -> alt.Chart:
    "Tabular: one bar per feature, a panel per method; images: one heatmap per method (red positive, blue negative)."
    order = [lfa.METHOD_LABELS[m] for m in lfa.METHODS]
    if "feature" in maps:
        return alt.Chart(maps).mark_bar().encode(
            x=alt.X("value:Q", title="attribution"), y=alt.Y("feature:N", title=None),
            color=alt.condition("datum.value > 0", alt.value("#c0392b"), alt.value("#2e86c1")),
            tooltip=["label", "feature", alt.Tooltip("value:Q", format=".4f")],
        ).properties(width=150, height=180).facet(facet=alt.Facet("label:N", sort=order, title=None), columns=4)
    limit = maps.groupby("label").value.transform(lambda v: v.abs().max() or 1.0)
    return alt.Chart(maps.assign(scaled=maps.value / limit)).mark_rect().encode(
        x=alt.X("col:O", axis=None), y=alt.Y("row:O", axis=None),
        color=alt.Color("scaled:Q", scale=alt.Scale(scheme="redblue", domain=[-1, 1], reverse=True),
                        title="attribution / max |.|"),
        tooltip=["label", "row", "col", alt.Tooltip("value:Q", format=".4f")],
    ).properties(width=110, height=110).facet(facet=alt.Facet("label:N", sort=order, title=None), columns=4)


with attribution_tab:
    st.markdown("**Which Explanation Should I Choose?** (Han et al.): LIME, C-LIME, KernelSHAP, Occlusion, vanilla "
                "gradients, Gradient×Input, SmoothGrad and Integrated Gradients are one local function approximation "
                "with different neighbourhoods; each is the best explanation in its own neighbourhood and none in "
                "all (no free lunch). Pick a model and an input: all eight side by side.")
    left, middle, right = st.columns(3)
    task = left.selectbox("task", lfa.TASKS, key="attr_task", format_func={"adult": "UCI Adult (MLP)",
                                                                             "mnist": "MNIST digits (CNN)"}.get)
    classifier = "mlp" if task == "adult" else "cnn"
    steps = middle.select_slider("training steps", [50, 200, 500, 1000], 200, key="attr_steps")
    trained = trained_task_model(task, classifier, steps, 0)
    index = right.number_input("test input", 0, len(trained["x_test"]) - 1, 0, key="attr_index")
    methods = st.multiselect("methods", lfa.METHODS, list(lfa.METHODS), format_func=lfa.METHOD_LABELS.get,
                             key="attr_methods")
    x = trained["x_test"][index:index + 1]
    st.caption(f"test accuracy {trained['test_acc']:.1%}; explained: "
               + ("the log-odds of income > 50K" if task == "adult" else "the logit of the predicted digit")
               + f"; true label {int(trained['y_test'][index])}")
    if methods:
        maps = lfa.attribution_maps(trained["model"], x, methods, feature_names=trained["features"], n_samples=500)
        st.altair_chart(attribution_chart(maps), width="content")
    else:
        st.info("Pick at least one method.")
    st.markdown("**No free lunch**: the loss of each row's explanation in each column's neighbourhood, over the best "
                "in that column (1 = best; blank: infinitely worse than an exact fit): each method wins its own column.")
    with st.form("nfl_run"):
        left, middle, right = st.columns(3)
        nfl_task = left.selectbox("task", lfa.TASKS, key="nfl_task")
        n_inputs = middle.slider("explained test inputs", 1, 20, 5, key="nfl_inputs")
        nfl_steps = right.select_slider("training steps", [50, 200, 500, 1000], 200, key="nfl_steps")
        go = st.form_submit_button("Compute the table", type="primary")
    if go:
        params = dict(task=nfl_task, n_inputs=n_inputs, steps=nfl_steps, n_samples=300)
        start_run(store, "explanation_choice", params, lambda on_progress: {
            "no_free_lunch.csv": lfa.explanation_choice(**params, on_progress=on_progress)})
    table = stacked(store, compared_runs(store, "explanation_choice", "no_free_lunch.csv", "attr_runs"),
                    "no_free_lunch.csv")
    if not table.empty:
        column = table.groupby(["run", "task", "neighbourhood"]).loss
        best = column.transform("min")
        # a column whose best loss is 0 to float precision (a method exact in its own neighbourhood, e.g. the gradient
        # methods): every other explanation is infinitely worse there, left blank rather than drawn as a huge ratio
        exact = best <= 1e-10 * column.transform("max")
        ratio = np.where(table.loss == best, 1.0, np.where(exact, np.nan, table.loss / best))
        table = table.assign(loss_over_best=ratio, log10_ratio=np.log10(ratio),
                             explanation_label=table.explanation.map(lfa.METHOD_LABELS),
                             neighbourhood_label=table.neighbourhood.map(lfa.METHOD_LABELS))
        order = [lfa.METHOD_LABELS[m] for m in lfa.METHODS]
        st.altair_chart(per_run(alt.Chart(table).mark_rect().encode(
            x=alt.X("neighbourhood_label:N", sort=order, title="neighbourhood"),
            y=alt.Y("explanation_label:N", sort=order, title="explanation"),
            color=alt.Color("log10_ratio:Q", scale=alt.Scale(scheme="viridis"), title="log10 loss / best"),
            tooltip=["run", "task", "explanation_label", "neighbourhood_label",
                     alt.Tooltip("loss_over_best:Q", format=".3g"), "rank"],
        ), "task", 220, 220), width="content")

with disparity_tab:
    st.markdown("**Understanding Disparities in Post Hoc Explanation** (Mhasawade et al.): the fidelity of a local "
                "explanation (LIME around each point) differs between groups, and the gap grows with covariate "
                "shift, concept shift and omitted variables, more for a neural network than for a linear model. "
                "Gap = mean fidelity of the reference group − that of the shifted group, with a bootstrap interval.")
    with st.form("disparity_run"):
        left, middle, right = st.columns(3)
        shift_kind = left.selectbox("shift", disparities.SHIFT_KINDS, key="disparity_shift")
        strengths = middle.multiselect("strengths", [0.0, 0.5, 1.0, 2.0, 3.0], [0.0, 1.0, 3.0], key="disparity_strengths")
        models = right.multiselect("models", disparities.MODEL_KINDS, list(disparities.MODEL_KINDS), key="disparity_models")
        include_sensitive = left.toggle("the model sees the group attribute", True, key="disparity_sensitive")
        n_explain = middle.select_slider("explained points per group", [25, 50, 100, 200], 50, key="disparity_n_explain")
        go = st.form_submit_button("Fit and explain", type="primary")
    if go:
        params = dict(shift_kind=shift_kind, strengths=strengths, models=models, include_sensitive=include_sensitive,
                      n_explain=n_explain, n_samples=300)
        start_run(store, "explanation_disparities", params, lambda on_progress: {
            "disparity_curves.csv": disparities.disparity_curve(**params, on_progress=on_progress)})
    table = stacked(store, compared_runs(store, "explanation_disparities", "disparity_curves.csv", "disparity_runs"),
                    "disparity_curves.csv")
    if not table.empty:
        gaps = table.drop_duplicates(["run", "shift_kind", "include_sensitive", "strength", "model"]).assign(
            inputs=lambda t: np.where(t.include_sensitive, "with A", "without A"))
        line = alt.Chart().encode(x=alt.X("strength:Q", title="shift strength"), color=alt.Color("model:N"),
                                  strokeDash=alt.StrokeDash("inputs:N"))
        chart = alt.layer(
            line.mark_line(point=True).encode(y=alt.Y("gap:Q", title="fidelity gap (reference − shifted)"),
                                              tooltip=["run", "shift_kind", "model", "inputs", "strength",
                                                       alt.Tooltip("gap:Q", format=".4f"), "accuracy"]),
            line.mark_errorbar().encode(y="gap_low:Q", y2="gap_high:Q"), data=gaps)
        st.altair_chart(chart.properties(width=300, height=220).facet(
            row=alt.Row("run:N", title=None), column=alt.Column("shift_kind:N", title=None)), width="content")
    adult = stacked(store, compared_runs(store, "explanation_disparities", "adult_disparities.csv", "adult_runs"),
                    "adult_disparities.csv")
    if not adult.empty:
        st.markdown("**UCI Adult** (from the experiment notebook's runs): the gap between the groups of each "
                    "sensitive attribute, with all covariates and with some dropped.")
        adult = adult.drop_duplicates(["run", "sensitive", "dropped", "model", "include_sensitive"])
        st.dataframe(adult[["run", "sensitive", "dropped", "model", "include_sensitive", "gap", "gap_low", "gap_high",
                            "accuracy"]], hide_index=True)

with weat_tab:
    st.markdown("**WEAT** (Caliskan et al.) on the shipped word2vec subset, and **contextual WEAT** (Tan & Celis) "
                "on a text encoder: the word's own token states inside bleached templates (word level) or the "
                "whole template sentence (sentence level), with intersectional race × gender name groups. Effect "
                "size d (Cohen's d of the association difference), one-sided permutation p-value.")
    with st.form("weat_run"):
        left, middle, right = st.columns(3)
        level = left.selectbox("level", weat.LEVELS, key="weat_level")
        tests = middle.selectbox("tests", ["caliskan", "intersectional", "all"], key="weat_tests")
        permutations = right.select_slider("permutations", [1000, 10_000], 1000, key="weat_permutations")
        path = st.text_input("encoder: a local Hugging Face model directory (empty: the bundled MiniLM-L6)", "",
                             key="weat_encoder")
        go = st.form_submit_button("Run the tests", type="primary")
    if go:
        params = dict(level=level, tests=tests, n_permutations=permutations, encoder=path.strip() or None)
        start_run(store, "contextual_bias", params, lambda on_progress: {"weat_results.csv": weat.weat_table(
            None if level == "static" else text_encoder(path.strip()), tests=tests, level=level,
            n_permutations=permutations, on_progress=on_progress)})
    table = stacked(store, compared_runs(store, "contextual_bias", "weat_results.csv", "weat_runs"), "weat_results.csv")
    if not table.empty:
        table["significant"] = np.where(table.p_value < 0.05, "p < 0.05", "p ≥ 0.05")
        st.altair_chart(per_run(alt.Chart(table.dropna(subset=["effect_size"])).mark_bar().encode(
            x=alt.X("effect_size:Q", title="effect size d"), y=alt.Y("test:N", title=None), yOffset="level:N",
            color=alt.Color("level:N"), opacity=alt.Opacity("significant:N", sort=["p < 0.05", "p ≥ 0.05"],
                                                             scale=alt.Scale(range=[1.0, 0.35])),
            tooltip=["run", "test", "name", "level", "model", alt.Tooltip("effect_size:Q", format=".2f"),
                     alt.Tooltip("p_value:Q", format=".2g"), "original_d", "n_missing"],
        ), None, 420, 360), width="content")
        missing = table[table.effect_size.isna()]
        if not missing.empty:
            st.caption("Not computable (too few of their words in the vocabulary): "
                       + ", ".join(sorted(set(missing.test))))

with biaslens_tab:
    st.markdown("**BiasLens** (Gao et al., 2025): a bias score without a test set. Each concept becomes a concept "
                "activation vector (a per-layer logistic direction separating sentences about it from generic text); "
                "the score of a target is cos(target, A) − cos(target, B), averaged over layers, > 0 leaning to A. "
                "Validated in notebook 70 on tiny encoders trained with a planted co-occurrence rate: the score must "
                "rise with the planted rate.")
    pairs = {"male vs female": ("male", "female"), "pleasant vs unpleasant": ("pleasant", "unpleasant"),
             "young vs old": ("young", "old")}
    with st.form("biaslens_run"):
        targets = st.text_input("targets (comma-separated words or concepts)", "nurse, engineer, teacher, pilot",
                                key="biaslens_targets")
        left, middle, right = st.columns(3)
        chosen_pairs = left.multiselect("reference pairs", list(pairs), ["male vs female"], key="biaslens_pairs")
        n_boot = middle.select_slider("bootstrap replicates", [0, 5, 20], 5, key="biaslens_boot")
        path = right.text_input("encoder directory (empty: MiniLM-L6)", "", key="biaslens_encoder")
        go = st.form_submit_button("Score the concepts", type="primary")
    if go:
        params = dict(targets=[t.strip() for t in targets.split(",") if t.strip()],
                      reference_pairs=[pairs[p] for p in chosen_pairs], n_boot=n_boot, encoder=path.strip() or None)
        start_run(store, "biaslens", params, lambda on_progress: {"minilm_scores.csv": biaslens.biaslens_scores(
            text_encoder(path.strip()), params["targets"], params["reference_pairs"], n_boot=n_boot,
            on_progress=on_progress)})
    table = stacked(store, compared_runs(store, "biaslens", "minilm_scores.csv", "biaslens_runs"), "minilm_scores.csv")
    if not table.empty:
        if "variant" in table:  # the notebook scores several variants; its first is the plain CAV score
            table = table[table.variant.isna() | (table.variant == table.variant.dropna().iloc[0])]
        table["pair"] = table.concept_a + " vs " + table.concept_b
        bars = alt.Chart().encode(y=alt.Y("target:N", title=None, sort="-x"))
        chart = alt.layer(
            bars.mark_bar().encode(x=alt.X("score:Q", title="BiasLens score (> 0: leans to the first concept)"),
                                   color=alt.condition("datum.score > 0", alt.value("#c0392b"), alt.value("#2e86c1")),
                                   tooltip=["run", "target", "pair", alt.Tooltip("score:Q", format=".3f"),
                                            alt.Tooltip("ci_low:Q", format=".3f"), alt.Tooltip("ci_high:Q", format=".3f"),
                                            "encoder"]),
            bars.mark_rule().encode(x="ci_low:Q", x2="ci_high:Q"), data=table)
        st.altair_chart(chart.properties(width=320, height=alt.Step(14)).facet(
            row=alt.Row("run:N", title=None), column=alt.Column("pair:N", title=None)).resolve_scale(y="independent"),
            width="content")
    planted = stacked(store, compared_runs(store, "biaslens", "planted_scores.csv", "planted_runs"), "planted_scores.csv")
    if not planted.empty:
        st.markdown("**The planted check** (from the notebook's runs): the score of the target, its mirror and a "
                    "control against the planted co-occurrence rate.")
        st.altair_chart(per_run(alt.Chart(planted).mark_line(point=True).encode(
            x=alt.X("planted_rate:Q", title="planted rate of the word with A (mirror: 1 − rate; control: 0.5)",
                    scale=alt.Scale(domain=[0, 1])),
            y=alt.Y("mean(score):Q", title="BiasLens score (mean over seeds)"), color=alt.Color("role:N"),
            tooltip=["run", "word", "role", "planted_rate", alt.Tooltip("mean(score):Q", format=".3f")],
        ), "space", 260, 200), width="content")

with probe_tab:
    st.markdown("**Are Sparse Autoencoders Useful?** (Kantamneni et al.): probes on a TopK SAE's top latents against "
                "logistic regression, PCA, KNN and MLP probes under data scarcity, class imbalance, label noise and "
                "covariate shift. The \"quiver\" picks the best probe by validation AUC; the paper finds that adding "
                "SAE probes to it gives no consistent gain. Synthetic activations have a known sparse dictionary; text "
                "activations are MiniLM's contextual embeddings of WEAT category words; benchmark activations are "
                "MiniLM's last-token states of three of the paper's own datasets (SST-2, spam, CoLA with its shifted "
                "set).")
    with st.form("probe_run"):
        left, middle, right = st.columns(3)
        source = left.selectbox("activations", ["synthetic", "text", "benchmark"], key="probe_source")
        regimes = middle.multiselect("regimes", sae.REGIMES, ["scarcity", "covariate_shift"], key="probe_regimes")
        methods = right.multiselect("baselines", sae.BASELINES, ["logreg", "pca"], key="probe_methods")
        sae_steps = left.select_slider("SAE training steps", [100, 300, 1000, 3000], 300, key="probe_sae_steps")
        go = st.form_submit_button("Train the SAE and probe", type="primary")
    if go:
        params = dict(source=source, regimes={r: sae.DEFAULT_REGIMES[r] for r in regimes}, methods=methods,
                      sae_steps=sae_steps, sae_ks=[1, 4, 16], n_train=64, n_test=150)
        if source == "benchmark":  # 700 prompts a task: enough for the n = 512 scarcity cell and its test set
            params |= dict(benchmark_names=PAGE_BENCHMARK, max_prompts=700)

        def probes(on_progress):
            if not regimes:  # an empty grid would run nothing; say so by name as the library does
                raise ParameterError("regimes is empty; give at least one value")
            shifted = 1 if source == "benchmark" else 3  # tasks with a shifted pool (of 3)
            total = 1 + sum(len(sae.DEFAULT_REGIMES[r]) * (shifted if r == "covariate_shift" else 3) for r in regimes)
            done = iter(range(1, total + 1))  # the library reports a dict per finished step, not a count
            table = sae.probe_comparison(**params, on_progress=lambda _: on_progress(next(done), total))
            return {"probes.csv": table, "quiver_gain.csv": sae.quiver_gain(table)}

        start_run(store, "sae_probing", params, probes)
    chosen = compared_runs(store, "sae_probing", "probes.csv", "probe_runs")
    table, gains = stacked(store, chosen, "probes.csv"), stacked(store, chosen, "quiver_gain.csv")
    if not table.empty:
        st.altair_chart(per_run(alt.Chart(table).mark_boxplot(extent="min-max").encode(
            x=alt.X("method:N", title=None), y=alt.Y("test_auc:Q", scale=alt.Scale(zero=False), title="test AUC"),
            color=alt.Color("family:N", sort=["baseline", "sae", "quiver"]),
            tooltip=["run", "source", "task", "regime", "setting_label", "method", "pick",
                     alt.Tooltip("test_auc:Q", format=".3f")],
        ), "regime", 200, 200), width="content")
        st.dataframe(gains, hide_index=True)

with attention_tab:
    st.markdown("The attention of a typed sentence in the encoder these measures read (also on the Attention page).")
    text_attention_view("rep_text")
