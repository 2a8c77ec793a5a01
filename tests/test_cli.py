"""`asr-gan <verb>`: every verb reaches its module's command line; the console script is declared."""

import importlib
import tomllib
from pathlib import Path

from asr_gan.cli import VERBS, main

ROOT = Path(__file__).resolve().parents[1]


def test_help_lists_every_verb_and_each_verb_has_a_command_line(capsys):
    assert main(["--help"]) == 0
    printed = capsys.readouterr().out
    assert all(verb in printed for verb in VERBS)
    for module, _ in VERBS.values():
        assert callable(importlib.import_module(module).main), module
    assert main(["features", "--help"]) == 0 and "--frontend" in capsys.readouterr().out
    assert main(["no-such-verb"]) == 2 and "unknown verb" in capsys.readouterr().err
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["asr-gan"] == "asr_gan.cli:main"


def test_score_verb_scores_files(tmp_path, capsys):
    (tmp_path / "ref").write_text("u1 a b c d\n")
    (tmp_path / "hyp").write_text("u1 a b x d\n")
    assert main(["score", "--ref", str(tmp_path / "ref"), "--hyp", str(tmp_path / "hyp"), "--unit", "phone"]) == 0
    assert "25.0" in capsys.readouterr().out
