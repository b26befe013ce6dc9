"""The project's promises about itself: the README's two commands, CI running exactly the test command, README in sync."""
import re
import subprocess
import sys

from conftest import ROOT


def readme_commands() -> list[str]:
    block = re.search(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]


def test_readme_opens_with_the_two_commands():
    assert readme_commands() == ["./dev explorer", "./dev test"]


def test_ci_runs_exactly_the_readme_test_command():
    lines = [l for l in (ROOT / ".ci/run").read_text().splitlines() if l.strip() and not l.startswith(("#", "set ", "cd "))]
    assert lines == ["exec ./dev test"]


def test_readme_is_made_from_the_index_notebook(tmp_path):
    subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "markdown", str(ROOT / "nbs/index.ipynb"),
                    "--output", "README", "--output-dir", str(tmp_path)], check=True, capture_output=True)
    assert (tmp_path / "README.md").read_text() == (ROOT / "README.md").read_text(), "regenerate README.md from nbs/index.ipynb"


def test_dev_script_names_its_commands():
    out = subprocess.run(["bash", str(ROOT / "dev"), "help"], capture_output=True, text=True)
    assert out.returncode == 2 and "./dev explorer" in out.stdout and "./dev test" in out.stdout
