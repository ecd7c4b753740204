"""The wall around phase 1: what the sandboxed code cannot reach, and that none of it outlives the run.

Each check runs a small Python script in a sandbox the way the grading core does,
``supervise.run(sandbox.command(...))``, and looks from outside at what it could and could not do.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from pathlib import Path

import psutil
import pytest

import fashion_kit
from fashion_kit.grading import layout, sandbox, supervise
from fashion_kit.settings import Settings

from .accounts import temporary_account

PYTHON = sys.executable
ENV = {"HOME": "/tmp", "PATH": "/usr/bin:/bin", "FASHION_KIT_GIVEN": "yes"}
# Small limits keep every check fast; the settings' own minimums.
SMALL = Settings().replace(max_processes=64, max_work_folder_mb=16)

needs_bwrap = pytest.mark.skipif(
    shutil.which("bwrap") is None,
    reason="bubblewrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)",
)
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the unprivileged-user sandbox needs root")


def script_command(box: sandbox.Sandbox, work: Path, code: str, *args: str, readable=()) -> list[str]:
    return box.command([PYTHON, "-I", "-c", textwrap.dedent(code), *args], work=work, env=ENV, readable=readable)


def run_in(box: sandbox.Sandbox, work: Path, code: str, *args: str, env=None, **limits) -> supervise.Supervised:
    limits = {"timeout": 20, "memory_limit_mb": 2048, **limits}
    return supervise.run(script_command(box, work, code, *args), cwd=work, env=env, on_stop=box.kill_all, **limits)


def report(result: supervise.Supervised) -> dict:
    """The JSON the script printed last."""
    assert result.stopped is None and result.returncode == 0, result.log
    return json.loads(result.log.strip().splitlines()[-1])


def with_token(token: str) -> list[psutil.Process]:
    """Running processes whose command line carries ``token``."""
    found = []
    for p in psutil.process_iter():
        try:
            if token in p.cmdline() and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


# Forks a grandchild in a session of its own, which waits and then writes a file: a daemon.
DAEMON = """
    import os, sys, time
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            open("daemon-ready", "w").close()
            time.sleep(1.5)
            open("escaped", "w").write("the daemon outlived the sandbox")
            os._exit(0)
        os._exit(0)
    time.sleep(60)
"""


def kill_all_stops_a_daemon(box: sandbox.Sandbox, work: Path) -> None:
    token = uuid.uuid4().hex
    proc = subprocess.Popen(script_command(box, work, DAEMON, token), cwd=work, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not (work / "daemon-ready").exists():
            assert time.monotonic() < deadline and proc.poll() is None, "the daemon did not start"
            time.sleep(0.05)
        assert len(with_token(token)) >= 2  # the script and its daemon run
        box.kill_all()
        box.kill_all()  # a second call is harmless
        proc.wait(timeout=10)
        time.sleep(2)  # past the moment the daemon would have written
        assert not (work / "escaped").exists()
        assert with_token(token) == []
    finally:
        proc.kill()
        proc.wait()


# Forks sleeping children until something stops it; the guard ends it if nothing does.
FORK_BOMB = """
    import os, sys, time
    made = 0
    while made < 400:
        try:
            pid = os.fork()
        except OSError as e:
            print("fork refused:", e.strerror, "after", made, flush=True)
            sys.exit()  # its children still sleep: the sandbox's kill_all must end them
        if pid == 0:
            time.sleep(30)
            os._exit(0)
        made += 1
    time.sleep(30)
