"""Every notebook in notebooks/ runs top to bottom (code cells executed in order, in-process), and
asserts its own results (02_what_if and 03_learn_from_decisions build a workspace of the sample
month in a temporary folder, review it from truth.csv and check what they show)."""

import json
import os
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")  # the notebooks' charts are drawn, not shown
import matplotlib.pyplot as plt  # noqa: E402

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_top_to_bottom(path: Path, monkeypatch):
    monkeypatch.chdir(path.parent)
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    namespace: dict = {"__name__": "__notebook__"}
    try:
        for number, cell in enumerate(cells):
            if cell["cell_type"] != "code":
                continue
            source = "".join(cell["source"])
            try:
                exec(compile(source, f"{path.name}[cell {number}]", "exec"), namespace)
            except Exception as exc:  # name the cell that failed
                raise AssertionError(f"{path.name} cell {number} failed: {exc!r}\n{source}") from exc
    finally:
        plt.close("all")
    assert os.getcwd() == str(path.parent)


def test_there_is_a_notebook():
    assert NOTEBOOKS, "notebooks/ must hold at least the first analyst notebook"


def test_the_analyst_loop_notebooks_are_there():
    names = {path.name for path in NOTEBOOKS}
    assert {"02_what_if.ipynb", "03_learn_from_decisions.ipynb"} <= names
