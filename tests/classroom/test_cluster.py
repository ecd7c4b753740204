"""Grading a class on a Dask cluster: a real `dask scheduler` and real `dask worker` processes on the
loopback (separate processes, never an in-process cluster), started with the lines that
`fashion-kit cluster-credentials` prints, over mutual TLS. The fast tests grade with the fake
grader of classroom_fakes (imported by the workers); the slow one grades real notebooks and compares
the cluster's gradebook with the local pool's."""

from __future__ import annotations

import csv
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed", reason="the cluster extra is not installed: pip install 'fashion-kit[cluster]'")

from fashion_kit import settings as settings_module  # noqa: E402
from fashion_kit.classroom import batch, cluster, cluster_config, cluster_tls, cluster_worker, resources, store  # noqa: E402
from fashion_kit.grading import layout  # noqa: E402

from ..conftest import TOTAL  # noqa: E402
from .classroom_fakes import KILL_THE_WORKER, RecordingGrader, fake_autograder, write_notebook  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DASK = Path(sys.executable).parent / "dask"
START_SECONDS = 60


def printed_line(creds: cluster_tls.Credentials, where: str, address: str = "tls://127.0.0.1:0") -> tuple[dict, list[str]]:
    """The environment and the `dask` arguments of a line `fashion-kit cluster-credentials` prints,
    for this cluster's scheduler address."""
    host, port = address.removeprefix(cluster_tls.SCHEME).rsplit(":", 1)
    line = dict(cluster_tls.commands(creds, host, int(port)))[where]
    words = shlex.split(line)
    env = {}
    while "=" in words[0]:
        name, value = words.pop(0).split("=", 1)
        env[name] = value
    assert words[:2] in (["dask", "scheduler"], ["dask", "worker"]), line
    return env, words[1:]


@pytest.fixture(autouse=True)
def free_dask_clients():
    """Clients a test left half-made (a refused connection) are freed between tests: freed by the
    collector in the middle of a later client's start, their __del__ deadlocks distributed."""
    import gc

    yield
    gc.collect()


class LoopbackCluster:
    """A `dask scheduler` and `dask worker` processes on 127.0.0.1, each a process of its own, started
    with the lines `fashion-kit cluster-credentials` prints (and the test's own host, ports and files)."""

    def __init__(self, work: Path):
        self.work = work
        self.scheduler_file = work / "scheduler.json"
        self.creds = cluster_tls.make(work / "tls")
        self.config = work / "tls" / cluster_tls.CONFIG_FILE
        # The workers import the tests' fake grader, as an instructor's would import fashion-kit.
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
                    "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
        self.scheduler: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []
        self.batch_thread: threading.Thread | None = None  # a batch graded in the background, if any

    def _start(self, *args: str, log: str, env: dict | None = None) -> subprocess.Popen:
        return subprocess.Popen([str(DASK), *args], cwd=self.work, env={**self.env, **(env or {})}, start_new_session=True,
                                stdout=open(self.work / log, "ab"), stderr=subprocess.STDOUT)

    def start_scheduler(self) -> None:
        self.scheduler_file.unlink(missing_ok=True)
        # The printed line, with the test's port (any free one) and host (the loopback only).
        env, words = printed_line(self.creds, "on the scheduler's machine")
        self.scheduler = self._start(*words, "--host", "127.0.0.1", "--port", "0", "--scheduler-file",
                                     str(self.scheduler_file), log="scheduler.log", env=env)
        deadline = time.monotonic() + START_SECONDS
        self.address = None
        while self.address is None:
            assert self.scheduler.poll() is None and time.monotonic() < deadline, self.logs()
            time.sleep(0.2)
            try:  # the scheduler may be half-way through writing it
                self.address = json.loads(self.scheduler_file.read_text())["address"]
            except (OSError, ValueError, KeyError):
                pass

    def start_workers(self, n: int, nanny: bool = True, extra: tuple[str, ...] = ()) -> None:
        for _ in range(n):
            self.workers.append(self.start_worker(*([] if nanny else ["--no-nanny"]), *extra))
        with self.client() as client:
            client.wait_for_workers(len([w for w in self.workers if w.poll() is None]), timeout=START_SECONDS)

    def start_worker(self, *extra: str, creds: cluster_tls.Credentials | None = None) -> subprocess.Popen:
        """A worker started with the printed line (with ``creds``' files instead, when given), not waited for."""
        env, words = printed_line(creds or self.creds, "on each worker machine", self.address)
        return self._start(*words, "--host", "127.0.0.1", "--local-directory",
                           str(self.work / f"worker{len(self.workers)}"), *extra, log=f"worker{len(self.workers)}.log",
                           env=env)

    def client(self, **kwargs):
        from distributed import Client

        return Client(self.address, security=self.creds.security(), timeout=START_SECONDS, **kwargs)

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
    (folder / "alice" / "fashion_mnist_model.keras").write_text("alice's model", encoding="utf-8")
    (folder / "broken.ipynb").write_text('{"cells": [', encoding="utf-8")


