"""The package's layout holds: imports run one way along the data flow, and the product never needs the lab."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "asr_gan"
# A module may import from its own step and from earlier ones, never from a later one.
STEP = {"manifest": 0, "audio": 0, "ctm": 0, "edits": 0, "text": 1, "features": 1, "models": 2, "train": 3,
        "decode": 4, "scoring": 5, "results": 5, "lab": 6, "cli": 7}


def imported_steps(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = ([node.module] if isinstance(node, ast.ImportFrom) and node.module else
                 [a.name for a in node.names] if isinstance(node, ast.Import) else [])
        found += [(node.lineno, n.split(".")[1]) for n in names if n.startswith("asr_gan.")]
    return found


def test_every_subpackage_has_a_step():
    tops = {p.name.removesuffix(".py") for p in PACKAGE.iterdir()
            if p.name != "__init__.py" and (p.suffix == ".py" or (p / "__init__.py").is_file())}
    assert tops - {"__pycache__"} <= set(STEP), sorted(tops - set(STEP))


def test_imports_run_from_audio_to_results_and_never_into_the_lab():
    backwards = []
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).parts
        step = parts[0].removesuffix(".py")
        if step == "__init__" or step == "cli":  # the console script names every verb's module
            continue
        for line, other in imported_steps(path):
            if other in STEP and STEP[other] > STEP[step]:
                backwards.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports asr_gan.{other}")
    assert not backwards, "\n".join(backwards)


def test_recipes_run_no_lab_tool_by_default():
    recipes = PACKAGE.parent / "recipes"
    uses = [f"{p.name}: {line.strip()}" for p in recipes.glob("*.sh")
            for line in p.read_text().splitlines() if "asr_gan.lab" in line and not line.lstrip().startswith("#")]
    assert not uses, "\n".join(uses)
