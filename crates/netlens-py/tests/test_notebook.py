"""examples/practical.ipynb runs top to bottom (nbclient, a fresh kernel): a cell that
raises fails the test."""

import nbformat
from nbclient import NotebookClient

from conftest import ROOT


def test_the_practical_notebook_runs():
    path = ROOT / "examples" / "practical.ipynb"
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, kernel_name="python3", timeout=900,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 8, f"{len(images)} figures drawn"