"""


# ---- bubblewrap ----------------------------------------------------------------------------------


@pytest.fixture
def bwrap_box():
    box = sandbox.Bubblewrap(SMALL)
    yield box
    box.kill_all()


@pytest.fixture
def work(tmp_path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


@needs_bwrap
def test_auto_chooses_bubblewrap_here():
    box = sandbox.choose("auto")
    assert isinstance(box, sandbox.Bubblewrap) and box.name == "bubblewrap"


@needs_bwrap
def test_bubblewrap_has_no_network(bwrap_box, work):
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    port = listener.getsockname()[1]
    code = """
        import json, socket, sys
        out = {}
        for host in ("127.0.0.1", "1.1.1.1"):
            try:
                socket.create_connection((host, int(sys.argv[1])), timeout=3).close()
                out[host] = "connected"
            except OSError as e:
                out[host] = e.strerror
        print(json.dumps(out))
    """
    found = report(run_in(bwrap_box, work, code, str(port)))
    assert "connected" not in found.values(), found
    with pytest.raises(TimeoutError):  # our listener on the host's loopback was never reached
        listener.accept()
    listener.close()


@needs_bwrap
def test_bubblewrap_shows_no_home_and_no_secret(bwrap_box, work, tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / "canary").write_text("the grader's private file")
    monkeypatch.setenv("FASHION_KIT_TEST_SECRET", "s3cret")  # run() inherits ours: env=None
    checkout_tests = Path(fashion_kit.__file__).resolve().parents[2] / "tests"
    code = """
        import json, os, sys
        environ = dict(v.split("=", 1) for v in open("/proc/self/environ").read().split("\\0") if v)
        try:
            shadow = open("/etc/shadow").read()
        except OSError as e:
            shadow = e.strerror
        print(json.dumps({"canary": os.path.exists(sys.argv[1]), "shadow": shadow,
                          "tests": os.path.exists(sys.argv[2]), "env": environ}))
    """
    found = report(run_in(bwrap_box, work, code, str(home / "canary"), str(checkout_tests), env=None))
    assert found["canary"] is False
    assert found["tests"] is False or not checkout_tests.exists()
    assert "root:" not in found["shadow"]  # as root, the sandbox's user owns root's files: they are covered
    assert "FASHION_KIT_TEST_SECRET" not in found["env"]
    # Exactly what was given and the caller's thread variables; bubblewrap adds only PWD, the folder
    # it starts in.
    assert {k: v for k, v in found["env"].items() if k != "PWD"} == {**bwrap_box.threads, **ENV}


@needs_bwrap
@pytest.mark.skipif(os.geteuid() != 0, reason="only root's sandbox has root's files to cover")
def test_bubblewrap_view_of_etc_is_read_for_each_sandbox(bwrap_box, work):
    """/etc changes under a running grader (useradd holds /etc/subgid.lock, mode 0600, for a moment):
    a secret that vanishes before the sandbox starts does not stop it; one that appears after is not
    shown."""
    token = uuid.uuid4().hex[:8]
    vanishing, appearing = Path(f"/etc/fk-vanishing-{token}.lock"), Path(f"/etc/fk-appearing-{token}")
    code = """
        import json, os, sys
        print(json.dumps({p: os.path.exists(p) for p in sys.argv[1:]}))
    """
    vanishing.write_text("secret")
    vanishing.chmod(0o600)
    try:
        command = script_command(bwrap_box, work, code, str(vanishing), str(appearing), "/etc/passwd")
    finally:
        vanishing.unlink()
    appearing.write_text("secret")
    appearing.chmod(0o600)
    try:
        result = supervise.run(command, cwd=work, env=None, on_stop=bwrap_box.kill_all, timeout=20,
                               memory_limit_mb=2048)
    finally:
        appearing.unlink()
    assert report(result) == {str(vanishing): False, str(appearing): False, "/etc/passwd": True}


# Tries to write each NAME=PATH it is given; prints what happened to each, its uid and its environment.
WRITE_PROBE = """
    import json, os, sys
    out = {"uid": os.getuid(), "env": sorted(os.environ)}
    for pair in sys.argv[1:]:
        name, path = pair.split("=", 1)
        try:
            open(path, "w").write("x")
            out[name] = "written"
        except OSError as e:
            out[name] = e.strerror
    print(json.dumps(out))
"""


@needs_bwrap
def test_bubblewrap_writes_only_the_work_folder(bwrap_box, work):
    kit = Path(fashion_kit.__file__).resolve().parent
    targets = {"venv": Path(sys.prefix) / "escaped", "etc": Path("/etc/escaped"), "kit": kit / "escaped",
               "parent": work.parent / "escaped", "work": work / "written"}
    found = report(run_in(bwrap_box, work, WRITE_PROBE, *[f"{k}={v}" for k, v in targets.items()]))
    assert found["work"] == "written" and (work / "written").read_text() == "x"
    for name in ("venv", "etc", "kit"):
        assert found[name] != "written", name
    # The folder above work is the sandbox's own scratch space if anything: nothing reaches the host.
    assert [name for name, path in targets.items() if name != "work" and path.exists()] == []


@needs_bwrap
def test_bubblewrap_kill_all_leaves_no_daemon(bwrap_box, work):
    kill_all_stops_a_daemon(bwrap_box, work)


@needs_bwrap
def test_bubblewrap_fork_bomb_is_stopped(bwrap_box, work):
    token = uuid.uuid4().hex
    result = run_in(bwrap_box, work, FORK_BOMB, token, max_processes=SMALL.max_processes)
    assert result.stopped == "processes", result
    assert with_token(token) == []


@needs_bwrap
def test_bubblewrap_caps_each_file_and_the_folder(bwrap_box, work):
    one_big_file = """
        import os
        with open("big", "wb") as f:
            try:
                for _ in range(64):
                    f.write(b"x" * 2**20)
                    f.flush()
            except OSError as e:
                print("refused:", e.strerror)
    """
    result = run_in(bwrap_box, work, one_big_file)
    assert "refused: File too large" in result.log
    assert (work / "big").stat().st_size <= SMALL.max_work_folder_mb * 2**20
    many_files = """
        import time
        for i in range(100):
            open(f"part{i}", "wb").write(b"x" * 4 * 2**20)
        time.sleep(30)
    """
    result = run_in(bwrap_box, work, many_files, watch_folder=work, max_folder_mb=SMALL.max_work_folder_mb)
    assert result.stopped == "disk", result


@needs_bwrap
def test_bubblewrap_tmpfs_is_capped(bwrap_box, work):
    code = """
        written = 0
        try:
            with open("/tmp/fill", "wb") as f:
                for _ in range(400):
                    f.write(b"x" * 2**20)
                    f.flush()
                    written += 1
        except OSError as e:
            print("refused after", written, "MB:", e.strerror)
    """
    # The per-file cap would stop the write first; the tmpfs's own size is what is checked here.
    roomy = sandbox.Bubblewrap(Settings().replace(max_work_folder_mb=1024))
    result = run_in(roomy, work, code)
    assert "No space left on device" in result.log, result.log


LIMITS = """
    import json, resource
    names = ("CORE", "FSIZE", "NPROC")
    print(json.dumps({name: resource.getrlimit(getattr(resource, "RLIMIT_" + name)) for name in names}))
