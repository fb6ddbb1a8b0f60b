"""The ``fastnn`` command line: one-line errors with status 2, each command runs,
output paths are checked before training, and the help agrees with the README."""

import argparse
import inspect
import os
import pathlib
import re
import subprocess
import sys

import matplotlib.image
import numpy as np
import pytest

import fastnn
from fastnn import backends, cli
from fastnn.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[1]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("argv", [
    [],
    ["nope"],
    ["train", "--iterations", "-3"],
    ["train", "--iterations", "ten"],
    ["train", "--learning-rate", "0"],
    ["train", "--layers", "2,x,1"],
    ["train", "--layers", "3,4,1"],          # planar has 2 features
    ["train", "--dataset", "mnist"],
    ["train", "--backend", "fortran", "--iterations", "1"],
    ["train", "--activation", "swish", "--iterations", "1"],
    ["report", "--from-json", "/no/such/file.json"],
    ["bench", "--fast"],
])
def test_bad_arguments_give_one_line_and_status_2(argv, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("fastnn: error: ")
    assert "Traceback" not in captured.err + captured.out


def test_bad_arguments_through_the_console_entry_point():
    proc = subprocess.run([sys.executable, "-m", "fastnn", "train", "--layers", "2,0,1"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "--layers" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_backends_lists_every_backend():
    proc = subprocess.run([sys.executable, "-m", "fastnn", "backends"], capture_output=True,
                          text=True, env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    for name in backends.names():
        assert name in proc.stdout


def test_train_prints_costs_final_cost_accuracy_time_and_plots(tmp_path, capsys):
    png = tmp_path / "boundary.png"
    assert main(["train", "--iterations", "60", "--cost-every", "20", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    for i in (0, 20, 40):
        assert f"Cost after iteration {i}:" in out
    assert "accuracy on the training set" in out and "time per iteration" in out
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    image = matplotlib.image.imread(png)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def test_train_prints_the_final_cost_when_cost_every_exceeds_iterations(capsys):
    assert main(["train", "--iterations", "100"]) == 0  # --cost-every defaults to 1000
    out = capsys.readouterr().out
    final = float(re.search(r"final cost \(after all 100 iterations\): ([\d.]+)", out).group(1))
    net = fastnn.Network([2, 4, 1], hidden_activation="tanh", init="random", seed=2)
    X, Y = fastnn.datasets.planar()
    expected = net.fit(X, Y, learning_rate=1.2, num_iterations=100).cost(X, Y)
    assert final == pytest.approx(expected, abs=1e-6)
    assert final != pytest.approx(float(re.search(r"iteration 0: ([\d.]+)", out).group(1)))


@pytest.mark.parametrize("plot, message", [("/no/such/folder/b.png", "does not exist"),
                                           ("boundary.txt", "expected a .png")])
def test_plot_path_is_checked_before_training(plot, message, capsys, monkeypatch):
    monkeypatch.setattr(fastnn.Network, "fit", lambda *a, **k: pytest.fail("trained"))
    assert main(["train", "--plot", plot]) == 2
    assert message in capsys.readouterr().err


def test_progress_is_plain_lines_on_stderr_when_not_a_terminal():
    proc = subprocess.run([sys.executable, "-m", "fastnn", "train", "--iterations", "50"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines()[0] == "fastnn: training numpy: 50 iterations ..."
    assert re.fullmatch(r"fastnn: trained numpy in [\d.]+ s", proc.stderr.splitlines()[1])
    assert "\x1b[" not in proc.stderr + proc.stdout  # no terminal control codes


def _flower_rows(out):
    """{backend: final cost} from the flower table."""
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in re.split(r"[│|]", line) if c.strip()]
        if len(cells) == 7 and cells[0] in backends.names():
            rows[cells[0]] = float(cells[2])
    return rows


def test_flower_shows_one_final_cost_per_backend(capsys):
    assert main(["flower", "--iterations", "30"]) == 0
    out = capsys.readouterr().out
    rows = _flower_rows(out)
    assert set(rows) == {n for n, ok in backends.available().items() if ok is True}
    X, Y = fastnn.datasets.planar()
    net = fastnn.Network([2, 4, 1], hidden_activation="tanh", init="random", seed=2)
    expected = net.fit(X, Y, learning_rate=1.2, num_iterations=30).cost(X, Y)
    for name, cost in rows.items():
        assert cost == pytest.approx(expected, abs=1e-6), name
    # Only rungs that ran fewer iterations than asked get a note; here none did.
    assert "relative difference" not in out


def test_flower_slow_rungs_are_checked_against_numpy(capsys, monkeypatch):
    import fastnn.cli as cli

    monkeypatch.setattr(cli, "FLOWER_SLOW_ITERATIONS", 10)
    assert main(["flower", "--iterations", "30"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    diffs = [float(part.split()[0].rstrip(")")) for part in out.split("relative difference ")[1:]]
    slow = [n for n, ok in backends.available().items() if ok is True and backends.get(n).SLOW]
    assert len(diffs) == len(slow) >= 1
    assert np.all(np.array(diffs) <= 1e-12)


def _subcommands():
    parser = cli._parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sub.choices


def test_readme_command_lines_use_only_real_options():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Command line")[1].split("\n## ")[0]
    commands = _subcommands()
    used = re.findall(r"`fastnn ([a-z]+)([^`]*)`", section)
    assert {c for c, _ in used} == set(commands)
    for command, rest in used:
        known = {o for a in commands[command]._actions for o in a.option_strings}
        for option in re.findall(r"--[\w-]+", rest):
            assert option in known, f"README: fastnn {command} {option}"


def test_cli_defaults_equal_the_apis_or_the_help_says_why():
    params = inspect.signature(fastnn.Network).parameters
    api = {"init": "init", "seed": "seed", "backend": "backend", "dtype": "dtype",
           "threads": "threads", "activation": "hidden_activation"}
    for action in _subcommands()["train"]._actions:
        if action.dest in api and action.default != params[api[action.dest]].default:
            assert "API" in (action.help or ""), f"--{action.dest} default {action.default!r}"
    assert "four" not in cli._parser().description
