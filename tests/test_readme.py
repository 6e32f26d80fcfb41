"""The README's "Use from Python" example runs as written, on the shipped model."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def readme_python_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Use from Python", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the section has one Python example"
    return blocks[0]


def test_the_use_from_python_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VAEGEN_MODEL", raising=False)
    code = readme_python_example().replace('"docs/', f'"{ROOT}/docs/')
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 (our own README)
    x, walk, images = scope["x"], scope["walk"], scope["images"]
    assert x.shape == (64, 1, 28, 28) and x.dtype == np.float32
    assert walk.shape == (10, 1, 28, 28) and images.shape[0] == 9 * len(scope["dims"])
    assert scope["sevens"].shape == (8, 1, 28, 28)
    assert (tmp_path / "grid.png").is_file()
    assert capsys.readouterr().out.startswith("64 ")
