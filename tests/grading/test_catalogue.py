"""The catalogue of faulty and hostile submissions: every entry gets exactly the score it must get.

tests/grading/catalogue/catalogue.json (the fakes, the attacks on the grader, the challenge's recipes
and the answers that span several questions) and each question folder's own catalogue.json (the fair
variants and the mistakes of that question alone) describe each entry as edits of the reference
solution; this module
turns them into notebooks, grades them all with the real autograder (queued at once, graded in
parallel by the session's ``grader``) and compares every question's score.

The hostile entries attack the grader itself. Each is graded in both layouts: the local one
(bubblewrap) and Gradescope's (``--sandbox user``: root, the notebook run as the unprivileged account).
Besides its scores, every hostile grading is checked from outside: no process of it survives, nothing
lands outside the work folder (in the instructor's folders, the kit, site-packages), nothing of it is
left where every user may write (files at any depth, SysV IPC objects, POSIX message queues), none
of the grading's temporary folders is left, no secret of the instructor's is read, and no connection
gets out.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import site
import socket
import stat
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import uuid
from pathlib import Path

import jsonschema
import nbformat
import psutil
import pytest

import fashion_kit
from fashion_kit import assign, contract, notebooks, run, settings as settings_module
from fashion_kit.grading import sandbox, supervise
from fashion_kit.grading.layout import make_gradescope_folder, remove_tree
from fashion_kit.questions import layout as question_layout
from fashion_kit.statuses import Stop

from .. import gradescope_spec
from ..conftest import QUESTIONS, QUICK_FIT_ENV, folder_entries, unique_names

CATALOGUE = Path(__file__).resolve().parent / "catalogue" / "catalogue.json"
FIT = "history = model.fit(training_images, training_labels, epochs=5)"
# How each entry trains:
#   lesson     the notebook's fit, the lesson's real training, graded at the real threshold: for the
#              entries whose score hinges on how much the model learnt;
#   own        the notebook's fit, run with the tests' quick fit (conftest.QUICK_FIT_ENV) and graded at
#              the quick threshold: every form of the fit and its evidence is the entry's, only
#              the accuracy is not what it proves;
#   one-batch  five real epochs of one step each, written into the notebook (the whole training set as
#              one batch: q6's evidence holds, the model learns little), graded at the real threshold;
#   none       no fit at all.
TRAINING_EDITS = {
    "lesson": [],
    "own": [],
    "one-batch": [{"replace": ["epochs=5)", "epochs=5, batch_size=60000)"]}],
    "none": [{"replace": [FIT, "history = None"]}],
}
# Entries identical to a core grading share its cached result instead of grading twice.
SHARED_NAMES = {"dense64": "dense64"}

EDIT = {
    "oneOf": [
        {"type": "object", "required": ["replace"], "additionalProperties": False,
         "properties": {"replace": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2}}},
        {"type": "object", "required": ["delete_cell"], "additionalProperties": False,
         "properties": {"delete_cell": {"type": "string", "minLength": 1}}},
        {"type": "object", "required": ["source"], "additionalProperties": False, "minProperties": 2,
         "maxProperties": 2, "properties": {"insert_before": {"type": "string", "minLength": 1},
                                            "insert_after": {"type": "string", "minLength": 1},
                                            "source": {"type": "string"}}},
    ]
}
SCORES = {"type": "object", "additionalProperties": {"type": "number", "minimum": 0}}
STOPPED = {"enum": [str(stop) for stop in Stop if stop is not Stop.INTERRUPTED]}
SCHEMA = {
    "type": "object",
    "required": ["entries"],
    "properties": {"entries": {"type": "array", "minItems": 20, "items": {
        "type": "object",
        "required": ["name", "kind", "why", "training", "edits"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "pattern": "^[a-z0-9-]+$"},
            "kind": {"enum": ["mistake", "crash", "fake", "equivalent", "hostile"]},
            "why": {"type": "string", "minLength": 10},
            "training": {"enum": sorted(TRAINING_EDITS)},
            "edits": {"type": "array", "minItems": 1, "items": EDIT},
            "scores": SCORES,
            # What the challenge's recipe must earn: the bonus, a place on the leaderboard (its value
            # within [low, high]), and the words its message must hold.
            "challenge": {"type": "object", "additionalProperties": False, "required": ["bonus", "leaderboard"],
                          "properties": {"bonus": {"type": "boolean"}, "leaderboard": {"type": "boolean"},
                                         "accuracy": {"type": "array", "items": {"type": "number"},
                                                      "minItems": 2, "maxItems": 2},
                                         "message": {"type": "string", "minLength": 1}}},
            # Hostile entries only: settings changed for this grading (small limits keep a fork bomb or
            # a full disk fast), why phase 1 must be stopped, and where Gradescope's layout differs.
            "settings": {"type": "object"},
            "stopped": STOPPED,
            "user": {"type": "object", "required": ["why"], "additionalProperties": False, "properties": {
                "why": {"type": "string", "minLength": 10},
                "scores": SCORES,
                "stopped": STOPPED,
                "network": {"type": "boolean"},
            }},
        },
    }}},
}
# Hostile entries name what only the test knows with these markers, replaced before grading: a
# token that marks every process and file of the attack, a folder of the instructor's outside the
# work folder, the instructor's home, a secret file in it, and a port the test listens on.
MARKERS = ("@TOKEN@", "@OUTSIDE@", "@HOME@", "@CANARY@", "@PORT@")
LAYOUTS = ("bubblewrap", "user")


class CatalogueError(ValueError):
    """An entry's edit does not fit the reference solution any more; the message names both."""