"""


@needs_bwrap
def test_bubblewrap_sets_core_and_file_size_limits(bwrap_box, work):
    found = report(run_in(bwrap_box, work, LIMITS))
    assert found["CORE"] == [0, 0]
    assert found["FSIZE"] == [SMALL.max_work_folder_mb * 2**20] * 2


@needs_bwrap
def test_bubblewrap_runs_with_an_older_bwrap(work, monkeypatch):
    # bwrap 0.6 (Ubuntu 22.04) knows neither --size nor --disable-userns.
    known = sandbox._bwrap_options(shutil.which("bwrap")) - {"--size", "--disable-userns"}
    monkeypatch.setattr(sandbox, "_bwrap_options", lambda bwrap: known)
    box = sandbox.Bubblewrap(SMALL)
    command = script_command(box, work, "print('{}')")
    assert "--size" not in command and "--disable-userns" not in command
    assert report(run_in(box, work, "print('{}')")) == {}


def test_missing_bwrap_says_what_to_do(monkeypatch):
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "bwrap" else real_which(name, *a, **k))
    with pytest.raises(sandbox.SandboxUnavailable) as caught:
        sandbox.choose("auto")
    message = str(caught.value)
    assert "apt-get install bubblewrap" in message and "dnf install bubblewrap" in message
    assert "--no-sandbox" in message and "Gradescope" in message


def test_no_bwrap_on_macos_says_so(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    with pytest.raises(sandbox.SandboxUnavailable, match="does not exist on macOS.*--no-sandbox"):
        sandbox.Bubblewrap()


@needs_bwrap
def test_bubblewrap_that_cannot_run_is_reported_and_probed_again(monkeypatch):
    """A failed probe says why; the next choice probes again (a moment without the resources to start
    bwrap must not stop every later grading of a batch), and once a probe works it is not repeated."""
    monkeypatch.setattr(sandbox, "_probed", set())
    probes, real = [], sandbox.Bubblewrap.command

    def failing_twice(self, argv, **k):
        probes.append(argv)
        return ["sh", "-c", "echo no namespaces >&2; exit 1"] if len(probes) <= 2 else real(self, argv, **k)

    monkeypatch.setattr(sandbox.Bubblewrap, "command", failing_twice)
    for _ in range(2):
        with pytest.raises(sandbox.SandboxUnavailable, match="cannot make a sandbox here: no namespaces.*--no-sandbox"):
            sandbox.choose("auto")
    assert len(probes) == 2
    for _ in range(2):
        assert sandbox.choose("auto").name == "bubblewrap"
    assert len(probes) == 3


def test_a_sandbox_the_caller_has_just_probed_is_not_probed_again(monkeypatch):
    """The grading core started by `fashion-kit run` is told so (--probed): its sandbox is the one
    the caller found working a moment ago."""
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed")
    monkeypatch.setattr(sandbox, "_probed", set())
    probes = []
    monkeypatch.setattr(sandbox.Bubblewrap, "probe", lambda self: probes.append("bubblewrap"))
    monkeypatch.setattr(sandbox.seccomp, "command", lambda argv: probes.append("seccomp") or ["false"])
    assert sandbox.choose("auto", probed=True).name == "bubblewrap"
    assert probes == []
    monkeypatch.setattr(sandbox, "_probed", set())
    sandbox.choose("none", probed=True)
    assert sandbox._probed == set(), "nothing was probed for the plain sandbox: nothing is taken as working"
    with pytest.raises(sandbox.SandboxUnavailable, match="seccomp filter"):
        sandbox.choose("auto")  # not told: probed (and here the filter's probe fails)
    assert probes == ["seccomp"]


def test_unknown_sandbox_kind_is_refused():
    with pytest.raises(ValueError, match="auto, bubblewrap, user or none"):
        sandbox.choose("docker")


# ---- an unprivileged account ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def student_python():
    """An account of this test run's own that may run this Python; its name. The user sandbox kills
    by uid and limits processes per uid, so test runs at the same time (pytest-xdist, or another
    checkout) must not share an account."""
    with temporary_account("fk-test") as account:
        try:
            yield account
        finally:
            sandbox.UnprivilegedUser(user=account).kill_all()


@pytest.fixture
def user_work():
    """A work folder the account can reach (pytest's own temporary folders are closed to others)."""
    base = Path(tempfile.mkdtemp(prefix="fashion-kit-test-"))
    base.chmod(0o755)
    (base / "work").mkdir()
    (base / "grader").mkdir()  # root's, beside the work folder
    yield base / "work"
    shutil.rmtree(base)


@pytest.fixture
def user_box(student_python, user_work):
    box = sandbox.UnprivilegedUser(SMALL, user=student_python)
    box.prepare(user_work)
    yield box
    box.kill_all()


@needs_root
def test_user_sandbox_prepares_and_confines(user_box, user_work, monkeypatch):
    monkeypatch.setenv("FASHION_KIT_TEST_SECRET", "s3cret")
    grader = user_work.parent / "grader"
    found = report(run_in(user_box, user_work, WRITE_PROBE, f"grader={grader / 'escaped'}",
                          f"venv={Path(sys.prefix) / 'escaped'}", "work=written", env=None))
    assert found["uid"] == user_box.uid != 0
    assert found["work"] == "written"
    assert found["grader"] == found["venv"] == "Permission denied"
    assert "FASHION_KIT_TEST_SECRET" not in found["env"]
    assert set(ENV) <= set(found["env"])


@needs_root
def test_user_sandbox_sets_process_core_and_file_size_limits(user_box, user_work):
    found = report(run_in(user_box, user_work, LIMITS))
    assert found == {"CORE": [0, 0], "FSIZE": [SMALL.max_work_folder_mb * 2**20] * 2,
                     "NPROC": [SMALL.max_processes] * 2}


@needs_root
def test_user_sandbox_kill_all_stops_a_setsid_daemon(user_box, user_work):
    kill_all_stops_a_daemon(user_box, user_work)
    assert user_box.processes() == []


@needs_root
def test_user_sandbox_kills_what_outlives_a_finished_run(user_box, user_work):
    # The script exits at once; its daemon would write 1.5 s later. run() ends with kill_all.
    left_behind = DAEMON.replace("time.sleep(60)", "while not os.path.exists('daemon-ready'): time.sleep(0.01)")
    result = run_in(user_box, user_work, left_behind)
    assert result.stopped is None
    time.sleep(2)
    assert not (user_work / "escaped").exists()
    assert user_box.processes() == []


@needs_root
def test_user_sandbox_removes_everything_its_account_owns_where_every_user_may_write(student_python, user_box,
                                                                                     user_work, tmp_path):
    """One of each, planted as the account without the filter (which would refuse the IPC objects):
    files deep in folders of its own and of root's under every world-writable folder, SysV shared
    memory, a message queue and a semaphore set, a POSIX message queue. Root's files stay, and so
    does the work folder the account owns."""
    mqueue = None
    if not any(kind == "mqueue" for _, kind in sandbox._mounts()):  # Docker mounts /dev/mqueue; a host may not
        mqueue = tmp_path / "mqueue"
        mqueue.mkdir()
        if subprocess.run(["mount", "-t", "mqueue", "none", str(mqueue)], capture_output=True).returncode != 0:
            pytest.skip("no mqueue file system here, and none can be mounted: POSIX queues cannot be listed")
    token = uuid.uuid4().hex
    roots = ["/tmp", "/var/tmp", "/dev/shm", "/run/lock"]
    rooted = Path("/tmp", f"{token}-roots")  # a world-writable folder of root's, as /tmp itself is
    rooted.mkdir(mode=0o777)
    rooted.chmod(0o1777)
    (rooted / "root-file").write_text("root's")
    plant = """
        import ctypes, os, sys
        token, roots, rooted = sys.argv[1], sys.argv[2].split(","), sys.argv[3]
        for root in roots:
            os.makedirs(f"{root}/{token}-dir/a/b", exist_ok=True)
            open(f"{root}/{token}-dir/a/b/deep", "w").write("x")
            open(f"{root}/{token}-top", "w").write("x")
        open(f"{rooted}/account-file", "w").write("x")
        libc = ctypes.CDLL(None, use_errno=True)
        key = int(token[:7], 16)
        made = [libc.shmget(key, 4096, 0o1600), libc.msgget(key + 1, 0o1600), libc.semget(key + 2, 1, 0o1600)]
        mq = ctypes.CDLL("librt.so.1", use_errno=True).mq_open(f"/{token}".encode(), os.O_CREAT | os.O_RDWR, 0o600, None)
        print(made, mq)
        assert min(made) >= 0 and mq >= 0, os.strerror(ctypes.get_errno())
    """
    try:
        subprocess.run([PYTHON, "-I", "-c", textwrap.dedent(plant), token, ",".join(roots), str(rooted)],
                       user=user_box.uid, group=user_box.gid, extra_groups=[], check=True, cwd="/")
        assert len(sandbox.sysv_ipc_of(user_box.uid)) >= 3
        (user_work / "kept").write_text("the work folder is phase 2's to read")
        user_box.kill_all()
        left = [f"{root}/{name}" for root in roots for name in os.listdir(root) if token in name and name != rooted.name]
        assert left == [] and not (rooted / "account-file").exists()
        assert sandbox.sysv_ipc_of(user_box.uid) == []
        for point, kind in sandbox._mounts():
            if kind == "mqueue":
                assert not any(token in name for name in os.listdir(point)), point
        assert (rooted / "root-file").exists() and (user_work / "kept").exists()
    finally:
        shutil.rmtree(rooted, ignore_errors=True)
        if mqueue is not None:
            subprocess.run(["umount", str(mqueue)], check=False)


@needs_root
def test_user_sandbox_counts_its_shared_memory_files_against_the_memory_limit(user_box, user_work):
    # 300 MB in /dev/shm (a file kept, and one unlinked but held open): memory no process's size shows.
    # Each file stays under the file size limit (16 MB here).
    name = f"/dev/shm/fashion-kit-hoard-{uuid.uuid4().hex}"
    code = f"""
        import os, time
        chunk, held = b"x" * 2**20, []
        for i in range(20):
            path = {name!r} + str(i)
            fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
            for _ in range(15):
                os.write(fd, chunk)
            if i % 2:
                os.unlink(path)
                held.append(fd)
        time.sleep(30)
    """
    held = supervise.run(script_command(user_box, user_work, code), cwd=user_work, env=None, timeout=20,
                         memory_limit_mb=256, on_stop=user_box.kill_all, held_memory=user_box.held_memory)
    assert held.stopped == "memory-limit" and held.peak_rss_bytes > 256 * 2**20, held
    assert not [p for p in os.listdir("/dev/shm") if p.startswith(Path(name).name)]


@needs_root
def test_user_sandbox_counts_and_removes_shared_memory_no_path_reaches(user_box):
    # Below 4,518 characters of folder names no call can name a file by its path; below 65 levels
    # the walk does not go. The first is counted all the same, the second is too much; kill_all
    # removes both.
    token = uuid.uuid4().hex
    plant = """
        import os, sys
        top, names, size = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3])
        folder = os.open("/dev/shm", os.O_RDONLY | os.O_DIRECTORY)
        for name in [top, *names]:
            os.mkdir(name, dir_fd=folder)
            below = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=folder)
            os.close(folder)
            folder = below
        fd = os.open("hoard", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=folder)
        os.write(fd, b"x" * size)
    """

    def as_account(top: str, names: list[str], size: int) -> None:
        subprocess.run([PYTHON, "-I", "-c", textwrap.dedent(plant), top, ",".join(names), str(size)],
                       user=user_box.uid, group=user_box.gid, extra_groups=[], check=True, cwd="/")

    long_path, deep = f"fashion-kit-long-{token}", f"fashion-kit-deep-{token}"
    try:
        as_account(long_path, [letter * 250 for letter in "abcdefghijklmnopqr"], 8 * 2**20)
        assert 8 * 2**20 <= user_box.held_memory([]) < 9 * 2**20
        as_account(deep, ["d"] * (supervise.MAX_FOLDER_DEPTH + 1), 4096)
        assert user_box.held_memory([]) == float("inf")
        user_box.kill_all()
        assert not os.path.lexists(f"/dev/shm/{long_path}") and not os.path.lexists(f"/dev/shm/{deep}")
        assert user_box.held_memory([]) == 0
    finally:
        for name in (long_path, deep):
            layout.remove_tree(Path("/dev/shm", name))


@needs_root
def test_user_sandbox_counts_the_memory_of_a_double_forked_daemon(user_box, user_work):
    # Re-parented away from the notebook, it stays in the supervised tree: phase 1 is its subreaper.
    code = """
        import os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                hog = b"x" * (300 * 2**20)
                time.sleep(30)
            os._exit(0)
        time.sleep(30)
    """
    held = run_in(user_box, user_work, code, memory_limit_mb=256)
    assert held.stopped == "memory-limit", held
    assert user_box.processes() == []


@needs_root
def test_user_sandbox_fork_bomb_hits_the_process_limit(user_box, user_work):
    result = run_in(user_box, user_work, FORK_BOMB, timeout=10)
    assert "fork refused: Resource temporarily unavailable" in result.log, result.log
    made = int(result.log.split("after")[-1].split()[0])
    assert made < SMALL.max_processes
    assert user_box.processes() == []


@needs_root
def test_user_sandbox_refuses_a_program_the_account_cannot_run(student_python, user_work):
    closed = user_work.parent / "closed"
    closed.mkdir(mode=0o700)
    program = closed / "true"
    shutil.copy(shutil.which("true"), program)
    box = sandbox.UnprivilegedUser(SMALL, user=student_python)
    box.prepare(user_work)
    with pytest.raises(sandbox.SandboxUnavailable, match=f"cannot run {program}.*setfacl -m u:{student_python}:x"):
        box.command([str(program)], work=user_work, env=ENV)


@needs_root
def test_user_sandbox_refuses_a_work_folder_the_account_cannot_reach(student_python, user_work):
    hidden = user_work.parent / "closed" / "work"
    hidden.mkdir(parents=True)
    hidden.parent.chmod(0o700)
    box = sandbox.UnprivilegedUser(SMALL, user=student_python)
    box.prepare(hidden)  # the folder is the account's, the one above it is not open to it
    with pytest.raises(sandbox.SandboxUnavailable, match=f"cannot enter {hidden}"):
        box.command([PYTHON], work=hidden, env=ENV)


# ---- the seccomp filter, in both sandboxes --------------------------------------------------------

REFUSED_CALLS = """
    import ctypes, errno, json, os, socket, subprocess, threading
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    out = {}

    def attempt(name, call):
        try:
            result = call()
            out[name] = "refused: " + os.strerror(ctypes.get_errno()) if result == -1 else "allowed"
        except OSError as e:
            out[name] = "refused: " + e.strerror

    for family in ("AF_INET", "AF_INET6", "AF_NETLINK", "AF_PACKET"):
        attempt(family, lambda: socket.socket(getattr(socket, family), socket.SOCK_DGRAM).close())
    attempt("inet socket, high bits set", lambda: libc.syscall(41, ctypes.c_long(2 | 1 << 32), 1, 0))
    attempt("inet socketpair", lambda: libc.syscall(53, 2, 1, 0, (ctypes.c_int * 2)()))
    attempt("memfd_create", lambda: os.memfd_create("hoard"))
    attempt("shmget", lambda: libc.shmget(0, 4096, 0o1600))
    attempt("msgget", lambda: libc.msgget(0, 0o1600))
    attempt("semget", lambda: libc.semget(0, 1, 0o1600))
    attempt("mq_open", lambda: ctypes.CDLL("librt.so.1", use_errno=True).mq_open(b"/fk-q", os.O_CREAT | os.O_RDWR, 0o600, None))
    attempt("ptrace", lambda: libc.ptrace(16, os.getppid(), None, None))  # PTRACE_ATTACH
    attempt("process_vm_readv", lambda: libc.process_vm_readv(os.getppid(), None, 0, None, 0, 0))
    attempt("unshare", lambda: libc.unshare(0x10000000))  # CLONE_NEWUSER
    attempt("clone with CLONE_NEWNET", lambda: libc.syscall(56, 0x40000000 | 17, 0, 0, 0, 0))
    attempt("mount", lambda: libc.mount(b"none", b"/tmp", b"tmpfs", 0, None))
    attempt("keyctl", lambda: libc.syscall(250, 0, 0, 0, 0, 0))
    attempt("bpf", lambda: libc.syscall(321, 0, 0, 0))
    attempt("perf_event_open", lambda: libc.syscall(298, 0, 0, -1, -1, 0))
    attempt("userfaultfd", lambda: libc.syscall(323, 0))
    attempt("io_uring_setup", lambda: libc.syscall(425, 1, (ctypes.c_char * 120)()))
    # A set-id copy of a shell in the work folder: in bubblewrap it would be the grader's, outside.
    import shutil
    shutil.copy("/bin/true", "shell")
    for bits in (0o4755, 0o2755):
        attempt(f"chmod {bits:o}", lambda: os.chmod("shell", bits))
        attempt(f"fchmod {bits:o}", lambda: os.fchmod(os.open("shell", os.O_RDONLY), bits))
        attempt(f"chmod {bits:o} by the C library", lambda: libc.chmod(b"shell", bits))
        attempt(f"open a new file {bits:o}", lambda: os.open(f"new-{bits:o}", os.O_CREAT | os.O_WRONLY, bits))
        attempt(f"mkdir {bits:o}", lambda: os.mkdir(f"folder-{bits:o}", bits))
        attempt(f"mknod {bits:o}", lambda: os.mknod(f"node-{bits:o}", bits | 0o100000))
    attempt("openat2", lambda: libc.syscall(437, -100, b"new-openat2", None, 0))
    setid = [name for name in os.listdir(".") if os.lstat(name).st_mode & 0o6000]
    os.chmod("shell", 0o755)  # an ordinary mode still works
    # What a notebook does need still works.
    a, b = socket.socketpair()
    a.sendall(b"unix"); unix = b.recv(4).decode()
    thread = threading.Thread(target=lambda: None); thread.start(); thread.join()
    child = subprocess.run(["true"]).returncode
    status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
    print(json.dumps({"calls": out, "unix": unix, "child": child, "seccomp": status["Seccomp"].strip(), "setid": setid,
                      "no_new_privs": status["NoNewPrivs"].strip()}))
"""


def filter_refuses_what_a_notebook_never_needs(box: sandbox.Sandbox, work: Path) -> None:
    found = report(run_in(box, work, REFUSED_CALLS))
    assert found["seccomp"] == "2" and found["no_new_privs"] == "1"
    assert {name: how for name, how in found["calls"].items() if not how.startswith("refused")} == {}
    assert found["calls"]["AF_INET"] == found["calls"]["memfd_create"] == "refused: Operation not permitted"
    assert found["unix"] == "unix" and found["child"] == 0
    assert found["setid"] == [] and found["calls"]["openat2"] == "refused: Function not implemented"


@needs_bwrap
def test_bubblewrap_runs_behind_the_filter(bwrap_box, work):
    filter_refuses_what_a_notebook_never_needs(bwrap_box, work)


@needs_root
def test_user_sandbox_runs_behind_the_filter(user_box, user_work):
    filter_refuses_what_a_notebook_never_needs(user_box, user_work)


def test_a_sandbox_without_its_filter_is_refused(monkeypatch):
    monkeypatch.setattr(sandbox, "_probed", set())
    monkeypatch.setattr(sandbox.seccomp, "command", lambda argv: [
        PYTHON, "-c", "import sys; sys.exit('fashion-kit: The sandbox\\'s seccomp filter needs libseccomp2')"])
    for kind in ("auto", "user"):
        with pytest.raises(sandbox.SandboxUnavailable, match="cannot install its seccomp filter.*libseccomp2"):
            sandbox.choose(kind)


@needs_bwrap
def test_bubblewrap_counts_its_tmpfs_against_the_memory_limit(bwrap_box, work):
    code = """
        import os, time
        chunk = b"x" * 2**20
        with open("/tmp/hoard", "wb") as f:
            for _ in range(200):
                f.write(chunk)
        fd = os.open("/dev/shm/unlinked", os.O_CREAT | os.O_WRONLY, 0o600)
        for _ in range(60):
            os.write(fd, chunk)
        os.unlink("/dev/shm/unlinked")
        time.sleep(30)
    """
    roomy = sandbox.Bubblewrap(Settings().replace(max_work_folder_mb=1024))
    held = supervise.run(script_command(roomy, work, code), cwd=work, env=None, timeout=20, memory_limit_mb=256,
                         on_stop=roomy.kill_all, held_memory=roomy.held_memory)
    assert held.stopped == "memory-limit" and held.peak_rss_bytes > 256 * 2**20, held


# ---- no sandbox ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["none", "bubblewrap"])
def test_the_callers_thread_variables_are_all_of_its_environment_a_command_gets(work, monkeypatch, kind):
    if kind == "bubblewrap" and shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed")
    for name in layout.THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "zero")
    monkeypatch.setenv("FASHION_KIT_TEST_SECRET", "s3cret")
    box = sandbox.choose(kind)
    code = """
        import json
        environ = dict(v.split("=", 1) for v in open("/proc/self/environ").read().split("\\0") if v)
        print(json.dumps({k: v for k, v in environ.items() if k != "PWD"}))  # bubblewrap's starting folder
    """
    assert report(run_in(box, work, code, env=None)) == {"TF_NUM_INTRAOP_THREADS": "1", **ENV}
    for name in layout.THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert report(run_in(sandbox.choose(kind), work, code, env=None)) == ENV, "a caller that sets none (Gradescope)"


