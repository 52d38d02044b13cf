"""Each peer's own virtualenv under bench/.venvs/<peer>/, made from bench/peers/requirements-<peer>.txt.

The peers' dependencies never enter the service's requirements: each peer
gets a venv of its own, created the first time it is needed and again only
when its requirements file changes (a stamp inside the venv holds the
file's hash and the interpreter's version). A lock file makes two runs (the
bench and the test suite) wait for one another instead of installing twice.
"""
import fcntl
import hashlib
import shutil
import subprocess
import sys
import time
from pathlib import Path

PEERS_DIR = Path(__file__).resolve().parent
VENVS_DIR = PEERS_DIR.parent / ".venvs"
STAMP = ".requirements.sha256"


def requirements(name: str) -> Path:
    return PEERS_DIR / f"requirements-{name}.txt"


def _wanted_stamp(name):
    digest = hashlib.sha256(requirements(name).read_bytes()).hexdigest()
    return f"{digest} python{sys.version_info[0]}.{sys.version_info[1]}\n"


def ensure(name: str, log=print) -> Path:
    """The bin/ folder of peer `name`'s venv, installed first if missing or stale.

    Raises RuntimeError with pip's last lines when the install fails (the venv
    is then removed, so the next call starts again from scratch).
    """
    venv = VENVS_DIR / name
    wanted = _wanted_stamp(name)
    VENVS_DIR.mkdir(exist_ok=True)
    with open(VENVS_DIR / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stamp = venv / STAMP
        if stamp.exists() and stamp.read_text() == wanted:
            return venv / "bin"
        _install(name, venv, log)
        stamp.write_text(wanted)
    return venv / "bin"


def _install(name, venv, log):
    """A new venv from scratch (no package left over from an older requirements file)."""
    began = time.monotonic()
    log(f"peer {name}: installing {requirements(name).name} into {venv.relative_to(PEERS_DIR.parent.parent)}")
    shutil.rmtree(venv, ignore_errors=True)
    steps = ([sys.executable, "-m", "venv", str(venv)],
             [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
              "-r", str(requirements(name))])
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-25:])
            raise RuntimeError(f"peer {name}: {' '.join(step[:3])} failed ({done.returncode}):\n{tail}")
    log(f"peer {name}: installed in {time.monotonic() - began:.0f} s")