# A question folder's catalogue.json: entries as the main catalogue's, at least one.
FOLDER_SCHEMA = {"type": "object", "required": ["entries"], "additionalProperties": False,
                 "properties": {"entries": {**SCHEMA["properties"]["entries"], "minItems": 1}}}


def load(folders=None) -> list[dict]:
    """The main catalogue's entries, then those of each question folder (``folders``: the registry's)."""
    doc = json.loads(CATALOGUE.read_text(encoding="utf-8"))
    jsonschema.validate(doc, SCHEMA)
    entries = doc["entries"] + [e for _, e in folder_entries(question_layout.CATALOGUE_FILE, FOLDER_SCHEMA, folders)]
    return unique_names(entries, "catalogue entries")


def _cells_with(nb, text: str, entry: str) -> list[int]:
    found = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and text in c.source]
    if not found:
        raise CatalogueError(f"{entry}: expected a code cell containing {text!r}, found none.")
    return found


def apply(nb, edits: list[dict], entry: str):
    """``nb`` with ``edits`` applied in order; an edit whose text is missing raises CatalogueError."""
    for edit in edits:
        if "replace" in edit:
            old, new = edit["replace"]
            for i in _cells_with(nb, old, entry):
                nb.cells[i].source = nb.cells[i].source.replace(old, new)
        elif "delete_cell" in edit:
            found = _cells_with(nb, edit["delete_cell"], entry)
            if len(found) != 1:
                raise CatalogueError(f"{entry}: expected one cell containing {edit['delete_cell']!r}, found {len(found)}.")
            del nb.cells[found[0]]
        else:
            anchor = edit.get("insert_before") or edit["insert_after"]
            found = _cells_with(nb, anchor, entry)
            at = found[0] if "insert_before" in edit else found[0] + 1
            nb.cells.insert(at, nbformat.v4.new_code_cell(edit["source"]))
    return nb


def mutant(entry: dict, base: Path, target: Path, markers: dict[str, str] | None = None) -> Path:
    nb = apply(notebooks.read(base), TRAINING_EDITS[entry["training"]] + entry["edits"], entry["name"])
    for i, cell in enumerate(nb.cells):  # inserted cells need ids that are unique in the notebook
        cell["id"] = f"m{i:03d}"
        for marker, value in (markers or {}).items():
            cell.source = cell.source.replace(marker, value)
    target.parent.mkdir(parents=True, exist_ok=True)
    notebooks.write(nb, target)
    return target