def test_no_sandbox_replaces_the_environment_and_kills_its_tree(work, monkeypatch):
    monkeypatch.setenv("FASHION_KIT_TEST_SECRET", "s3cret")
    box = sandbox.choose("none")
    assert box.name == "none"
    code = """
        import json, os
        print(json.dumps(sorted(os.environ)))
    """
    found = report(run_in(box, work, code, env=None))
    assert "FASHION_KIT_TEST_SECRET" not in found and set(ENV) <= set(found)

    token = uuid.uuid4().hex
    code = """
        import os, time
        if os.fork() == 0:
            open("child-ready", "w").close()
            time.sleep(60)
        time.sleep(60)
    """
    proc = subprocess.Popen(script_command(box, work, code, token), cwd=work, start_new_session=True)
    deadline = time.monotonic() + 10
    while not (work / "child-ready").exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    box.kill_all()
    box.kill_all()
    proc.wait(timeout=10)
    time.sleep(0.2)
    assert with_token(token) == []
    pid_files = box._folder
    del box
    gc.collect()
    assert not pid_files.exists()  # the sandbox's own bookkeeping leaves nothing behind


# ---- the supervisor ------------------------------------------------------------------------------


def supervised(code: str, tmp_path: Path, **limits) -> supervise.Supervised:
    limits = {"timeout": 20, "memory_limit_mb": None, **limits}
    return supervise.run([PYTHON, "-c", textwrap.dedent(code)], cwd=tmp_path, env=None, **limits)


