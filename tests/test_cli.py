"""The command line: exit codes, one-line errors, no tracebacks, light imports."""

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from bench import BenchError
from bench.cli import build_parser, main, split_noise_list

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "ray", "pandas", "segmentation_models_pytorch")
# Calls bench.cli.main in a fresh interpreter, then prints which heavy modules it imported as the last stdout line.
CHILD = f"""
import sys
from bench.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as stop:
    code = stop.code
print("loaded:", *[m for m in {HEAVY!r} if m in sys.modules])
sys.exit(code)
"""


def run_child(argv: list[str]) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run `bench ARGV` through CHILD from the repository root; the result and the heavy modules it imported."""
    out = subprocess.run([sys.executable, "-c", CHILD, *argv], cwd=ROOT, capture_output=True, text=True)
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("loaded:"), out.stdout + out.stderr
    return out, set(last.split()[1:])


def help_argvs(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[list[str]]:
    """`--help` of the parser and of every subcommand under it, nested ones too."""
    argvs = [[*prefix, "--help"]]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                argvs += help_argvs(sub, (*prefix, name))
    return argvs


@pytest.mark.parametrize("argv", help_argvs(build_parser()), ids=" ".join)
def test_help_imports_no_torch_ray_or_pandas(argv):
    out, loaded = run_child(argv)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: bench")
    assert loaded == set(), f"bench {' '.join(argv)} imported {sorted(loaded)}"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--method", "basline"], "bench: error: unknown method 'basline'; did you mean 'baseline'? (see: bench list methods)"),
        (["run", "--noise", "systemtic:0.5"], "bench: error: unknown noise type 'systemtic'; did you mean 'systematic'?"),
    ],
)
def test_bad_name_is_refused_before_ray_or_the_model(argv, message, tmp_path):
    out, loaded = run_child([*argv, "--out", str(tmp_path / "r")])
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and out.stderr.startswith(message), out.stderr
    assert not loaded & {"ray", "segmentation_models_pytorch"}, sorted(loaded)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--method", "basline"], "unknown method 'basline'; did you mean 'baseline'? (see: bench list methods)"),
        (["run", "--protocol", "phantom-quik"], "unknown protocol 'phantom-quik'; did you mean 'phantom-quick'?"),
        (["run", "--noise", "systematic"], "malformed noise spec 'systematic'; use TYPE:LEVEL"),
        (["run", "--noise", "systemic:0.5"], "unknown noise type 'systemic'; did you mean 'systematic'?"),
        (["run", "--noise", "systematic:1.2"], "level 1.2 is outside [0, 1]"),
        (["run", "--noise", "systematic:abc"], "level 'abc' is not a number"),
        (["run", "--noise", "systematic:0.5,size=3"], "unknown key 'size' for systematic; allowed keys: direction, mm, structure"),
        (["run", "--noise", "systematic:0.5,structure=rv"], "structure=rv is not allowed; use one of lv, myo, la"),
        (["run", "--noise", "random:0.5,max_mm=99"], "max_mm=99 is out of range"),
        (["run", "--seeds", "0"], "--seeds must be between 1 and 1000"),
        (["run", "--seed", "a"], "--seed must be integers"),
        (["run", "--cpus-per-trial", "0"], "--cpus-per-trial must be at least 1"),
        (["run", "--frobnicate"], "unrecognized arguments: --frobnicate"),
        (["lst"], "invalid choice: 'lst'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("bench: error: ")
    assert message in lines[0]
    assert captured.out == ""


def test_console_script_and_module_exit_2_without_traceback(tmp_path):
    script = str(Path(sys.executable).parent / "bench")
    for cmd in ([script], [sys.executable, "-m", "bench"]):
        out = subprocess.run([*cmd, "run", "--method", "vog-refrub", "--out", str(tmp_path / "r")], capture_output=True, text=True)
        assert out.returncode == 2
        assert "Traceback" not in out.stderr
        assert out.stderr.count("\n") == 1
        assert "unknown method 'vog-refrub'" in out.stderr
    assert not (tmp_path / "r").exists()


def test_list_prints_every_kind(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for word in ("methods", "protocols", "datasets", "noise", "detectors", "refurbishers", "trainers", "loss-refurb", "echo-phantom"):
        assert word in out


def test_list_one_kind(capsys):
    assert main(["list", "protocols"]) == 0
    out = capsys.readouterr().out
    assert "phantom-quick" in out and "loss-refurb" not in out


def test_noise_lists_keep_parameters_with_their_spec():
    assert split_noise_list("systematic:0.5,random:0.25,max_mm=6,min_mm=2,none") == [
        "systematic:0.5",
        "random:0.25,max_mm=6,min_mm=2",
        "none",
    ]
    with pytest.raises(BenchError, match="starts with a parameter"):
        split_noise_list("mm=3,systematic:0.5")


def test_data_show_draws_a_grid_png(tmp_path, capsys):
    from PIL import Image

    from bench.plots import CAPTION, GAP, PANEL

    out = tmp_path / "phantom.png"
    assert main(["data", "show", "echo-phantom", "--size", "64", "--count", "6", "--out", str(out)]) == 0
    image = Image.open(out)
    assert image.format == "PNG"
    assert image.size == (4 * PANEL + 5 * GAP, CAPTION + 2 * (PANEL + GAP))  # 6 panels in rows of 4
    assert [p.name for p in tmp_path.iterdir()] == ["phantom.png"]
    assert "wrote" in capsys.readouterr().out


def test_data_show_passes_dataset_options(tmp_path, capsys):
    out = tmp_path / "phantom.png"
    argv = ["data", "show", "echo-phantom", "--size", "64", "--count", "2", "--option", "generator=3", "--out", str(out)]
    assert main(argv) == 0
    assert "echo-phantom generator=3 at 64px" in capsys.readouterr().out
    assert out.is_file()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["data", "show", "echo-phantm"], "unknown dataset 'echo-phantm'; did you mean 'echo-phantom'?"),
        (["data", "show", "echo-phantom", "--out", "x.jpg"], "must end in .png"),
        (["data", "show", "echo-phantom", "--count", "0"], "--count must be between 1 and 64"),
        (["data", "show", "camus", "--data-root", "/nonexistent/camus"], "/nonexistent/camus"),
        (["data", "show", "echo-phantom", "--option", "generator"], "--option 'generator' is malformed; write KEY=VALUE"),
        (["data", "show", "echo-phantom", "--option", "generator=9"], "generator=9 is unknown; use one of 2, 3"),
        (["data", "show", "echo-phantom", "--option", "colour=red"], "dataset 'echo-phantom' has no option 'colour'; its options:"),
    ],
)
def test_data_show_bad_input_writes_nothing(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_pick_examples_covers_every_quality_grade():
    import pandas as pd

    from bench.cli import pick_examples

    info = pd.DataFrame(
        {
            "patient": [f"p{i // 4}" for i in range(40)],
            "quality": ["good"] * 20 + ["poor"] * 12 + ["medium"] * 8,
        }
    )
    rows = pick_examples(info, 12)
    assert len(rows) == 12
    assert set(info["quality"].iloc[rows]) == {"good", "medium", "poor"}
    assert len(set(info["patient"].iloc[rows])) == 3  # whole patients: all four frames each