def grading_name(entry: dict) -> str:
    return SHARED_NAMES.get(entry["name"], f"catalogue-{entry['name']}")


def submit(grader, entry: dict, base: Path, work: Path) -> str:
    """Queue ``entry``'s notebook (made from ``base`` in ``work``) as its training says; its grading's name."""
    name = grading_name(entry)
    grader.submit(name, mutant(entry, base, work / f"{entry['name']}.ipynb"), quick=entry["training"] == "own")
    return name


ALL_ENTRIES = load()
# The faulty and equivalent submissions (graded the usual way) and the attacks on the grader.
ENTRIES = [e for e in ALL_ENTRIES if e["kind"] != "hostile"]
HOSTILE = [e for e in ALL_ENTRIES if e["kind"] == "hostile"]


def expected(entry: dict, layout: str) -> tuple[dict, str, bool]:
    """An entry's expected scores (full marks but for the questions it names), its stopped kind ("" if
    none) and whether it reaches the network, in ``layout``."""
    scores, stopped, network = {**QUESTIONS, **entry.get("scores", {})}, entry.get("stopped", ""), False
    if layout == "user" and "user" in entry:
        scores.update(entry["user"].get("scores", {}))
        stopped = entry["user"].get("stopped", stopped)
        network = entry["user"].get("network", False)
    return scores, stopped, network


def test_catalogue_is_well_formed():
    for entry in ALL_ENTRIES:
        for layout in LAYOUTS:
            scores = expected(entry, layout)[0]
            assert set(scores) == set(QUESTIONS), f"{entry['name']}: scores names a question the master does not have"
            for question, score in scores.items():
                assert score <= QUESTIONS[question], (
                    f"{entry['name']}: {question} can score at most {QUESTIONS[question]}")
    kinds = {e["kind"] for e in ALL_ENTRIES}
    assert kinds == {"mistake", "crash", "fake", "equivalent", "hostile"}
    assert len(HOSTILE) >= 12, "the hostile section needs at least 12 attacks"
    for entry in ALL_ENTRIES:
        if entry["kind"] == "equivalent":
            assert "scores" not in entry, f"{entry['name']}: an equivalent answer must get full marks"
        else:
            # For a hostile entry this also means a forged full mark can never pass for its expectation.
            assert all(expected(entry, layout)[0] != QUESTIONS for layout in LAYOUTS), (
                f"{entry['name']}: a faulty or hostile submission must lose points")
        if entry["kind"] != "hostile":
            assert not {"settings", "stopped", "user"} & entry.keys(), (
                f"{entry['name']}: only hostile entries have settings, stopped or user")
            assert not any(m in json.dumps(entry["edits"]) for m in MARKERS), (
                f"{entry['name']}: markers are for hostile entries")
    for entry in HOSTILE:
        settings_module.Settings().replace(**entry.get("settings", {}))  # a bad setting fails here


def test_every_edit_still_fits_the_reference_solution(tmp_path):
    base = Path(__file__).resolve().parents[2] / "solutions" / "en" / assign.NOTEBOOK
    markers = {"@TOKEN@": "0" * 32, "@OUTSIDE@": "/nowhere", "@HOME@": "/nowhere", "@CANARY@": "/nowhere/secret",
               "@PORT@": "9"}
    for entry in ALL_ENTRIES:
        nb = notebooks.read(mutant(entry, base, tmp_path / f"{entry['name']}.ipynb", markers))
        assert nbformat.validate(nb) is None
        for cell in nb.cells:
            assert not any(m in cell.source for m in MARKERS), f"{entry['name']}: an unknown marker is left"
            if cell.cell_type == "code":  # still Python (a %pip line is IPython's: read as pass)
                lines = [line[: len(line) - len(line.lstrip())] + "pass" if line.lstrip().startswith("%") else line
                         for line in cell.source.splitlines()]
                compile("\n".join(lines), entry["name"], "exec")


