"""Sweep: grid expansion, config overrides, metrics collection, label-free selection, convergence, report."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest
import yaml

from asr_gan.train.sweep import main
from asr_gan.train.sweep_plan import SweepConfig, apply_overrides, expand_runs, parse_grid
from asr_gan.train.sweep_results import collect_results, read_run_metrics, summarise
from asr_gan.train.sweep_runs import worker_slots


def write_metrics(run_dir: Path, records: list[dict]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def test_grid_values_are_typed_and_every_setting_gets_every_seed():
    grid = parse_grid(["cycle_audio_weight=0,1", "optim.lr=1e-4,0.0005"])
    assert grid == {"cycle_audio_weight": [0, 1], "optim.lr": [1e-4, 0.0005]}
    runs = expand_runs(grid, [0, 1, 2])
    assert len(runs) == 12
    assert runs[0].name == "cycle_audio_weight=0_lr=0.0001_seed0"
    assert {r.seed for r in runs} == {0, 1, 2}
    with pytest.raises(ValueError, match="key=value"):
        parse_grid(["oops"])


def test_dotted_overrides_reach_into_sections_without_touching_the_base():
    base = {"seed": 1, "generator": {"dropout": 0.1, "kernel": 4}}
    out = apply_overrides(base, {"generator.dropout": 0.3, "seed": 5, "new.key": 2})
    assert out == {"seed": 5, "generator": {"dropout": 0.3, "kernel": 4}, "new": {"key": 2}}
    assert base["generator"]["dropout"] == 0.1


def test_run_metrics_take_the_lowest_selectable_metric_record_and_its_per(tmp_path):
    write_metrics(tmp_path, [{"step": 50, "weighted_lm_ppl": 5.0, "valid_per": 0.9, "selectable": False},
                             {"step": 100, "weighted_lm_ppl": 30.0, "valid_per": 0.6},
                             {"step": 200, "train_loss": 1.0},
                             {"step": 300, "weighted_lm_ppl": 12.5, "valid_per": 0.35},
                             {"step": 400, "weighted_lm_ppl": 14.0, "valid_per": 0.30}])
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 500, "weighted_')  # a run killed mid-write
    best = read_run_metrics(tmp_path, "weighted_lm_ppl", ["valid_per"])
    assert best == {"best_metric": 12.5, "best_step": 300, "per": 0.35, "min_per": 0.30}
    assert read_run_metrics(tmp_path / "missing", "weighted_lm_ppl", ["valid_per"]) is None


def test_selection_is_label_free_and_convergence_uses_per_when_logged(tmp_path):
    config = SweepConfig(config="", out=str(tmp_path), converged_per=0.4)
    specs = expand_runs({"w": [0, 1]}, [0, 1])
    write_metrics(tmp_path / specs[0].name, [{"step": 1, "weighted_lm_ppl": 50.0, "valid_per": 0.9}])
    write_metrics(tmp_path / specs[1].name, [{"step": 1, "weighted_lm_ppl": 9.0, "valid_per": 0.25}])
    # lowest PER but not the lowest metric: selection must not look at PER
    write_metrics(tmp_path / specs[2].name, [{"step": 1, "weighted_lm_ppl": 11.0, "valid_per": 0.2}])
    codes = {specs[3].name: 1}  # crashed before logging
    summary = summarise(collect_results(specs, codes, config), config)
    assert summary.selected == specs[1].name
    assert [r.converged for r in summary.runs] == [False, True, True, False]
    assert summary.converged_share == pytest.approx(0.5)
    assert summary.runs[3].status == "failed (rc 1)"


def test_without_per_convergence_is_relative_to_the_best_metric(tmp_path):
    config = SweepConfig(config="", out=str(tmp_path), converged_ratio=2.0)
    specs = expand_runs({}, [0, 1, 2])
    for spec, value in zip(specs, [10.0, 19.0, 25.0]):
        write_metrics(tmp_path / spec.name, [{"weighted_lm_ppl": value}])
    summary = summarise(collect_results(specs, {}, config), config)
    assert summary.selected == "seed0"
    assert [r.converged for r in summary.runs] == [True, True, False]
    assert "no PER" in summary.convergence_rule


# A stand-in for `python -m asr_gan.train` (not yet in the repository): reads the run config the sweep wrote
# and logs a metric that depends on the seed and the grid value, so the test knows which run must win.
FAKE_TRAINER = """
import json, sys, yaml
config, out = sys.argv[1], sys.argv[2]
c = yaml.safe_load(open(config))
if c['seed'] == 2 and c['w'] == 0:
    sys.exit(3)
ppl = 10.0 + c['seed'] + 5 * c['w']
with open(out + '/metrics.jsonl', 'w') as f:
    for step in (1, 2):
        f.write(json.dumps({'step': step, 'weighted_lm_ppl': ppl + 2 - step, 'valid_per': 0.1 * ppl / step}) + '\\n')
