"""Grading a class on a Dask cluster: the batch's grade function, run on the cluster's workers.

The batch (:mod:`.batch`) does not change: intake, ids, the store, resume and every output stay on
this machine, and a result is stored the moment it arrives. What changes is the grade function it
is handed: :class:`RemoteGrader` sends each submission's files with its task to a worker, waits for
the outcome, writes ``results.json`` into the submission's output folder and returns the outcome,
exactly as the local grader does. The workers grade with :mod:`.cluster_worker`.

Only the instructor's cluster is used: the scheduler is reached over ``tls://`` with the
credentials of :mod:`.cluster_tls` (a batch system's workers get throw-away ones for the batch),
and a worker's answer is JSON text checked against ``cluster_worker.ANSWER_SCHEMA`` before any of
it is recorded; an answer that is not a valid one is that submission's error row.

Faults: a worker that dies mid-grading costs a regrade elsewhere, noted in the row; a submission
that stops two workers is marked failed with a message; the scheduler going away stops the batch
(``lost`` says why) and what was not recorded is graded when the same command runs again.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
import uuid
from concurrent.futures import CancelledError
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from ..errors import KitError
from .. import run
from ..statuses import Status, Stop
from . import cluster_config, cluster_tls, cluster_worker, ids, store

# How long to wait for the scheduler, and for a first worker to join it; after the first minute
# without one, the batch says what it waits for.
CONNECT_SECONDS = 30
FIRST_WORKER_SECONDS = 600
NO_WORKER_NOTICE_SECONDS = 60
# How often a waiting submission looks at the batch's stop and the scheduler.
POLL_SECONDS = 0.5
# Submissions in flight per grading slot of the cluster: one grading, one on its way.
IN_FLIGHT_PER_SLOT = 2
# The scheduler gives a task to another worker after one worker died running it, not after two.
ALLOWED_FAILURES = cluster_worker.MAX_WORKERS_LOST - 1


class StoppedWaiting(KitError):
    """Ctrl-C or SIGTERM while the batch waited for the cluster: nothing was graded, nothing is lost."""

    exit_code = 130


class ClusterError(KitError, RuntimeError):
    """The cluster cannot be reached or used; the message says why and what to do."""


def is_address(target: str) -> bool:
    return "://" in target or ":" in target


class Cluster:
    """A Dask client, and the jobqueue cluster it started if it started one (with the folder of
    that batch's throw-away credentials, removed with it)."""

    def __init__(self, client, where: str, jobqueue=None, slots: int = 0, credentials: Path | None = None):
        self.client, self.where, self.jobqueue, self._slots = client, where, jobqueue, slots
        self.credentials = credentials

    def workers_alive(self) -> int:
        try:
            return len(self.client.scheduler_info(n_workers=-1).get("workers", {}))
        except Exception:  # the scheduler went away: no worker can be reached
            return 0

    def slots(self) -> int:
        """Gradings the cluster runs at once: its workers' threads, or what the batch jobs will bring."""
        try:
            threads = sum(w.get("nthreads", 1) for w in self.client.scheduler_info(n_workers=-1)["workers"].values())
        except Exception:
            threads = 0
        return max(threads, self._slots, 1)

    def close(self) -> None:
        try:
            self.client.close(timeout=10)
        except Exception:
            pass  # a scheduler that is gone cannot be told goodbye
        finally:
            try:
                if self.jobqueue is not None:
                    self.jobqueue.close()
            finally:
                if self.credentials is not None:
                    shutil.rmtree(self.credentials, ignore_errors=True)


def connect(target: str, config_path: Path | str | None = None, stop: threading.Event | None = None,
            say=lambda text: None) -> Cluster:
    """A scheduler's address (``tls://host:8786``, with the ``[tls]`` credentials of ``config_path``),
    or a batch system (slurm, pbs, sge) whose workers are started as jobs with the knobs of
    ``config_path``; once a worker has joined. ``say(text)`` tells the person waiting what happens;
    setting ``stop`` ends the wait within a second."""
    from distributed import Client

    if is_address(target):
        address = target if "://" in target else f"{cluster_tls.SCHEME}{target}"
        if not address.startswith(cluster_tls.SCHEME):
            raise ClusterError(
                f"--cluster {address} is refused: the kit talks to a Dask scheduler only over TLS with the cluster's "
                "own certificates (tls://host:8786), because anyone who reaches an open scheduler can run code as "
                f"its accounts and read every submission and the hidden tests. {cluster_tls.SETUP}")
        if config_path is None:
            raise ClusterError(f"--cluster {address} needs --cluster-config FILE with the [tls] credentials. "
                               f"{cluster_tls.SETUP}")
        try:
            security = cluster_config.load_tls(config_path).security()
        except cluster_config.ConfigError as e:
            raise ClusterError(str(e)) from None
        try:
            client = Client(address, security=security, timeout=CONNECT_SECONDS)
        except (OSError, TimeoutError) as e:
            raise ClusterError(f"No Dask scheduler with these credentials answers at {address} ({e}). Start one "
                               "with the lines `fashion-kit cluster-credentials` printed, check the address, and "
                               "that the scheduler uses the same folder's ca.pem.") from None
        try:  # one dead worker is bad luck, two are the submission's doing (see cluster_worker)
            client.run_on_scheduler(cluster_worker.set_allowed_failures, ALLOWED_FAILURES)
        except Exception:
            pass  # refused by this scheduler: cluster_worker still stops after MAX_WORKERS_LOST deaths
        cluster = Cluster(client, address)
    else:
        if target not in cluster_config.SYSTEMS:
            raise ClusterError(f"--cluster takes a scheduler's address (tls://host:8786) or one of "
                               f"{', '.join(cluster_config.SYSTEMS)}; found {target!r}.")
        if config_path is None:
            raise ClusterError(f"--cluster {target} needs --cluster-config FILE: the cores, memory and walltime of "
                               "one batch job (see docs/grading-on-a-cluster.md).")
        try:
            knobs = cluster_config.load(config_path, target)
        except cluster_config.ConfigError as e:
            raise ClusterError(str(e)) from None
        cluster = _start_jobqueue(target, knobs)
    _wait_for_a_worker(cluster, stop or threading.Event(), say)
    return cluster


def jobqueue_cluster(system: str, knobs: dict):
    """dask-jobqueue's cluster for ``system``, its scheduler started here and no job asked for yet,
    and the 0700 folder holding the throw-away credentials its jobs start their workers with."""
    import sys

    import dask

    import dask_jobqueue

    kind = {"slurm": dask_jobqueue.SLURMCluster, "pbs": dask_jobqueue.PBSCluster, "sge": dask_jobqueue.SGECluster}[system]
    knobs = dict(knobs)
    knobs.pop("jobs")
    if system == "sge" and "account" in knobs:
        knobs["project"] = knobs.pop("account")  # SGE calls it a project (qsub -P)
    knobs.setdefault("python", sys.executable)  # the jobs run this installation of fashion-kit
    # The jobs read the credentials from files in this folder, which must be on a file system the
    # nodes share; the home folder usually is.
    shared = Path(os.path.expandvars(knobs.pop("shared_temp_directory", "~"))).expanduser()
    try:
        folder = Path(tempfile.mkdtemp(prefix=".fashion-kit-tls-", dir=shared))  # 0700
        security = cluster_tls.temporary(folder)
    except OSError as e:
        raise ClusterError(f"Cannot write the batch's TLS credentials into a folder in {shared}: {e.strerror or e}. "
                           "Set shared_temp_directory to a folder the jobs see.") from None
    with dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES, **cluster_tls.NO_WEB_PAGES}):
        try:
            jobqueue = kind(**knobs, security=security,
                            scheduler_options={"dashboard": False, "dashboard_address": "127.0.0.1:0"})
        except Exception as e:
            shutil.rmtree(folder, ignore_errors=True)
            raise ClusterError(f"Cannot start a {system} cluster: {type(e).__name__}: {e}") from None
    return jobqueue, folder