def test_a_stale_edit_is_reported_with_what_was_expected(tmp_path):
    base = Path(__file__).resolve().parents[2] / "solutions" / "en" / assign.NOTEBOOK
    stale = {"name": "stale", "training": "own", "edits": [{"replace": ["Dense(999", "Dense(1"]}]}
    with pytest.raises(CatalogueError, match=r"stale: expected a code cell containing 'Dense\(999'"):
        mutant(stale, base, tmp_path / "stale.ipynb")


def selected_entries(session) -> list[dict]:
    """The entries this session will check (all of them, or those picked with -k)."""
    picked = {item.callspec.params["entry"]["name"] for item in session.items
              if item.originalname == "test_entry_gets_exactly_its_expected_scores"}
    return [e for e in ENTRIES if e["name"] in picked]


@pytest.fixture(scope="session")
def catalogue_submissions(request, built, grader, tmp_path_factory) -> dict[str, str]:
    """The selected entries built and queued at once, so the session's grader works through them in
    parallel."""
    work = tmp_path_factory.mktemp("catalogue")
    entries = sorted(selected_entries(request.session), key=longest_first)
    return {entry["name"]: submit(grader, entry, built.solutions["en"], work) for entry in entries}


def longest_first(entry: dict) -> tuple[int, int]:
    """The order the pool grades the entries in, the longest first, so that it does not end on one
    long grading: a challenge the grader trains (its CPU budget), then the lesson's real training,
    then the quick fit, then none."""
    trains_challenge = entry.get("challenge", {}).get("leaderboard", False)
    return (0 if trains_challenge else 1, ["lesson", "own", "one-batch", "none"].index(entry["training"]))


@pytest.mark.slow
@pytest.mark.parametrize("entry", ENTRIES, ids=[e["name"] for e in ENTRIES])
def test_entry_gets_exactly_its_expected_scores(grader, catalogue_submissions, entry):
    outcome = grader(catalogue_submissions[entry["name"]])
    assert outcome.status == "graded", outcome.message + outcome.log[-3000:]
    found = {q: score for q, (score, _) in outcome.scores.items()}
    scores = expected(entry, "bubblewrap")[0]
    assert found == scores, f"{entry['name']} ({entry['why']})\nexpected {scores}\nfound    {found}"
    check_challenge(entry, outcome.results, scores)


def check_challenge(entry: dict, results: dict, scores: dict) -> None:
    """The entry's challenge earned what it must: the bonus or not, a leaderboard place or not, its value
    in range, its message."""
    if "challenge" not in entry:
        return
    want = entry["challenge"]
    bonus = results["score"] - sum(scores.values())
    assert (bonus > 0, "leaderboard" in results) == (want["bonus"], want["leaderboard"]), results.get("extra_data")
    if "accuracy" in want:
        low, high = want["accuracy"]
        value = results["leaderboard"][0]["value"]
        assert low <= value <= high, f"{entry['name']}: leaderboard value {value}, expected {low}..{high}"
    if "message" in want:
        test = next(t for t in results["tests"] if t["name"] == contract.CHALLENGE_TEST)
        assert want["message"] in test["output"], test["output"]


# ---- hostile entries: attacks on the grader, graded in both layouts -----------------------------------

# Gradings in the user sandbox run one at a time, on this machine: kill_all kills every process of the
# sandbox account, so two at once would kill each other's notebooks. The lock is a file, so a test
# session that uses the same path waits for this one too.
USER_SANDBOX_LOCK = Path(tempfile.gettempdir()) / "fashion-kit-user-sandbox.lock"
_user_sandbox_thread_lock = threading.Lock()


NEEDS_ROOT = "Gradescope's layout (the user sandbox) needs root; run the suite as root to grade it"


