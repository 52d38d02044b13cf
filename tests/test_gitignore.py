"""What the service and its commands write into the checkout is ignored by git (never committed by accident)."""
import subprocess

import pytest

from support import ROOT

WRITTEN = [
    ".env",                                # make .env: secrets
    "keys/signing.pem",                    # flask keys generate (default --out keys)
    "keys/Zm9vYmFyYmF6cXV4.pem",           # flask keys rotate into a verify folder under keys/
    "signing.pem",                         # a key kept at the top
    "counter_12345.db",                    # prometheus_client multi-process files
    "gauge_livesum_12345.db",
    ".venv/bin/python",
    "node_modules/.installed",
    "bench/results/run.json",
    "bench/.venvs/fastapi-users/bin/python",  # a bench peer's own venv (bench/peers/venvs.py)
    "bench/results/serving-choice.json",    # bench/serving_choice.py
    "bench/.venvs/serving-choice/bin/python",  # its gevent candidate's venv
]


@pytest.mark.parametrize("path", WRITTEN)
def test_written_files_are_ignored(path):
    result = subprocess.run(["git", "check-ignore", "--no-index", "-q", path], cwd=ROOT, timeout=30)
    assert result.returncode == 0, f"{path} is not in .gitignore"


def test_tracked_sources_are_not_ignored():
    for path in ("sql/seed.sql", "static/docs.js", "templates/docs.html", ".env.example"):
        result = subprocess.run(["git", "check-ignore", "--no-index", "-q", path], cwd=ROOT, timeout=30)
        assert result.returncode == 1, f"{path} would be ignored"