def _start_jobqueue(system: str, knobs: dict) -> Cluster:
    from distributed import Client

    jobqueue, folder = jobqueue_cluster(system, knobs)
    cluster = Cluster(None, f"{system} ({knobs['jobs']} jobs)", jobqueue, knobs["jobs"] * knobs["cores"], folder)
    try:
        jobqueue.scale(jobs=knobs["jobs"])
        cluster.client = Client(jobqueue, security=jobqueue.security, timeout=CONNECT_SECONDS)
    except BaseException:
        cluster.close()
        raise
    return cluster


def _wait_for_a_worker(cluster: Cluster, stop: threading.Event, say) -> None:
    """Until a worker has joined, looking at ``stop`` between short waits: a scheduler with no worker
    must not leave the batch deaf to Ctrl-C."""
    started, told = time.monotonic(), False
    say(f"Connected to {cluster.where}: {cluster.workers_alive()} worker(s) alive.")
    while cluster.workers_alive() < 1:
        waited = time.monotonic() - started
        if stop.is_set():
            cluster.close()
            raise StoppedWaiting(f"Stopped while waiting for a worker to join {cluster.where}; nothing was graded.")
        if waited >= FIRST_WORKER_SECONDS:
            cluster.close()
            raise ClusterError(f"No worker joined the scheduler at {cluster.where} in {FIRST_WORKER_SECONDS} s; "
                               "start workers with the `dask worker` line that `fashion-kit cluster-credentials` "
                               "printed, or see why the batch jobs did not start (squeue, qstat).")
        if waited >= NO_WORKER_NOTICE_SECONDS and not told:
            told = True
            say(f"No worker has joined {cluster.where} in {NO_WORKER_NOTICE_SECONDS} s. Start workers with the "
                "`dask worker` line that `fashion-kit cluster-credentials` printed (batch jobs: squeue, qstat). "
                f"Waiting up to {FIRST_WORKER_SECONDS // 60} min in all; Ctrl-C stops.")
        stop.wait(POLL_SECONDS)