def _layout_unavailable(layout: str) -> str | None:
    """Why ``layout`` cannot grade here, or None. As root, the user sandbox's account is created."""
    try:
        if layout == "user":
            if os.geteuid() != 0:
                return NEEDS_ROOT
            if shutil.which("setfacl") is None:
                return ("setfacl is not installed (Debian/Ubuntu: apt-get install acl); the account cannot reach "
                        "this Python")
            sandbox.ensure_user()
        sandbox.choose("auto" if layout == "bubblewrap" else layout)
    except sandbox.SandboxUnavailable as e:
        return str(e)
    return None


@pytest.fixture(scope="session")
def gradescope_account():
    """The user sandbox's account exists and may run this Python (which lives under /root, mode 0700,
    on the reference machine); the ACL entries added are taken away again at the end."""
    why = _layout_unavailable("user")
    if why:
        pytest.skip(why)
    opened = sandbox.grant_traverse(Path(os.path.realpath(sys.executable)))
    yield
    for folder in opened:
        subprocess.run(["setfacl", "-x", f"u:{sandbox.SANDBOX_USER}", str(folder)], check=False)


def _site_folders() -> list[Path]:
    found = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages()}
    found.add(os.path.join(sys.base_prefix, "lib", f"python{sys.version_info.major}.{sys.version_info.minor}",
                           "site-packages"))
    return sorted(Path(f) for f in found if os.path.isdir(f))


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


