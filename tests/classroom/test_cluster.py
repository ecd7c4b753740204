"""Grading a class on a Dask cluster: a real `dask scheduler` and real `dask worker` processes on the
loopback (separate processes, never an in-process cluster). The fast tests grade with the fake
grader of classroom_fakes (imported by the workers); the slow one grades real notebooks and compares
the cluster's gradebook with the local pool's."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed", reason="the cluster extra is not installed: pip install 'fashion-kit[cluster]'")

from fashion_kit import settings as settings_module  # noqa: E402
from fashion_kit.classroom import batch, cluster, cluster_config, cluster_worker, store  # noqa: E402

from .classroom_fakes import KILL_THE_WORKER, RecordingGrader, fake_autograder, write_notebook  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DASK = Path(sys.executable).parent / "dask"
START_SECONDS = 60


class LoopbackCluster:
    """A `dask scheduler` and `dask worker` processes on 127.0.0.1, each a process of its own."""

    def __init__(self, work: Path):
        self.work = work
        self.scheduler_file = work / "scheduler.json"
        # The workers import the tests' fake grader, as an instructor's would import fashion-kit.
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
                    "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
        self.scheduler: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []
        self.batch_thread: threading.Thread | None = None  # a batch graded in the background, if any

    def _start(self, *args: str, log: str) -> subprocess.Popen:
        return subprocess.Popen([str(DASK), *args], cwd=self.work, env=self.env, start_new_session=True,
                                stdout=open(self.work / log, "ab"), stderr=subprocess.STDOUT)

    def start_scheduler(self) -> None:
        self.scheduler_file.unlink(missing_ok=True)
        self.scheduler = self._start("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                     "--scheduler-file", str(self.scheduler_file), log="scheduler.log")
        deadline = time.monotonic() + START_SECONDS
        self.address = None
        while self.address is None:
            assert self.scheduler.poll() is None and time.monotonic() < deadline, self.logs()
            time.sleep(0.2)
            try:  # the scheduler may be half-way through writing it
                self.address = json.loads(self.scheduler_file.read_text())["address"]
            except (OSError, ValueError, KeyError):
                pass

    def start_workers(self, n: int, nanny: bool = True) -> None:
        for i in range(n):
            self.workers.append(self._start(
                "worker", self.address, "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard",
                "--local-directory", str(self.work / f"worker{len(self.workers)}"), *([] if nanny else ["--no-nanny"]),
                log=f"worker{len(self.workers)}.log"))
        from distributed import Client

        with Client(self.address, timeout=START_SECONDS) as client:
            client.wait_for_workers(len([w for w in self.workers if w.poll() is None]), timeout=START_SECONDS)

    def kill_scheduler(self) -> None:
        os.killpg(self.scheduler.pid, signal.SIGKILL)
        self.scheduler.wait()

    def stop(self) -> None:
        for proc in [*self.workers, self.scheduler]:
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.workers = []

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(self.work.glob("*.log")))


@pytest.fixture
def loopback(tmp_path):
    lc = LoopbackCluster(tmp_path)
    lc.start_scheduler()
    yield lc
    lc.stop()


def gradebook(out: Path) -> list[dict]:
    with open(out / store.GRADEBOOK, newline="", encoding="utf-8-sig") as f:
        return list(csv.DictReader(f))


def small_class(folder: Path) -> None:
    """Notebooks that the fake grader scores by their cells, one with a model beside it, one broken."""
    for name, cells in {"alice": 3, "bob": 1, "carol": 2, "dave": 0, "erin": 3}.items():
        write_notebook(folder / name / "fashion_mnist.ipynb", f"name = {name!r}", *(["x = 1"] * cells))
    (folder / "alice" / "challenge_model.keras").write_text("alice's model", encoding="utf-8")
    (folder / "broken.ipynb").write_text('{"cells": [', encoding="utf-8")


def on_cluster(lc: LoopbackCluster, source: Path, out: Path, zip_path: Path, grader, *, stop=None, **kwargs):
    """grade_class with the cluster's grade function, as `fashion-kit grade --cluster` calls it."""
    stop = stop or threading.Event()
    settings = settings_module.from_zip(zip_path)
    with cluster.session(lc.address, None, zip_path, settings, "none", stop, grade_fn=grader,
                         use_watchdog=False) as remote:
        result = batch.grade_class(source, out, zip_path, grade_fn=remote, settings=settings, sandbox="none",
                                   jobs=remote.in_flight(), stop=stop, use_watchdog=False, **kwargs)
    return result, remote