class RemoteGrader:
    """The batch's grade function (see :mod:`.grader`), graded on the cluster's workers."""

    takes_extra_files = True

    def __init__(self, cluster: Cluster, kit: cluster_worker.GradingKit, stop: threading.Event):
        self.cluster, self.kit, self.stop = cluster, kit, stop
        self.lost: str | None = None  # why the batch stopped, when the scheduler went away
        self._lock = threading.Lock()

    def progress_column(self):
        return progress_column(self.cluster)

    def workers_note(self) -> str:
        """The workers alive, for the progress lines printed when the output is no terminal."""
        return f"{self.cluster.workers_alive()} workers alive"

    def in_flight(self) -> int:
        return self.cluster.slots() * IN_FLIGHT_PER_SLOT

    def __call__(self, notebook, autograder_zip, output_folder, *, settings, sandbox, extra_files, env, cancel):
        client, name = self.cluster.client, Path(output_folder).name
        extras = {Path(p).name: Path(p).read_bytes() for p in extra_files}
        # No student's name in it: task keys show in the scheduler's logs and in anything watching it.
        attempt = uuid.uuid4().hex
        future = client.submit(cluster_worker.grade, self.kit.name, attempt, Path(notebook).read_bytes(), extras,
                               key=f"grade-{attempt}", pure=False)
        try:
            graded = self._wait(future, cancel)
        except CancelledError:
            graded = None
        except Exception as e:
            if self._scheduler_gone():  # not this submission's fault: graded when the batch runs again
                return run.Outcome(str(notebook), Status.INTERRUPTED, "The scheduler went away.")
            return self._failed(notebook, e)
        if graded is None:
            return run.Outcome(str(notebook), Status.INTERRUPTED, "Grading was cancelled before it finished.")
        try:
            answer = read_answer(graded)
        except AnswerRefused as e:
            return self._refused(notebook, str(e))
        if "refused" in answer:
            return self._kit_refused(notebook, ids.printable(answer["refused"]))
        lost = ", ".join(answer["lost_workers"])
        if answer["outcome"] is None:  # it stopped two workers already: not tried a third time
            return self._killed_workers(notebook, len(answer["lost_workers"]), lost)
        plain = answer["outcome"]
        outcome = run.Outcome(
            str(notebook), Status(plain["status"]), plain["message"], seconds=plain["seconds"], log=plain["log"],
            scores={q: (s, p) for q, (s, p) in plain["scores"].items()}, peak_memory_mb=plain["peak_memory_mb"],
            stopped=Stop(plain["stopped"]) if plain["stopped"] else "", sandbox=plain["sandbox"],
            message_zh=plain["message_zh"])
        if answer["results"] is not None:
            store.write(Path(output_folder).parent, name, store.RESULTS,
                        data=json.dumps(answer["results"], indent=2, ensure_ascii=False))
        if answer["lost_workers"]:
            worker = answer["worker"]
            outcome.message = " ".join(filter(None, [
                outcome.message, f"Graded again on {worker}: the worker {lost} stopped while grading it."]))
            outcome.message_zh = " ".join(filter(None, [
                outcome.message_zh, f"工作節點 {lost} 在批改時停止了，已改由 {worker} 重新批改。"]))
        return outcome

    def _wait(self, future, cancel):
        """The worker's answer; None once the batch stops or the scheduler is gone."""
        from distributed import TimeoutError as DaskTimeout

        while True:
            if cancel.is_set() or self.stop.is_set():
                future.cancel()
                return None
            try:
                return future.result(timeout=POLL_SECONDS)
            except (DaskTimeout, TimeoutError):
                pass
            except CancelledError:
                if self._scheduler_gone():
                    return None
                raise
            if self._scheduler_gone():
                return None

    def _scheduler_gone(self) -> bool:
        if self.cluster.client.status == "running":
            return False
        with self._lock:
            if self.lost is None:
                self.lost = (f"The Dask scheduler at {self.cluster.where} went away; what was graded is "
                             "recorded. Start the scheduler and its workers again.")
        self.stop.set()
        return True

    def _killed_workers(self, notebook, count: int, where: str) -> run.Outcome:
        outcome = run.Outcome(
            str(notebook), "error",
            f"Grading it stopped {count} workers one after the other ({where}), so it was not tried again. "
            "See the workers' logs, then grade it alone with --student.", sandbox=self.kit.sandbox)
        outcome.message_zh = f"批改這份作業時，有 {count} 個工作節點先後停止（{where}），所以不再重試。"
        return outcome

    def _failed(self, notebook, error: Exception) -> run.Outcome:
        from distributed import KilledWorker

        if isinstance(error, KilledWorker):
            last = getattr(getattr(error, "last_worker", None), "address", "unknown")
            return self._killed_workers(notebook, error.allowed_failures + 1, f"the last: {last}")
        raise error  # the batch makes it this submission's error row, as for a local grading

    def _kit_refused(self, notebook, why: str) -> run.Outcome:
        with self._lock:
            self.lost = f"A worker refused to grade: {why} Fix that worker, or leave it out."
        self.stop.set()
        return run.Outcome(str(notebook), Status.INTERRUPTED, why)

    def _refused(self, notebook, why: str) -> run.Outcome:
        outcome = run.Outcome(
            str(notebook), Status.ERROR,
            f"The worker's answer was refused ({why}), so nothing of it was recorded. Check the workers "
            "(the same fashion-kit on each), then grade it again with --retry-failed.", sandbox=self.kit.sandbox)
        outcome.message_zh = f"工作節點傳回的結果不合格式（{why}），所以沒有採用。請檢查各工作節點，再以 --retry-failed 重新批改。"
        return outcome