class Attack:
    """What one hostile grading is watched with: a token, a folder outside the work folder, a secret in
    the instructor's home, a listening socket; and, afterwards, what the attack left behind."""

    def __init__(self, layout: str):
        self.layout = layout
        self.token = uuid.uuid4().hex
        # Gradings go under a folder of their own, so a process left in it is found by its folder.
        self.folder = Path(tempfile.mkdtemp(prefix=f"fashion-kit-hostile-{self.token[:8]}-"))
        self.folder.chmod(0o711)  # the user sandbox's account passes through, as on Gradescope
        self.outside = Path(tempfile.mkdtemp(prefix="fashion-kit-outside-"))
        self.outside.chmod(0o755)  # an instructor's ordinary folder: others may read, not write
        self.home = Path.home()
        self.secret = uuid.uuid4().hex
        self.canary_folder = self.home / f".fashion-kit-canary-{self.token}"
        self.canary_folder.mkdir(mode=0o700)  # like ~/.ssh
        self.canary = self.canary_folder / "secret.txt"
        self.canary.write_text(self.secret, encoding="utf-8")
        self.canary.chmod(0o644)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.connections: list[bytes] = []
        self._listening = True
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()
        self.watched = {p / name: _digest(p / name) for p in _site_folders()
                        for name in ("sitecustomize.py", "usercustomize.py")}
        # Seen in the grading's folders while it runs: set-id files, and (in the local layout, where
        # nothing of a grading is another account's business) anything another account could reach.
        self.setid: set[str] = set()
        self.reachable: set[str] = set()
        self._watching = threading.Thread(target=self._watch, daemon=True)
        self._watching.start()

    def _listen(self):
        while self._listening:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    self.connections.append(conn.recv(100))
                except OSError:
                    self.connections.append(b"")

    def _watch(self):
        while self._listening:
            pending = [(str(self.folder), True)]
            while pending:
                folder, open_to_others = pending.pop()
                try:
                    entries = list(os.scandir(folder))
                except OSError:
                    continue
                for entry in entries:
                    try:
                        mode = entry.stat(follow_symlinks=False).st_mode
                    except OSError:
                        continue
                    if mode & 0o6000 and not stat.S_ISLNK(mode):
                        self.setid.add(entry.path)
                    if stat.S_ISDIR(mode):
                        passes = open_to_others and bool(mode & stat.S_IXOTH)
                        if passes and self.layout == "bubblewrap":
                            self.reachable.add(entry.path)
                        pending.append((entry.path, passes))
            time.sleep(0.1)

    @property
    def markers(self) -> dict[str, str]:
        return {"@TOKEN@": self.token, "@OUTSIDE@": str(self.outside), "@HOME@": str(self.home),
                "@CANARY@": str(self.canary), "@PORT@": str(self.listener.getsockname()[1])}

    @property
    def env(self) -> dict[str, str]:
        """Given to the grader (never to phase 1): the sitecustomize/.pth payload acts only where
        FASHION_KIT_HOSTILE holds this token, and the notebook looks for the canary's variable."""
        return {"FASHION_KIT_HOSTILE": self.token, f"FASHION_KIT_CANARY_{self.token[:8]}": self.secret}

    def survivors(self) -> list[str]:
        """Processes of this grading still running: marked with the token, or working in its folder."""
        found = []
        for p in psutil.process_iter():
            try:
                if p.status() == psutil.STATUS_ZOMBIE:
                    continue
                cmdline = " ".join(p.cmdline())
                try:
                    cwd = p.cwd()
                except (psutil.AccessDenied, psutil.ZombieProcess):
                    cwd = ""
                if self.token in cmdline or cwd.startswith(str(self.folder)):
                    found.append(f"{p.pid} {cmdline[:200]}")
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        return found

    def left_outside(self) -> list[str]:
        """Files the attack wrote where it must not: anything in the outside folder, a file carrying the
        token in the instructor's home, the kit, site-packages, /etc or the repository, a changed
        sitecustomize.py."""
        found = [str(p) for p in self.outside.rglob("*")]
        kit = Path(fashion_kit.__file__).parent
        for folder in [self.home, Path("/etc"), Path(__file__).resolve().parents[2], *_site_folders()]:
            found += [str(p) for p in folder.glob(f"*{self.token}*") if p != self.canary_folder]
        found += [str(p) for p in kit.rglob(f"*{self.token}*")]
        found += [str(p) for p, digest in self.watched.items() if _digest(p) != digest]
        return found

    def left_shared(self) -> list[str]:
        """What of the attack is left where every user may write, at any depth (files, folders, POSIX
        message queues: a name carrying the token), and SysV IPC objects with the token's key."""
        found, pending = [], sandbox.shared_writable()
        while pending:
            folder = pending.pop()
            try:
                entries = list(os.scandir(folder))
            except OSError:
                continue
            for entry in entries:
                if self.token in entry.name:
                    found.append(entry.path)
                elif entry.is_dir(follow_symlinks=False):
                    try:
                        if entry.stat(follow_symlinks=False).st_mode & 0o002:
                            pending.append(entry.path)
                    except OSError:
                        pass
        key = str(int(self.token[:7], 16))
        for kind in ("shm", "msg", "sem"):
            try:
                rows = Path(f"/proc/sysvipc/{kind}").read_text().splitlines()[1:]
            except OSError:
                continue
            found += [f"SysV {kind}: {row.split()[:2]}" for row in rows if row.split()[:1] == [key]]
        return found

    def scratch_left(self) -> list[str]:
        """The grading's temporary folders still there once it is over (the local grader's and the
        core's own): whatever phase 1 made of its work folder, the grading removes them."""
        return [p.name for p in self.folder.iterdir() if p.name.startswith(("fashion-kit-grade-", "fashion-kit-grading-"))]

    def clean_up(self):
        """Take the test's own things away, and anything a successful attack left (after it was seen)."""
        self._listening = False
        self._thread.join(timeout=5)
        self._watching.join(timeout=5)
        self.listener.close()
        for p in self.left_outside():
            path = Path(p)
            if path.is_file() and (self.token in path.name or path.is_relative_to(self.outside)):
                path.unlink()
            elif path.name in ("sitecustomize.py", "usercustomize.py") and self.watched.get(path) is None:
                path.unlink()  # planted where there was none
        for p in self.left_shared():
            if not p.startswith("SysV"):
                remove_tree(Path(p)) if os.path.isdir(p) else Path(p).unlink(missing_ok=True)
        for folder in (self.canary_folder, self.outside, self.folder):
            remove_tree(folder)


