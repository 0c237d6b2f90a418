"""The README's Python examples run as written (in order, sharing one namespace)."""
import os
import re

import pytest

README = os.path.join(os.path.dirname(__file__), os.pardir, "README.md")


def test_readme_examples_run(tmp_path, monkeypatch):
    if not os.path.exists(README):
        pytest.skip("README.md is not beside the tests (installed without the source tree)")
    with open(README) as f:
        blocks = re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)  # the fit example saves a model file
    namespace = {}
    for block in blocks:
        code = block.replace("epochs=5", "epochs=1")
        exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 (our own documentation)
    assert namespace["dx"].shape == (10, 4, 8)