@contextmanager
def grading(cluster: Cluster, autograder_zip: Path | str, settings, sandbox: str, stop: threading.Event,
            grade_fn=None, use_watchdog: bool = True):
    """A :class:`RemoteGrader` for one batch: its kit is on every worker (and every worker that joins)
    while it is open, and removed from them at the end."""
    autograder_zip = Path(autograder_zip)
    digest = store.grader_digest(autograder_zip, settings.fingerprint(), sandbox)
    kit = cluster_worker.GradingKit(f"fashion-kit-{digest[:12]}-{uuid.uuid4().hex[:8]}", autograder_zip.read_bytes(),
                                    settings, sandbox, digest, grade_fn, use_watchdog)
    try:
        cluster.client.register_plugin(kit)
    except cluster_worker.KitRefused as e:
        raise ClusterError(f"A worker refused the grading kit: {e}") from None
    except Exception as e:  # a worker that could not even write it (a full disk, no local directory)
        raise ClusterError(f"A worker could not take the grading kit: {type(e).__name__}: {e}") from None
    remote = RemoteGrader(cluster, kit, stop)
    try:
        yield remote
    finally:
        if cluster.client.status == "running":
            try:
                if stop.is_set():
                    cluster.client.run(cluster_worker.cancel_all, kit.name)
                cluster.client.unregister_worker_plugin(kit.name)
                cluster.client.set_metadata([cluster_worker.METADATA_ROOT, kit.name], {})  # the attempts noted
            except Exception:
                pass  # a worker that cannot be told drops the kit when it stops