def named(entry: dict) -> str:
    """The submission a grader's log entry is about: its first cell is ``name = '...'``."""
    first = entry["cells"][0]
    return ("".join(first) if isinstance(first, list) else first).split("'")[1]


def test_a_class_graded_on_two_workers_matches_the_local_pool(loopback, tmp_path):
    loopback.start_workers(2)
    small_class(tmp_path / "class")
    zip_path = fake_autograder(tmp_path / "ag.zip", timeout_seconds=77)
    settings = settings_module.from_zip(zip_path)
    local = batch.grade_class(tmp_path / "class", tmp_path / "local", zip_path, grade_fn=RecordingGrader(tmp_path / "local-log"),
                              settings=settings, sandbox="none", use_watchdog=False)
    grader = RecordingGrader(tmp_path / "log")
    result, remote = on_cluster(loopback, tmp_path / "class", tmp_path / "remote", zip_path, grader)

    assert not result.interrupted and remote.lost is None
    assert (tmp_path / "remote" / store.GRADEBOOK).read_text(encoding="utf-8") == \
        (tmp_path / "local" / store.GRADEBOOK).read_text(encoding="utf-8")
    assert [r.id for r in result.records] == [r.id for r in local.records]
    rows = {r["id"]: r for r in gradebook(tmp_path / "remote")}
    assert {k: (r["status"], r["total"]) for k, r in rows.items()} == {
        "alice": ("graded", "3"), "bob": ("graded", "2"), "carol": ("graded", "3"), "dave": ("graded", "1"),
        "erin": ("graded", "3"), "broken": ("invalid", "")}

    log = grader.log()
    # Graded by the workers, each submission once, in a folder holding its own files and nothing else.
    assert sorted(named(e) for e in log) == ["alice", "bob", "carol", "dave", "erin"]
    assert {e["pid"] for e in log} <= {p.pid for p in worker_processes(loopback)} and os.getpid() not in {e["pid"] for e in log}
    assert len({Path(e["notebook"]).parent for e in log}) == len(log)
    assert all(not Path(e["notebook"]).exists() for e in log)  # removed once graded
    for e in log:
        assert e["folder"] == (["challenge_model.keras", "fashion_mnist.ipynb"] if named(e) == "alice" else ["fashion_mnist.ipynb"])
    assert next(e for e in log if named(e) == "alice")["extra"] == {"challenge_model.keras": "alice's model"}
    # The zip came once per worker, the same bytes, and the settings with it.
    digest = __import__("hashlib").sha256(zip_path.read_bytes()).hexdigest()
    assert {e["zip_sha256"] for e in log} == {digest}
    assert len({e["zip"] for e in log}) == len({e["pid"] for e in log})
    assert {e["settings"]["timeout_seconds"] for e in log} == {77}


def worker_processes(lc: LoopbackCluster) -> list:
    import psutil

    found = []
    for proc in lc.workers:
        parent = psutil.Process(proc.pid)
        found += [parent, *parent.children(recursive=True)]
    return found


def class_in_background(lc: LoopbackCluster, tmp_path: Path, delay: float):
    """The small class graded on the cluster in a thread: the grader, the zip, and a call that waits
    for the batch and returns what :func:`on_cluster` returns."""
    small_class(tmp_path / "class")
    zip_path = fake_autograder(tmp_path / "ag.zip")
    grader = RecordingGrader(tmp_path / "log", delay=delay)
    done: dict = {}
    thread = threading.Thread(target=lambda: done.update(result=on_cluster(
        lc, tmp_path / "class", tmp_path / "out", zip_path, grader)))
    thread.start()
    lc.batch_thread = thread

    def finish():
        thread.join(120)
        assert not thread.is_alive() and "result" in done, lc.logs()
        return done["result"]

    return grader, zip_path, finish


def wait_until(ready, lc: LoopbackCluster) -> None:
    deadline = time.monotonic() + START_SECONDS
    while not ready():
        assert lc.batch_thread.is_alive() and time.monotonic() < deadline, lc.logs()
        time.sleep(0.05)


