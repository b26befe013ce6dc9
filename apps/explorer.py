"""Inductive Bias Workbench explorer: `streamlit run apps/explorer.py` (the run store is $WORKBENCH_RUNS, default ./runs)."""
from pathlib import Path

import streamlit as st

PAGES = Path(__file__).parent / "pages"

st.set_page_config(page_title="Inductive Bias Workbench", page_icon=":material/biotech:", layout="wide")
navigation = st.navigation([
    st.Page(PAGES / "grokking.py", title="Grokking dynamics", icon=":material/insights:", default=True),
    st.Page(PAGES / "runs.py", title="Run store", icon=":material/storage:"),
    st.Page(PAGES / "top_down.py", title="Top-down maps", icon=":material/center_focus_strong:"),
    st.Page(PAGES / "attention.py", title="Attention", icon=":material/visibility:"),
    st.Page(PAGES / "bias_measures.py", title="Bias measures", icon=":material/straighten:"),
    st.Page(PAGES / "shortcuts.py", title="Simplicity & shortcuts", icon=":material/alt_route:"),
    st.Page(PAGES / "representations.py", title="Bias in representations", icon=":material/balance:"),
])
navigation.run()