"""


def test_sweep_cli_runs_every_run_in_parallel_and_reports_the_selected_one(tmp_path, capsys):
    base = tmp_path / "gan.yaml"
    base.write_text(yaml.safe_dump({"seed": 0, "w": 5, "steps": 3}))
    script = tmp_path / "trainer.py"
    script.write_text(FAKE_TRAINER)
    command = f"{shlex.quote(sys.executable)} {script} {{config}} {{out}}"
    out = tmp_path / "sweep"
    argv = ["--config", str(base), "--seeds", "0", "1", "2", "--grid", "w=0,1", "--out", str(out),
            "--parallel", "2", "--train-command", command, "--converged-per", "1.2"]
    assert main(argv) == 0
    report = json.loads((out / "sweep.json").read_text())
    assert report["selected"] == "w=0_seed0"
    runs = {r["name"]: r for r in report["runs"]}
    assert runs["w=0_seed0"]["best_metric"] == 10.0 and runs["w=0_seed0"]["best_step"] == 2
    assert runs["w=0_seed2"]["status"] == "failed (rc 3)"
    # PER is read at the selected (step 2) record: 0.1 * 17 / 2 for w=1, seed 2; every finished run is below
    # 1.2 and the failed run counts as not converged
    assert runs["w=1_seed2"]["per"] == pytest.approx(0.1 * 17 / 2)
    assert report["converged_share"] == pytest.approx(5 / 6)
    assert yaml.safe_load((out / "w=1_seed2" / "sweep_config.yaml").read_text()) == {"seed": 2, "w": 1, "steps": 3}
    assert "**w=0_seed0** (selected)" in (out / "sweep.md").read_text()
    # every run's curves in one picture, linked from the table; the failed run has none and is left out
    assert (out / "sweep.png").stat().st_size > 0 and "](sweep.png)" in (out / "sweep.md").read_text()
    # a rerun skips the finished runs and retries only the failed one
    capsys.readouterr()
    main(argv)
    assert "5 runs already finished" in capsys.readouterr().out


def test_setting_table_gives_mean_std_best_and_converged_seeds_per_setting():
    from asr_gan.train.sweep_report import setting_table
    from asr_gan.train.sweep_results import RunResult, SweepSummary

    runs = [RunResult("a0", 0, {"w": 0}, "ok", 10.0, 5, 0.30, 0.30, True),
            RunResult("a1", 1, {"w": 0}, "ok", 12.0, 5, 0.50, 0.45, False),
            RunResult("b0", 0, {"w": 1}, "failed (rc 1)", None, None, None, None, False)]
    lines = setting_table(SweepSummary(runs, "a0", "rule", 1 / 3), ["w"])
    assert lines[-2] == "| 0 | 2 | 40.0 | 10.0 | 30.0 | 1/2 |"
    assert lines[-1] == "| 1 | 1 | - | - | - | 0/1 |"


def test_named_settings_run_each_with_every_seed_and_are_summed_up_by_name(tmp_path, capsys):
    from asr_gan.train.sweep_plan import parse_settings

    settings = parse_settings(["base:", "audio:loss.cycle_audio=1", "both:loss.cycle_audio=1,loss.cycle_text=0.5"])
    assert settings == {"base": {}, "audio": {"loss.cycle_audio": 1},
                        "both": {"loss.cycle_audio": 1, "loss.cycle_text": 0.5}}
    runs = expand_runs({}, [1, 2], settings)
    assert [r.name for r in runs] == ["base_seed1", "base_seed2", "audio_seed1", "audio_seed2", "both_seed1",
                                      "both_seed2"]
    for bad in (["noname"], ["a:b"], ["x:k=1", "x:k=2"], ["a=b:k=1"]):
        with pytest.raises(ValueError, match="--settings"):
            parse_settings(bad)
    with pytest.raises(ValueError, match="not both"):
        expand_runs({"w": [0]}, [1], {"a": {}})

    base = tmp_path / "gan.yaml"
    base.write_text(yaml.safe_dump({"seed": 0, "w": 5, "steps": 3}))
    script = tmp_path / "trainer.py"
    script.write_text(FAKE_TRAINER)
    out = tmp_path / "sweep"
    assert main(["--config", str(base), "--seeds", "0", "1", "--settings", "base:", "zero:w=0", "--out", str(out),
                 "--train-command", f"{shlex.quote(sys.executable)} {script} {{config}} {{out}}",
                 "--converged-per", "1.2"]) == 0
    report = json.loads((out / "sweep.json").read_text())
    assert {r["name"]: r["setting"] for r in report["runs"]} == {"base_seed0": "base", "base_seed1": "base",
                                                                 "zero_seed0": "zero", "zero_seed1": "zero"}
    assert yaml.safe_load((out / "base_seed1" / "sweep_config.yaml").read_text())["w"] == 5
    table = (out / "sweep.md").read_text()
    assert "| setting | w | seeds |" in table and "| base | - | 2 |" in table and "| zero | 0 | 2 |" in table


def test_worker_slots_deal_runs_over_the_gpus_and_split_the_cpu_threads(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    cpu = worker_slots(2, gpus=0)
    assert [s["CUDA_VISIBLE_DEVICES"] for s in cpu] == ["", ""] and cpu[0]["OMP_NUM_THREADS"] == "8"
    one_gpu = worker_slots(4, gpus=1)
    assert [s["CUDA_VISIBLE_DEVICES"] for s in one_gpu] == ["0"] * 4 and one_gpu[0]["OMP_NUM_THREADS"] == "4"
    # never fewer workers than GPUs, so --parallel 1 still uses every GPU
    assert [s["CUDA_VISIBLE_DEVICES"] for s in worker_slots(1, gpus=2)] == ["0", "1"]
    assert [s["CUDA_VISIBLE_DEVICES"] for s in worker_slots(3, gpus=2)] == ["0", "1", "0"]