def test_a_worker_killed_mid_grading_costs_one_regrade_and_no_row(loopback, tmp_path):
    """SIGKILL the worker grading a submission: it is graded again on a worker, its row says so, and
    every submission has exactly one row."""
    loopback.start_workers(2)
    grader, zip_path, finish = class_in_background(loopback, tmp_path, delay=2.0)
    wait_until(grader.log, loopback)
    victim = grader.log()[0]
    os.kill(victim["pid"], signal.SIGKILL)  # the worker process itself; its nanny starts a new one
    result, remote = finish()

    rows = gradebook(tmp_path / "out")
    ids = [r["id"] for r in rows]
    assert sorted(ids) == sorted(set(ids)) == ["alice", "bob", "broken", "carol", "dave", "erin"]
    assert all(r["status"] == "graded" for r in rows if r["id"] != "broken") and not result.interrupted
    again = {r["id"]: r for r in rows}[named(victim)]
    assert "Graded again on" in again["message"] and "stopped while grading it" in again["message"], again
    assert "重新批改" in again["message_zh"]
    assert [r["id"] for r in rows if "Graded again" in r["message"]] == [named(victim)]
    starts = [named(e) for e in grader.log()]
    assert starts.count(named(victim)) == 2 and len(starts) == 6


@pytest.mark.parametrize("allowed_failures", [1, 3], ids=["scheduler-gives-up", "kit-gives-up"])
def test_a_submission_that_kills_two_workers_is_failed_with_a_message(loopback, tmp_path, allowed_failures):
    """The scheduler's allowed-failures (1, set by the kit) ends it as KilledWorker; with a scheduler
    that allows more, the kit itself refuses a third attempt. Either way: one row, failed, explained."""
    loopback.start_workers(2)
    write_notebook(tmp_path / "class" / "fine.ipynb", "name = 'fine'", "x = 1")
    write_notebook(tmp_path / "class" / "poison.ipynb", "name = 'poison'", KILL_THE_WORKER)
    zip_path = fake_autograder(tmp_path / "ag.zip")
    grader = RecordingGrader(tmp_path / "log")
    stop = threading.Event()
    settings = settings_module.from_zip(zip_path)
    with cluster.session(loopback.address, None, zip_path, settings, "none", stop, grade_fn=grader,
                         use_watchdog=False) as remote:
        remote.cluster.client.run_on_scheduler(cluster_worker.set_allowed_failures, allowed_failures)
        result = batch.grade_class(tmp_path / "class", tmp_path / "out", zip_path, grade_fn=remote, settings=settings,
                                   sandbox="none", jobs=remote.in_flight(), stop=stop, use_watchdog=False)
    rows = {r["id"]: r for r in gradebook(tmp_path / "out")}
    assert rows["fine"]["status"] == "graded"
    assert rows["poison"]["status"] == "error" and "stopped 2 workers" in rows["poison"]["message"], rows["poison"]
    assert "不再重試" in rows["poison"]["message_zh"]
    assert [named(e) for e in grader.log()].count("poison") == 2  # never a third worker
    assert not result.interrupted and remote.lost is None


def test_the_scheduler_going_away_stops_the_batch_and_a_rerun_carries_on(loopback, tmp_path):
    loopback.start_workers(1)
    grader, zip_path, finish = class_in_background(loopback, tmp_path, delay=1.5)
    out = tmp_path / "out"
    wait_until(lambda: [p for p in out.glob(f"*/{store.RECORD}") if p.parent.name != "broken"], loopback)
    loopback.kill_scheduler()
    result, remote = finish()
    assert result.interrupted and "went away" in remote.lost
    first = {p.parent.name: p.stat().st_mtime_ns for p in out.glob(f"*/{store.RECORD}")}
    assert 2 <= len(first) < 6  # the broken upload and what was graded before the scheduler went

    loopback.stop()
    loopback.start_scheduler()
    loopback.start_workers(1)
    result, remote = on_cluster(loopback, tmp_path / "class", out, zip_path, RecordingGrader(tmp_path / "log2"))
    rows = gradebook(out)
    assert sorted(r["id"] for r in rows) == ["alice", "bob", "broken", "carol", "dave", "erin"]
    assert result.skipped == len(first) and not result.interrupted
    for name, mtime in first.items():
        assert (out / name / store.RECORD).stat().st_mtime_ns == mtime, f"{name} was graded twice"