def on_cluster(lc: LoopbackCluster, source: Path, out: Path, zip_path: Path, grader, *, stop=None, **kwargs):
    """grade_class with the cluster's grade function, as `fashion-kit grade --cluster` calls it."""
    stop = stop or threading.Event()
    settings = settings_module.from_zip(zip_path)
    with cluster.session(lc.address, lc.config, zip_path, settings, "none", stop, grade_fn=grader,
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
        assert e["folder"] == (["fashion_mnist.ipynb", "fashion_mnist_model.keras"] if named(e) == "alice" else ["fashion_mnist.ipynb"])
    assert next(e for e in log if named(e) == "alice")["extra"] == {"fashion_mnist_model.keras": "alice's model"}
    # The zip came once per worker, the same bytes, and the settings with it.
    digest = __import__("hashlib").sha256(zip_path.read_bytes()).hexdigest()
    assert {e["zip_sha256"] for e in log} == {digest}
    assert len({e["zip"] for e in log}) == len({e["pid"] for e in log})
    assert {e["settings"]["timeout_seconds"] for e in log} == {77}
    # Each grading gets its share of the cores: a worker's of its machine, the local pool's of this one.
    threads = layout.THREAD_VARIABLES[0]
    assert {e["env"][threads] for e in log} == {str(resources.threads_per_grading(2))}, "two one-thread workers here"
    assert {e["env"][threads] for e in RecordingGrader(tmp_path / "local-log").log()} == {
        str(resources.threads_per_grading(resources.default_jobs()))}


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
    with cluster.session(loopback.address, loopback.config, zip_path, settings, "none", stop, grade_fn=grader,
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
    """Each worker checks that the zip it wrote is the one the batch's records describe, and that it
    runs the batch's own kit."""
    loopback.start_workers(1)
    zip_path = fake_autograder(tmp_path / "ag.zip")
    settings = settings_module.from_zip(zip_path)
    right = store.grader_digest(zip_path, settings.fingerprint(), "none")
    with loopback.client() as client:
        wrong = cluster_worker.GradingKit("fashion-kit-test", zip_path.read_bytes() + b"x", settings, "none", right,
                                          RecordingGrader(tmp_path / "log"), use_watchdog=False)
        with pytest.raises(cluster_worker.KitRefused, match="arrived changed"):
            client.register_plugin(wrong)
        fine = cluster_worker.GradingKit("fashion-kit-test2", zip_path.read_bytes(), settings, "none", right,
                                         RecordingGrader(tmp_path / "log"), use_watchdog=False)
        client.register_plugin(fine)  # the same kit with the zip as it is: taken
        other = cluster_worker.GradingKit("fashion-kit-test3", zip_path.read_bytes(), settings, "none", right,
                                          RecordingGrader(tmp_path / "log"), use_watchdog=False)
        other.kit_fingerprint = "0" * 64  # the batch's kit is another version than the worker's
        with pytest.raises(cluster_worker.KitRefused, match="runs another version of fashion-kit"):
            client.register_plugin(other)


# ---- only the instructor's machines: mutual TLS, and answers that are plain data ----

def refused_connection(address: str, security=None) -> str:
    """Why a Dask client cannot connect to ``address`` (it must not)."""
    import gc

    from distributed import Client

    why = None
    try:
        client = Client(address, security=security, timeout=5)
    except Exception as e:  # a failed handshake, a timeout, or no TLS context to even try with
        why = f"{type(e).__name__}: {e}"
    # The half-made client is freed here, not whenever the collector next runs: its __del__ stops
    # its event loop, and run in the middle of the next client's start it deadlocks distributed.
    gc.collect()
    if why is not None:
        return why
    client.close()
    raise AssertionError(f"a client connected to {address} with {security!r}")


def test_a_client_without_the_cluster_credentials_is_refused(loopback, tmp_path):
    """The kit's TLS scheduler answers only clients showing a certificate signed by the cluster's
    authority: none over plain TCP, none without a certificate, none with another authority's."""
    from distributed.security import Security

    port = loopback.address.rsplit(":", 1)[1]
    foreign = cluster_tls.make(tmp_path / "foreign")
    refused_connection(f"tcp://127.0.0.1:{port}")
    refused_connection(loopback.address)
    refused_connection(loopback.address, Security(require_encryption=True, tls_ca_file=str(loopback.creds.ca_file)))
    refused_connection(loopback.address, foreign.security())
    refused_connection(loopback.address, Security.temporary())
    with loopback.client() as client:  # the cluster's own credentials: in
        info = client.scheduler_info()
    assert info["address"] == loopback.address
    # ... and the scheduler's plain-HTTP pages (workers, logs, task names) are not served.
    import urllib.error
    import urllib.request

    for page in ("info/main/workers.html", "json/identity.json"):
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(f"http://127.0.0.1:{info['services']['dashboard']}/{page}", timeout=10)


def test_a_worker_without_the_cluster_certificate_cannot_join(loopback, tmp_path):
    """Workers with another authority's certificate, or with none (plain TCP), never join; the cluster's own does."""
    foreign = cluster_tls.make(tmp_path / "foreign")
    loopback.workers.append(loopback.start_worker("--no-nanny", "--death-timeout", "10", creds=foreign))
    loopback.workers.append(loopback._start(
        "worker", loopback.address.replace("tls://", "tcp://"), "--no-nanny", "--death-timeout", "10",
        "--host", "127.0.0.1", "--no-dashboard", log="worker1.log"))
    for proc in loopback.workers:
        proc.wait(START_SECONDS)
        assert proc.returncode != 0, loopback.logs()
    for log in ("worker0.log", "worker1.log"):
        assert "Registered to" not in (tmp_path / log).read_text(), loopback.logs()
    assert (tmp_path / "scheduler.log").read_text().count("TLS handshake failed") >= 2, loopback.logs()
    with loopback.client() as client:
        assert client.scheduler_info(n_workers=-1)["workers"] == {}
    loopback.start_workers(1)
    with loopback.client() as client:
        assert len(client.scheduler_info(n_workers=-1)["workers"]) == 1
    assert "Registered to" in (tmp_path / "worker2.log").read_text()


def test_the_command_refuses_a_scheduler_without_tls_or_credentials(loopback, tmp_path):
    """--cluster tcp://..., even with a scheduler answering there, and tls:// without the [tls] credentials."""
    loopback.start_workers(1)
    zip_path = fake_autograder(tmp_path / "ag.zip")
    write_notebook(tmp_path / "class" / "a.ipynb", "x = 1")
    other = tmp_path / "other.toml"
    other.write_text("[slurm]\ncores = 1\nmemory = '2GB'\nwalltime = '01:00:00'\n", encoding="utf-8")
    open_scheduler = loopback._start("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                     "--scheduler-file", str(tmp_path / "open.json"), log="open.log")
    deadline = time.monotonic() + START_SECONDS
    while not (tmp_path / "open.json").exists():
        assert time.monotonic() < deadline, loopback.logs()
        time.sleep(0.2)
    try:
        tcp = json.loads((tmp_path / "open.json").read_text())["address"]
        assert tcp.startswith("tcp://")
        for extra, words in ((["--cluster", tcp], ["is refused", "tls://host:8786", "cluster-credentials FOLDER"]),
                             (["--cluster", tcp, "--cluster-config", str(loopback.config)], ["is refused"]),
                             (["--cluster", loopback.address], ["needs --cluster-config", "cluster-credentials"]),
                             (["--cluster", loopback.address, "--cluster-config", str(other)],
                              ["no [tls] table", "found [slurm]", "cluster-credentials"])):
            proc = subprocess.run([sys.executable, "-m", "fashion_kit", "grade", str(tmp_path / "class"), "-o",
                                   str(tmp_path / "out"), "--autograder", str(zip_path), *extra],
                                  capture_output=True, text=True, timeout=120)
            message = " ".join(proc.stdout.split() + proc.stderr.split())  # one message, whatever the wrapping
            assert proc.returncode == 2 and all(w in message for w in words), message
    finally:
        os.killpg(open_scheduler.pid, signal.SIGKILL)
        open_scheduler.wait()
    assert not (tmp_path / "out").exists()
    # The same command with the credentials grades (so what refused above was the address, not the rest).
    proc = subprocess.run([sys.executable, "-m", "fashion_kit", "grade", str(tmp_path / "class"), "-o",
                           str(tmp_path / "out"), "--autograder", str(zip_path), "--no-sandbox",
                           "--cluster", loopback.address, "--cluster-config", str(loopback.config)],
                          capture_output=True, text=True, timeout=300)
    assert (tmp_path / "out" / store.GRADEBOOK).exists(), proc.stdout + proc.stderr + loopback.logs()


# A worker whose fashion-kit was changed to answer what it likes, by the submission's first cell.
HOSTILE_WORKER = """
import json

from fashion_kit import run
from fashion_kit.classroom import cluster_worker
from distributed import get_worker

def grade(kit_name, attempt_key, notebook, extra_files):
    lie = json.loads(notebook)["cells"][0]["source"]
    lie = "".join(lie) if isinstance(lie, list) else lie
    lie = lie.split("'")[1]
    worker = get_worker().address
    full = run.Outcome("x", "graded", scores={"q1": (1.0, 1.0), "q2": (1.0, 1.0), "q3": (1.0, 1.0)}, sandbox="none")
    if lie == "object":  # what the batch used to take: an object of the worker's making
        return full
    if lie == "bytes":
        return json.dumps(json.loads(cluster_worker.answer(worker, [], full))).encode()
    if lie == "text":
        return "13/13, trust me"
    if lie == "nan":
        return cluster_worker.answer(worker, [], full).replace('"seconds": 0.0', '"seconds": NaN')
    answer = json.loads(cluster_worker.answer(worker, [], full))
    if lie == "extra-key":
        answer["outcome"]["run_this"] = "import os"
    elif lie == "status":
        answer["outcome"]["status"] = "ignored"
    elif lie == "over":
        answer["outcome"]["scores"]["q1"] = [99, 1]
    elif lie == "no-outcome":
        answer["outcome"] = None
    return json.dumps(answer)  # "valid": a lie shaped as a valid answer, all a worker can still tell

cluster_worker.grade = grade
"""


def test_a_worker_answer_that_is_not_plain_valid_data_is_that_submissions_error(loopback, tmp_path):
    """Whatever a worker hands back that is not a valid answer is refused, submission by submission,
    with a message, and the batch goes on; a lie shaped as a valid answer is all that gets through."""
    (tmp_path / "hostile_worker.py").write_text(HOSTILE_WORKER, encoding="utf-8")
    loopback.start_workers(1, extra=("--preload", str(tmp_path / "hostile_worker.py")))
    reasons = {"object": "an object of type Outcome, not JSON text", "bytes": "an object of type bytes",
               "text": "not JSON", "nan": "NaN is not a number JSON allows",
               "extra-key": "'run_this' was unexpected", "status": "outcome/status", "over": "outcome/scores/q1: 99",
               "no-outcome": "no outcome"}
    for lie in [*reasons, "valid"]:
        write_notebook(tmp_path / "class" / f"{lie}.ipynb", f"name = {lie!r}")
    zip_path = fake_autograder(tmp_path / "ag.zip")
    result, remote = on_cluster(loopback, tmp_path / "class", tmp_path / "out", zip_path, RecordingGrader(tmp_path / "log"))

    assert not result.interrupted and remote.lost is None
    rows = {r["id"]: r for r in gradebook(tmp_path / "out")}
    assert sorted(rows) == sorted([*reasons, "valid"])
    for lie, reason in reasons.items():
        row = rows[lie]
        assert row["status"] == "error" and row["total"] == "", row
        assert "The worker's answer was refused" in row["message"] and reason in row["message"], (lie, row["message"])
        assert "不合格式" in row["message_zh"]
        assert not (tmp_path / "out" / lie / store.RESULTS).exists()
    assert (rows["valid"]["status"], rows["valid"]["total"]) == ("graded", "3")
    assert not RecordingGrader(tmp_path / "log").log()  # the kit's grader never ran: the worker answered alone


def test_the_credentials_command_makes_private_files_and_the_lines_that_use_them(tmp_path):
    from cryptography import x509

    folder = tmp_path / "creds"
    proc = subprocess.run([sys.executable, "-m", "fashion_kit", "cluster-credentials", str(folder), "--host", "lab1"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert folder.stat().st_mode & 0o777 == 0o700
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted([cluster_tls.CA_FILE, cluster_tls.CERT_FILE, cluster_tls.KEY_FILE, cluster_tls.CONFIG_FILE])
    assert {n: (folder / n).stat().st_mode & 0o777 for n in names} == {n: 0o600 for n in names}
    ca = x509.load_pem_x509_certificate((folder / cluster_tls.CA_FILE).read_bytes())
    cert = x509.load_pem_x509_certificate((folder / cluster_tls.CERT_FILE).read_bytes())
    cert.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    lines = proc.stderr.splitlines()  # the kit speaks on stderr
    tls = f"--tls-ca-file {folder}/ca.pem --tls-cert {folder}/cert.pem --tls-key {folder}/key.pem"
    assert (f"  DASK_DISTRIBUTED__SCHEDULER__HTTP__ROUTES='[]' dask scheduler --protocol tls --port 8786 {tls} "
            "--no-dashboard") in lines, proc.stderr
    assert f"  dask worker tls://lab1:8786 {tls} --nthreads 1 --no-dashboard" in lines, proc.stderr
    assert (f"  fashion-kit grade submissions/ -o graded/ --cluster tls://lab1:8786 --cluster-config "
            f"{folder}/cluster.toml") in lines, proc.stderr
    assert cluster_config.load_tls(folder / cluster_tls.CONFIG_FILE) == cluster_tls.Credentials(
        folder / "ca.pem", folder / "cert.pem", folder / "key.pem")

    again = subprocess.run([sys.executable, "-m", "fashion_kit", "cluster-credentials", str(folder)],
                           capture_output=True, text=True, timeout=120)
    # rich wraps its message at the terminal width: compare the words, not the line breaks
    assert again.returncode == 2 and "not empty" in " ".join((again.stdout + again.stderr).split())
    assert cert.fingerprint(cert.signature_hash_algorithm) == x509.load_pem_x509_certificate(
        (folder / cluster_tls.CERT_FILE).read_bytes()).fingerprint(cert.signature_hash_algorithm)  # not overwritten
    (folder / cluster_tls.KEY_FILE).chmod(0o644)
    with pytest.raises(cluster_config.ConfigError, match="can be read by other accounts"):
        cluster_config.load_tls(folder / cluster_tls.CONFIG_FILE)


def test_a_batch_system_cluster_runs_on_throw_away_credentials(tmp_path):
    """--cluster slurm: the scheduler the kit starts is TLS-only, its jobs get the credentials as files
    in a 0700 folder on the shared file system, removed when the batch ends."""
    knobs = {"cores": 1, "memory": "2GB", "walltime": "00:10:00", "jobs": 1, "processes": 1, "interface": "lo",
             "shared_temp_directory": str(tmp_path)}
    jobqueue, folder = cluster.jobqueue_cluster("slurm", knobs)
    remote = cluster.Cluster(None, "slurm", jobqueue, 1, folder)
    try:
        assert jobqueue.scheduler_address.startswith("tls://")
        assert folder.parent == tmp_path and folder.stat().st_mode & 0o777 == 0o700
        files = list(folder.iterdir())
        assert len(files) == 3 and all(f.stat().st_mode & 0o777 == 0o600 for f in files)
        script = jobqueue.job_script()
        for flag in ("--tls-ca-file", "--tls-cert", "--tls-key"):
            assert f"{flag} {folder}/" in script, script
        assert "--protocol tls://" in script and "BEGIN" not in script  # paths, never the keys themselves
        refused_connection(jobqueue.scheduler_address)
        refused_connection(jobqueue.scheduler_address, cluster_tls.make(tmp_path / "foreign").security())
        from distributed import Client

        with Client(jobqueue, security=jobqueue.security, timeout=START_SECONDS) as client:
            assert client.scheduler_info()["address"] == jobqueue.scheduler_address
    finally:
        remote.close()
    assert not folder.exists()


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
def test_real_gradings_on_loopback_workers_match_the_local_pool(built, tmp_path, monkeypatch):
    """The reference, a blank, a mistake and a broken upload, graded by the local pool and then by
    two `dask worker` processes with the same sandbox, one of them killed mid-grading. The reference
    trains with the tests' quick fit, everywhere: the workers inherit this environment."""
    from ..conftest import QUICK_FIT_ENV, QUICK_MIN_ACCURACY, mutate, with_settings

    for name, value in QUICK_FIT_ENV.items():
        monkeypatch.setenv(name, value)
    autograder = with_settings(built.autograder_zip, tmp_path / "autograder.zip", min_test_accuracy=QUICK_MIN_ACCURACY)

    cls = tmp_path / "class"
    cls.mkdir()
    (cls / "reference.ipynb").write_bytes(built.solutions["en"].read_bytes())
    (cls / "blank.ipynb").write_bytes(built.student["zh-TW"].read_bytes())
    mutate(built.solutions["en"], cls / "mistake.ipynb",
           ("history = model.fit(training_images, training_labels, epochs=5)", "raise RuntimeError('no time')"))
    (cls / "broken.ipynb").write_text('{"cells": [', encoding="utf-8")

    def grade(out: Path, *extra: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "fashion_kit", "grade", str(cls), "-o", str(out),
                                 "--autograder", str(autograder), *extra],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    local = grade(tmp_path / "local", "--jobs", "2")
    output, _ = local.communicate(timeout=1500)
    assert local.returncode == 1, output  # the broken upload
    expected = graded_columns(gradebook(tmp_path / "local"))
    assert expected["reference"]["total"] == expected["reference"]["possible"] and expected["blank"]["total"] == "0"
    assert expected["broken"]["status"] == "invalid" and 0 < float(expected["mistake"]["total"]) < TOTAL

    lc = LoopbackCluster(tmp_path)
    try:
        lc.start_scheduler()
        lc.start_workers(2)
        remote = grade(tmp_path / "remote", "--cluster", lc.address, "--cluster-config", str(lc.config))
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


def test_a_scheduler_without_workers_says_what_it_waits_for_and_ctrl_c_stops_it(loopback, monkeypatch):
    """No worker ever joins: the batch says how many are alive, says after the first minute (here a
    second) what to start, and stops within a second of Ctrl-C instead of waiting its ten minutes."""
    monkeypatch.setattr(cluster, "NO_WORKER_NOTICE_SECONDS", 1)
    said, stop, failure = [], threading.Event(), []

    def connect():
        try:
            cluster.connect(loopback.address, loopback.config, stop, said.append)
        except cluster.StoppedWaiting as e:
            failure.append(e)

    waiting = threading.Thread(target=connect)
    waiting.start()
    deadline = time.monotonic() + START_SECONDS
    while len(said) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert said[0] == f"Connected to {loopback.address}: 0 worker(s) alive.", said
    assert "No worker has joined" in said[1] and "dask worker" in said[1] and "Ctrl-C" in said[1], said
    stopped_at = time.monotonic()
    stop.set()
    waiting.join(timeout=10)
    assert not waiting.is_alive() and time.monotonic() - stopped_at < 3
    assert failure and failure[0].exit_code == 130 and "nothing was graded" in str(failure[0])


def test_fashion_kit_grade_on_a_workerless_cluster_stops_on_sigterm(loopback, tmp_path):
    zip_path = fake_autograder(tmp_path / "ag.zip")
    write_notebook(tmp_path / "class" / "anna.ipynb", "x = 1")
    proc = subprocess.Popen([sys.executable, "-m", "fashion_kit", "grade", str(tmp_path / "class"), "--output",
                             str(tmp_path / "out"), "--autograder", str(zip_path), "--cluster", loopback.address,
                             "--cluster-config", str(loopback.config)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    deadline = time.monotonic() + START_SECONDS
    while not any("worker(s) alive" in line for line in lines) and time.monotonic() < deadline:
        lines.append(proc.stdout.readline())
    assert any("0 worker(s) alive" in line for line in lines), lines
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=10)
    finally:
        proc.kill()
    assert code == 130, "".join(lines) + proc.stdout.read()