def grade_as_gradescope(notebook: Path, autograder_zip: Path, settings, env: dict, folder: Path,
                        output_dir: Path) -> run.Outcome:
    """Grade ``notebook`` as Gradescope's ``run_autograder`` does: the zip unpacked into ``source/``,
    the submission in ``submission/``, and ``python -I -m fashion_kit.grading.core DIR --sandbox user``
    run as root. ``folder`` must let the sandbox account pass (mode 0711)."""
    ag_dir = make_gradescope_folder(folder / "autograder", autograder_zip,
                                    run.prepare_submission(notebooks.read(notebook)))
    settings_file = folder / "settings.json"
    settings_file.write_text(json.dumps(settings.to_dict()), encoding="utf-8")
    command = [sys.executable, "-I", "-m", "fashion_kit.grading.core", str(ag_dir), "--sandbox", "user",
               "--settings", str(settings_file), "--scratch", str(folder)]
    ran = supervise.run(command, cwd=folder, env={**os.environ, **env},
                        timeout=run.outer_seconds(settings),
                        memory_limit_mb=settings.memory_limit_mb + run.OUTER_MEMORY_MARGIN_MB)
    found = run.read_results(ag_dir / "results" / "results.json")
    if found is not None:
        output_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(ag_dir / "results" / "results.json", output_dir / "results.json")
    return run.outcome_of(str(notebook), found, ran, settings, "user")