def test_a_zip_that_arrives_changed_is_refused(loopback, tmp_path):
    """Each worker checks that the zip it wrote is the one the batch's records describe."""
    from distributed import Client

    loopback.start_workers(1)
    zip_path = fake_autograder(tmp_path / "ag.zip")
    settings = settings_module.from_zip(zip_path)
    right = store.grader_digest(zip_path, settings.fingerprint(), "none")
    with Client(loopback.address, timeout=START_SECONDS) as client:
        wrong = cluster_worker.GradingKit("fashion-kit-test", zip_path.read_bytes() + b"x", settings, "none", right,
                                          RecordingGrader(tmp_path / "log"), use_watchdog=False)
        with pytest.raises(cluster_worker.KitRefused, match="arrived changed"):
            client.register_plugin(wrong)
        fine = cluster_worker.GradingKit("fashion-kit-test2", zip_path.read_bytes(), settings, "none", right,
                                         RecordingGrader(tmp_path / "log"), use_watchdog=False)
        client.register_plugin(fine)  # the same kit with the zip as it is: taken


# ---- the configuration file of --cluster slurm|pbs|sge ----

def test_a_cluster_config_is_read_with_defaults(tmp_path):
    path = tmp_path / "cluster.toml"
    path.write_text('[slurm]\ncores = 2\nmemory = "6GB"\nwalltime = "01:30:00"\nqueue = "teaching"\n'
                    'account = "cs101"\n', encoding="utf-8")
    assert cluster_config.load(path, "slurm") == {"cores": 2, "memory": "6GB", "walltime": "01:30:00",
                                                   "queue": "teaching", "account": "cs101", "jobs": 1, "processes": 1}


@pytest.mark.parametrize("text, words", [
    ('[slurm]\ncores = 2\nmemory = 6\nwalltime = "01:00:00"\n', ["slurm.memory", "found 6"]),
    ('[slurm]\ncores = 0\nmemory = "6GB"\nwalltime = "01:00:00"\n', ["slurm.cores", "found 0"]),
    ('[slurm]\ncores = 2\nmemory = "6GB"\n', ["walltime", "required"]),
    ('[slurm]\ncores = 2\nmemory = "6GB"\nwalltime = "1:00:00"\nqeue = "x"\n', ["unknown key", "qeue", "queue"]),
    ('[slurm]\ncores = 2\nmemory = "6GB"\nwalltime = "tomorrow"\n', ["slurm.walltime", "'tomorrow'"]),
    ('[slurm]\ncores = 2\nmemory = "6GB"\nwalltime = "01:00:00"\nprocesses = 3\n', ["processes", "at most cores"]),
    ('[pbs]\ncores = 2\nmemory = "6GB"\nwalltime = "01:00:00"\n', ["no [slurm] table", "[pbs]"]),
    ("[slurm\ncores = 2", ["not a valid TOML file"]),
])
def test_a_bad_cluster_config_gets_one_clear_message(tmp_path, text, words):
    path = tmp_path / "cluster.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(cluster_config.ConfigError) as e:
        cluster_config.load(path, "slurm")
    assert str(path) in str(e.value) and "\n" not in str(e.value)
    for w in words:
        assert w in str(e.value), str(e.value)