def test_supervisor_reports_a_normal_exit(tmp_path):
    result = supervised("import sys; print('done'); sys.exit(3)", tmp_path)
    assert result.stopped is None and result.returncode == 3 and "done" in result.log


def test_supervisor_stops_at_the_memory_limit(tmp_path):
    code = """
        import time
        hog = bytearray(400 * 2**20)
        for i in range(0, len(hog), 4096):
            hog[i] = 1
        time.sleep(30)
    """
    result = supervised(code, tmp_path, memory_limit_mb=200)
    assert result.stopped == "memory-limit" and result.peak_rss_bytes > 200 * 2**20


def test_supervisor_stops_at_the_time_limit(tmp_path):
    result = supervised("import time; time.sleep(30)", tmp_path, timeout=0.5)
    assert result.stopped == "timeout" and result.returncode is not None


def test_supervisor_stops_when_cancelled(tmp_path):
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    result = supervised("import time; time.sleep(30)", tmp_path, cancel=cancel)
    assert result.stopped == "interrupted"


def test_supervisor_caps_an_output_flood(tmp_path):
    flood = "import os\nfor _ in range(800): os.write(1, b'x' * 65536)\nos.write(1, b'THE END')"
    result = supervised(flood, tmp_path)
    assert len(result.log) < supervise.LOG_HEAD_BYTES + supervise.LOG_TAIL_BYTES + 200  # 50 MB went in
    assert "bytes of output dropped" in result.log and result.log.endswith("THE END")