def grade_hostile(entry: dict, layout: str, base: Path, autograder_zip: Path, work: Path) -> dict:
    """Build the entry's notebook, grade it in ``layout`` and look at what it left; returns the outcome
    and what was seen from outside."""
    attack = Attack(layout)
    try:
        notebook = mutant(entry, base, work / f"{entry['name']}-{layout}.ipynb", attack.markers)
        settings = settings_module.from_zip(autograder_zip).replace(**entry.get("settings", {}))
        out = work / f"{entry['name']}-{layout}-graded"
        if layout == "bubblewrap":
            outcome = run.grade(notebook, autograder_zip, out, settings=settings, sandbox="auto", env=attack.env,
                                workdir=attack.folder)
            shared = attack.left_shared()
        else:
            with _user_sandbox_thread_lock, open(USER_SANDBOX_LOCK, "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                outcome = grade_as_gradescope(notebook, autograder_zip, settings, attack.env, attack.folder, out)
                shared = attack.left_shared()  # before another grading may use the account
        seen = {"survivors": attack.survivors(), "outside": attack.left_outside(), "shared": shared,
                "connections": list(attack.connections), "setid": sorted(attack.setid),
                "reachable": sorted(attack.reachable), "scratch": attack.scratch_left()}
    finally:
        attack.clean_up()
    return {"outcome": outcome, **seen}


def selected_hostile(session) -> list[tuple[dict, str]]:
    """The (entry, layout) pairs this session will check, in the order they are to be graded."""
    picked = {(item.callspec.params["entry"]["name"], item.callspec.params["layout"]) for item in session.items
              if item.originalname == "test_hostile_entry_gets_exactly_its_expected_scores"}
    # Layouts alternate, so the pool of two grades one in each at a time (user gradings wait for each other).
    return [(e, layout) for e in HOSTILE for layout in LAYOUTS if (e["name"], layout) in picked]


@pytest.fixture(scope="session")
def hostile_gradings(request, built, grader, tmp_path_factory) -> dict:
    """Every selected hostile grading queued at once in the session's pool."""
    work = tmp_path_factory.mktemp("hostile")
    layouts = {pair[1] for pair in selected_hostile(request.session)}
    unavailable = {layout: _layout_unavailable(layout) for layout in layouts}
    if "user" in layouts and unavailable["user"] is None:
        request.getfixturevalue("gradescope_account")
    futures = {}
    for entry, layout in selected_hostile(request.session):
        if unavailable[layout] is None:
            futures[entry["name"], layout] = grader.submit_call(
                f"hostile-{entry['name']}-{layout}", grade_hostile, entry, layout, built.solutions["en"],
                built.autograder_zip, work)
    return {"futures": futures, "unavailable": unavailable}


@pytest.mark.waits  # the fork bomb idles until its time limit
@pytest.mark.slow
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("entry", HOSTILE, ids=[e["name"] for e in HOSTILE])
def test_hostile_entry_gets_exactly_its_expected_scores(hostile_gradings, entry, layout):
    if layout == "user" and os.geteuid() != 0:
        pytest.skip(NEEDS_ROOT)
    if hostile_gradings["unavailable"].get(layout):
        pytest.skip(f"the {layout} layout cannot grade here: {hostile_gradings['unavailable'][layout]}")
    graded = hostile_gradings["futures"][entry["name"], layout].result()
    outcome = graded["outcome"]
    scores, stopped, network = expected(entry, layout)
    assert outcome.status == "graded", outcome.message + outcome.log[-3000:]
    assert outcome.sandbox == layout
    found = {q: score for q, (score, _) in outcome.scores.items()}
    assert found == scores, f"{entry['name']} in {layout} ({entry['why']})\nexpected {scores}\nfound    {found}"
    # No bonus: the total is exactly the questions' scores.
    assert outcome.results["score"] == sum(scores.values()), outcome.results
    check_challenge(entry, outcome.results, scores)
    assert not gradescope_spec.problems(outcome.results), gradescope_spec.problems(outcome.results)
    assert outcome.stopped == stopped, f"{entry['name']} in {layout}: stopped {outcome.stopped!r}, expected {stopped!r}"
    assert graded["survivors"] == [], f"{entry['name']} in {layout}: processes outlived the grading"
    assert graded["outside"] == [], f"{entry['name']} in {layout}: files written outside the work folder"
    assert graded["shared"] == [], f"{entry['name']} in {layout}: left behind where every user may write"
    assert graded["setid"] == [], f"{entry['name']} in {layout}: set-id files existed during the grading"
    assert graded["reachable"] == [], f"{entry['name']} in {layout}: other accounts could reach the grading's folders"
    assert graded["scratch"] == [], f"{entry['name']} in {layout}: the grading's temporary folders were not removed"
    assert bool(graded["connections"]) == network, (
        f"{entry['name']} in {layout}: {len(graded['connections'])} connection(s) reached the test's port")


def _reference_as_gradescope(notebook: Path, autograder_zip: Path) -> run.Outcome:
    """The reference graded in Gradescope's layout with the tests' quick fit: the layout is the claim
    (the session's English grading is the real training's)."""
    folder = Path(tempfile.mkdtemp(prefix="fashion-kit-reference-"))
    folder.chmod(0o711)  # the user sandbox's account passes through, as on Gradescope
    try:
        with _user_sandbox_thread_lock, open(USER_SANDBOX_LOCK, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            return grade_as_gradescope(notebook, autograder_zip, settings_module.from_zip(autograder_zip),
                                       QUICK_FIT_ENV, folder, folder / "graded")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
def test_reference_solution_scores_full_marks_in_gradescopes_layout(built, grader, request):
    if os.geteuid() != 0:
        pytest.skip(NEEDS_ROOT)
    request.getfixturevalue("gradescope_account")
    outcome = grader.submit_call("reference-user", _reference_as_gradescope, built.solutions["en"],
                                 grader.quick_zip).result()
    assert outcome.status == "graded" and outcome.sandbox == "user", outcome.message + outcome.log[-3000:]
    assert outcome.results["extra_data"][contract.QUICK_FIT_KEY]
    assert {q: score for q, (score, _) in outcome.scores.items()} == QUESTIONS
