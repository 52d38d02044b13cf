"""The client CPU one pooled query costs: borrow a connection, run `SELECT 1`, give it back.

    .venv/bin/python bench/db_overhead.py [ROOT]

What db.py itself adds per request, measured as this process's CPU time
(time.process_time), so the server's latency and the machine's other load
do not count. ROOT (default: this checkout) lets two checkouts be compared
with one virtualenv, e.g. a `git archive` of main beside the working tree.
Needs the MySQL server of DB_HOST/DB_PORT (default 127.0.0.1:3306, root).
"""
import sys
import time
from pathlib import Path

ROOT = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import app as app_module  # noqa: E402
import db  # noqa: E402

ROUNDS, PER_ROUND = 5, 3000


def main():
    application = app_module.create_app({"DB_NAME": "mysql", "APP_ENV": "test", "SECRET_KEY": "x" * 64,
                                         "RATELIMIT_ENABLED": False})

    def cycle(count):
        began = time.process_time()
        for _ in range(count):
            with application.app_context():
                db.one("SELECT 1 AS one")
        return (time.process_time() - began) / count * 1e6

    cycle(500)  # warm up: the pool's connection, the code paths
    rounds = sorted(cycle(PER_ROUND) for _ in range(ROUNDS))
    print(f"{ROOT}: {rounds[len(rounds) // 2]:.1f} us of client CPU per pooled query "
          f"(rounds: {', '.join(f'{r:.1f}' for r in rounds)})")


if __name__ == "__main__":
    main()