def test_supervisor_calls_on_stop_and_kills_the_tree(tmp_path):
    token = uuid.uuid4().hex
    code = """
        import os, sys, time
        if os.fork() == 0:
            time.sleep(60)
        time.sleep(60)
    """
    calls = []
    result = supervise.run([PYTHON, "-c", textwrap.dedent(code), token], cwd=tmp_path, env=None, timeout=1,
                           memory_limit_mb=None, on_stop=lambda: calls.append(len(with_token(token))))
    assert result.stopped == "timeout"
    assert calls == [2]  # called once, while the tree still ran
    assert with_token(token) == []


def test_folder_limit_counts_files_as_well_as_bytes(tmp_path, monkeypatch):
    monkeypatch.setattr(supervise, "MAX_FOLDER_FILES", 50)
    for i in range(40):
        (tmp_path / f"f{i}").write_bytes(b"x" * 8192)
    assert not supervise.folder_over(tmp_path, 1 * 2**20)
    assert supervise.folder_over(tmp_path, 100 * 1024)  # 40 files of 8 KiB
    for i in range(40, 60):
        (tmp_path / f"f{i}").touch()
    assert supervise.folder_over(tmp_path, 1 * 2**20)


def test_without_a_sandbox_the_grading_core_still_kills_a_double_forked_daemon(tmp_path):
    """--no-sandbox: the core adopts orphans (child subreaper), so a daemon that left the process
    tree is still its child, and kill_all reaches it before anything is read."""
    script = textwrap.dedent(f"""
        import os, sys, time
        from pathlib import Path
        from fashion_kit.grading import layout, sandbox, supervise
        sandbox.adopt_orphans()
        box = sandbox.NoSandbox()
        work = Path({str(tmp_path)!r})
        daemon = ("import os, time\\nif os.fork(): os._exit(0)\\nos.setsid()\\nif os.fork(): os._exit(0)\\n"
                  "time.sleep(1.5)\\nopen('escaped', 'w').write('x')")
        ran = supervise.run(box.command([sys.executable, '-c', daemon], work=work, env={{}}), cwd=work,
                            env=None, timeout=20, memory_limit_mb=None, on_stop=box.kill_all)
        box.kill_all()
        time.sleep(2.5)
        print('escaped' if (work / 'escaped').exists() else 'contained')
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip().endswith("contained"), proc.stdout + proc.stderr


def test_a_folder_chain_deeper_than_any_assignment_needs_is_over_the_limit(tmp_path):
    deep = tmp_path / "work"
    path = deep
    for _ in range(supervise.MAX_FOLDER_DEPTH + 2):
        path = path / "d"
    path.mkdir(parents=True)
    assert supervise.folder_over(deep, 10 * 2**30)
    shallow = tmp_path / "shallow"
    (shallow / "d" / "d").mkdir(parents=True)
    assert not supervise.folder_over(shallow, 10 * 2**30)


def test_a_member_that_ends_while_its_tmpfs_is_measured_holds_nothing(monkeypatch):
    """The bubblewrap sandbox counts its tmpfs mounts through /proc/PID/root of a member process. A
    member that ends between the namespace check and the measurement (a notebook that calls
    os._exit) is no sign of a full tmpfs: the next member is asked, and none left means nothing held.
    A member alive but unreadable still counts as full."""
    if shutil.which("bwrap") is None:
        pytest.skip("needs bwrap")
    box = sandbox.Bubblewrap()
    member = psutil.Process()
    monkeypatch.setattr(sandbox, "_namespace", lambda pid, kind: "theirs" if pid == member.pid else "ours")

    def gone(folder):
        raise FileNotFoundError(folder)

    monkeypatch.setattr(sandbox, "_used_bytes", gone)
    monkeypatch.setattr(sandbox, "_alive", lambda p: False)
    assert box.held_memory([member]) == 0
    monkeypatch.setattr(sandbox, "_alive", lambda p: True)
    assert box.held_memory([member]) == (sandbox.TMP_MB + sandbox.SHM_MB) * 2**20
