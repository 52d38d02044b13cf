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


def _wanted_stamp(requirements_file):
    digest = hashlib.sha256(Path(requirements_file).read_bytes()).hexdigest()
    return f"{digest} python{sys.version_info[0]}.{sys.version_info[1]}\n"


def ensure(name: str, requirements_file=None, venvs_dir=VENVS_DIR, log=print) -> Path:
    """The bin/ folder of peer `name`'s venv, installed first if missing or stale.

    `requirements_file` defaults to bench/peers/requirements-<name>.txt. Raises
    RuntimeError with pip's last lines when the install fails (the venv is then
    removed, so the next call starts again from scratch).
    """
    requirements_file = Path(requirements_file or requirements(name))
    venvs_dir = Path(venvs_dir)
    venv = venvs_dir / name
    wanted = _wanted_stamp(requirements_file)
    venvs_dir.mkdir(parents=True, exist_ok=True)
    with open(venvs_dir / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        stamp = venv / STAMP
        if stamp.exists() and stamp.read_text() == wanted:
            return venv / "bin"
        _install(name, requirements_file, venv, log)
        stamp.write_text(wanted)
    return venv / "bin"


def _install(name, requirements_file, venv, log):
    """A new venv from scratch (no package left over from an older requirements file)."""
    began = time.monotonic()
    log(f"peer {name}: installing {requirements_file.name} into {venv}")
    shutil.rmtree(venv, ignore_errors=True)
    steps = ([sys.executable, "-m", "venv", str(venv)],
             [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
              "-r", str(requirements_file)])
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-25:])
            raise RuntimeError(f"peer {name}: {' '.join(step[:3])} failed ({done.returncode}):\n{tail}")
    log(f"peer {name}: installed in {time.monotonic() - began:.0f} s")