class AnswerRefused(ValueError):
    """A worker's answer is not a valid one; the message says what is wrong with it."""


@lru_cache(1)
def _answer_validator():
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(cluster_worker.ANSWER_SCHEMA)
    return jsonschema.Draft202012Validator(cluster_worker.ANSWER_SCHEMA)


def read_answer(graded) -> dict:
    """A worker's answer for one submission: JSON text, of the shape of ``cluster_worker.ANSWER_SCHEMA``,
    with no score above what its question is worth. Anything else is refused with why."""
    import jsonschema

    if not isinstance(graded, str):
        raise AnswerRefused(f"an object of type {type(graded).__name__}, not JSON text")
    try:
        answer = json.loads(graded, parse_constant=_no_constant)
    except ValueError as e:
        raise AnswerRefused(f"not JSON: {e}") from None
    error = jsonschema.exceptions.best_match(_answer_validator().iter_errors(answer))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "the answer"
        raise AnswerRefused(ids.printable(f"{where}: {error.message}")[:300])
    outcome = answer.get("outcome")
    for question, (score, possible) in (outcome["scores"] if outcome else {}).items():
        if score > possible:
            raise AnswerRefused(f"outcome/scores/{question}: {score} of {possible} points")
    if outcome is None and "refused" not in answer and len(answer["lost_workers"]) < cluster_worker.MAX_WORKERS_LOST:
        raise AnswerRefused("no outcome, yet the submission did not stop enough workers to be given up")
    return answer


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def progress_column(cluster: Cluster):
    """A progress-bar column with the number of workers alive, read from the scheduler as it redraws."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class Workers(ProgressColumn):
        max_refresh = 1.0

        def render(self, task):
            return Text(f"{cluster.workers_alive()} workers")

    return Workers()


@contextmanager
def session(target: str, config_path, autograder_zip, settings, sandbox: str, stop: threading.Event,
            grade_fn=None, use_watchdog: bool = True, say=lambda text: None):
    """Connect to (or start) the cluster, install the batch's kit, yield its :class:`RemoteGrader`,
    and close everything at the end. Raises :class:`ClusterError` before yielding if it cannot, and
    :class:`StoppedWaiting` if ``stop`` is set while it waits for a worker."""
    cluster = connect(target, config_path, stop, say)
    try:
        with grading(cluster, autograder_zip, settings, sandbox, stop, grade_fn, use_watchdog) as remote:
            yield remote
    finally:
        cluster.close()