def test_the_command_refuses_a_bad_cluster_config_before_grading(tmp_path):
    zip_path = fake_autograder(tmp_path / "ag.zip")
    write_notebook(tmp_path / "class" / "a.ipynb", "x = 1")
    (tmp_path / "c.toml").write_text("[slurm]\ncores = 'two'\nmemory = '6GB'\nwalltime = '01:00:00'\n",
                                     encoding="utf-8")
    for extra, words in ((["--cluster", "slurm"], "needs --cluster-config"),
                         (["--cluster", "lab1"], "found 'lab1'"),
                         (["--cluster", "slurm", "--cluster-config", str(tmp_path / "c.toml")], "slurm.cores"),
                         (["--cluster", "slurm", "--cluster-config", str(tmp_path / "none.toml")], "Cannot read")):
        proc = subprocess.run([sys.executable, "-m", "fashion_kit", "grade", str(tmp_path / "class"), "-o",
                               str(tmp_path / "out"), "--autograder", str(zip_path), *extra],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and words in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()


# ---- real gradings: the cluster's gradebook is the local pool's, a worker killed or not ----

def grading_processes(worker_pid: int) -> list:
    """The gradings a worker process runs now (the grading core under it)."""
    import psutil

    try:
        children = psutil.Process(worker_pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    found = []
    for child in children:
        try:
            if "fashion_kit.grading.core" in " ".join(child.cmdline()):
                found.append(child)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return found


def graded_columns(rows: list[dict]) -> dict[str, dict]:
    """What a grading decides, without what differs from run to run (the time, the regrade note)."""
    skip = {"seconds", "message", "message_zh"}
    return {r["id"]: {k: v for k, v in r.items() if k not in skip} for r in rows}


@pytest.mark.slow
def test_real_gradings_on_loopback_workers_match_the_local_pool(built, tmp_path):
    """The reference, a blank, a mistake and a broken upload, graded by the local pool and then by
    two `dask worker` processes with the same sandbox, one of them killed mid-grading."""
    from ..conftest import mutate

    cls = tmp_path / "class"
    cls.mkdir()
    (cls / "reference.ipynb").write_bytes(built.solutions["en"].read_bytes())
    (cls / "blank.ipynb").write_bytes(built.student["zh-TW"].read_bytes())
    mutate(built.solutions["en"], cls / "mistake.ipynb",
           ("history = model.fit(training_images, training_labels, epochs=5)", "raise RuntimeError('no time')"))
    (cls / "broken.ipynb").write_text('{"cells": [', encoding="utf-8")

    def grade(out: Path, *extra: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "fashion_kit", "grade", str(cls), "-o", str(out),
                                 "--autograder", str(built.autograder_zip), *extra],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    local = grade(tmp_path / "local", "--jobs", "2")
    output, _ = local.communicate(timeout=1500)
    assert local.returncode == 1, output  # the broken upload
    expected = graded_columns(gradebook(tmp_path / "local"))
    assert expected["reference"]["total"] == expected["reference"]["possible"] and expected["blank"]["total"] == "0"
    assert expected["broken"]["status"] == "invalid" and 0 < float(expected["mistake"]["total"]) < 13

    lc = LoopbackCluster(tmp_path)
    try:
        lc.start_scheduler()
        lc.start_workers(2)
        remote = grade(tmp_path / "remote", "--cluster", lc.address)
        workers = [p for p in worker_processes(lc) if "nanny" not in " ".join(p.cmdline()) and p.pid not in
                   {w.pid for w in lc.workers}]
        deadline = time.monotonic() + 600
        victim = None
        while victim is None:  # the first worker seen grading is killed, grading and all
            assert remote.poll() is None and time.monotonic() < deadline, lc.logs()
            victim = next((w for w in workers if grading_processes(w.pid)), None)
            time.sleep(0.5)
        time.sleep(3)
        victim.kill()
        output, _ = remote.communicate(timeout=1500)
    finally:
        lc.stop()
    assert remote.returncode == 1, output + lc.logs()
    rows = gradebook(tmp_path / "remote")
    assert len(rows) == len({r["id"] for r in rows}) == 4
    assert graded_columns(rows) == expected
    again = [r["id"] for r in rows if "Graded again on" in r["message"]]
    assert len(again) == 1, [r["message"] for r in rows]
    assert "workers" in output  # the progress bar's count of workers alive


# ---- a real single-node Slurm: the workers are Slurm jobs started by dask-jobqueue ----

SLURM_DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SingleNodeSlurm:
    """munged, slurmctld and slurmd on this machine, with their files in one folder and ports of their own."""

    def __init__(self, root: Path):
        import shutil as sh
        import socket

        missing = [d for d in SLURM_DAEMONS if sh.which(d) is None and not Path(f"/usr/sbin/{d}").exists()]
        if missing:
            pytest.skip(f"Slurm is not installed ({', '.join(missing)} missing; Debian: apt-get install slurm-wlm munge)")
        if os.geteuid() != 0:
            pytest.skip("a single-node Slurm needs root here: slurmd starts the jobs as their users")
        if not Path("/etc/munge/munge.key").is_file():
            pytest.skip("munge has no key (/etc/munge/munge.key); reinstall munge to make one")
        self.root, self.host = root, socket.gethostname()
        for d in ("state", "spool", "log", "run"):
            (root / d).mkdir(parents=True, exist_ok=True)
        self.socket = root / "run" / "munge.socket"
        self.conf = root / "slurm.conf"
        self.conf.write_text("\n".join([
            "ClusterName=fashionkittest", f"SlurmctldHost={self.host}", "SlurmUser=root", "SlurmdUser=root",
            "AuthType=auth/munge", f"AuthInfo=socket={self.socket}",
            f"StateSaveLocation={root}/state", f"SlurmdSpoolDir={root}/spool",
            f"SlurmctldPidFile={root}/run/slurmctld.pid", f"SlurmdPidFile={root}/run/slurmd.pid",
            f"SlurmctldLogFile={root}/log/slurmctld.log", f"SlurmdLogFile={root}/log/slurmd.log",
            f"SlurmctldPort={free_port()}", f"SlurmdPort={free_port()}",
            "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "JobAcctGatherType=jobacct_gather/none",
            "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core_Memory", "ReturnToService=2", "MpiDefault=none",
            f"NodeName={self.host} CPUs={os.cpu_count()} RealMemory=8000 State=UNKNOWN",
            f"PartitionName=fashionkit Nodes={self.host} Default=YES MaxTime=INFINITE State=UP", ""]))
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self.procs = [
            subprocess.Popen(["munged", "-F", "--force", f"--socket={self.socket}", f"--pid-file={root}/run/munged.pid",
                              f"--log-file={root}/log/munged.log", f"--seed-file={root}/run/munged.seed"],
                             start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT),
        ]
        self._wait(lambda: self.socket.exists(), "munged")
        for daemon in ("slurmctld", "slurmd"):
            self.procs.append(subprocess.Popen([daemon, "-D", "-f", str(self.conf)], env=self.env, start_new_session=True,
                                               stdout=open(root / "log" / f"{daemon}.out", "ab"), stderr=subprocess.STDOUT))
        self._wait(lambda: " idle" in subprocess.run(["sinfo", "-h", "-o", "%P %t"], env=self.env, capture_output=True,
                                                     text=True).stdout, "an idle Slurm node")

    def _wait(self, ready, what: str) -> None:
        deadline = time.monotonic() + START_SECONDS
        while not ready():
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.procs):
                self.stop()
                pytest.skip(f"{what} did not start here: {self.logs()[-1500:]}")
            time.sleep(0.3)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}" for p in sorted((self.root / "log").glob("*")))

    def stop(self) -> None:
        subprocess.run(["scancel", "--partition=fashionkit"], env=self.env, capture_output=True)
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


