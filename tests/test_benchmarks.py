"""The benchmark scripts still start: they import the kit's internals, so a rename in the kit breaks
them, and nothing else runs them (their figures are measured by hand, never in the suite)."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = sorted((Path(__file__).resolve().parents[1] / "benchmarks").glob("*.py"))
# The baseline is the lesson's bare code, with no options of its own: it is only compiled here.
BASELINE = "lesson_script.py"


def test_there_are_benchmark_scripts():
    assert {path.name for path in BENCHMARKS} >= {"run_benchmarks.py", BASELINE}


def test_the_baseline_compiles():
    baseline = next(path for path in BENCHMARKS if path.name == BASELINE)
    compile(baseline.read_text(encoding="utf-8"), str(baseline), "exec")


@pytest.mark.parametrize("script", [path for path in BENCHMARKS if path.name != BASELINE], ids=lambda path: path.name)
def test_a_benchmark_script_starts_and_explains_itself(script):
    proc = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "usage:" in proc.stdout


def test_the_cluster_benchmark_grades_through_a_real_scheduler_and_prints_its_figures():
    """cluster_throughput.py with tiny stand-in gradings: a real dask scheduler and workers on the
    loopback, the local pool beside them, and the overhead table."""
    script = next(path for path in BENCHMARKS if path.name == "cluster_throughput.py")
    proc = subprocess.run([sys.executable, str(script), "--submissions", "2", "--work", "0.2", "--workers", "2",
                           "--overhead-submissions", "3"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "2 loopback workers" in proc.stdout and "cluster overhead per submission" in proc.stdout


def test_the_benchmark_reads_the_timing_lines_the_grading_writes(monkeypatch):
    """run_benchmarks.py prints a grading's stages from its log: the lines must stay in the format
    it reads (a stage of ``fashion-kit timings:`` and every ``name=seconds`` of phase 1's line)."""
    import importlib.util

    from fashion_kit.grading import phase1

    path = next(path for path in BENCHMARKS if path.name == "run_benchmarks.py")
    spec = importlib.util.spec_from_file_location("run_benchmarks", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    timings = phase1.Timings(started_after=0.3)
    found = module.PHASE1.findall(timings.line())
    assert len(found) == 1
    parts, _ = found[0]
    assert dict(part.split("=") for part in parts.split())["program_start"] == "0.30"