@pytest.fixture
def slurm(tmp_path):
    s = SingleNodeSlurm(tmp_path / "slurm")
    yield s
    s.stop()


@pytest.mark.slow
def test_a_class_graded_by_slurm_jobs(slurm, tmp_path, monkeypatch):
    """--cluster slurm: dask-jobqueue submits the workers with sbatch, they grade, the jobs end with the batch."""
    monkeypatch.setenv("SLURM_CONF", str(slurm.conf))  # sbatch and squeue, as the instructor's shell has them
    small_class(tmp_path / "class")
    zip_path = fake_autograder(tmp_path / "ag.zip")
    config = tmp_path / "cluster.toml"
    config.write_text("\n".join([
        "[slurm]", "cores = 1", 'memory = "2GB"', 'walltime = "00:20:00"', 'queue = "fashionkit"', "jobs = 2",
        'interface = "lo"', f'local_directory = "{tmp_path / "nodes"}"',
        f'job_script_prologue = ["export PYTHONPATH={ROOT}", "cd {tmp_path}"]',  # the workers import the fake grader
        f'job_extra_directives = ["--output={tmp_path}/slurm-%j.out"]', ""]), encoding="utf-8")
    grader = RecordingGrader(tmp_path / "log")
    stop = threading.Event()
    settings = settings_module.from_zip(zip_path)
    with cluster.session("slurm", config, zip_path, settings, "none", stop, grade_fn=grader,
                         use_watchdog=False) as remote:
        assert remote.cluster.jobqueue.job_script().count("#SBATCH -p fashionkit") == 1
        result = batch.grade_class(tmp_path / "class", tmp_path / "out", zip_path, grade_fn=remote, settings=settings,
                                   sandbox="none", jobs=remote.in_flight(), stop=stop, use_watchdog=False)
        workers = remote.cluster.workers_alive()
    rows = {r["id"]: (r["status"], r["total"]) for r in gradebook(tmp_path / "out")}
    assert rows == {"alice": ("graded", "3"), "bob": ("graded", "2"), "carol": ("graded", "3"), "dave": ("graded", "1"),
                    "erin": ("graded", "3"), "broken": ("invalid", "")}, slurm.logs()
    assert not result.interrupted and workers >= 1
    # Graded inside Slurm jobs: each grading process is a job's worker (SLURM_JOB_ID in its environment).
    log = grader.log()
    assert len(log) == 5 and all(e["slurm_job"] for e in log), log
    assert list(tmp_path.glob("slurm-*.out")), "no job ran"
    deadline = time.monotonic() + 60
    while subprocess.run(["squeue", "-h"], env=slurm.env, capture_output=True, text=True).stdout.strip():
        assert time.monotonic() < deadline, "the Slurm jobs outlived the batch"
        time.sleep(1)
