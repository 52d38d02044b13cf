"""What a login with a second factor costs next to a password-only login, in the same run.

    .venv/bin/python bench/mfa_login.py [--users 40]

Starts the service (`python -m serving`, as bench/run.py does, its own database), makes
two sets of accounts, one plain and one with an authenticator app on, and
logs each in once per kind, interleaved, from one client (latency, not
throughput; the argon2id password check dominates every kind):

- password only:      POST /auth                              (plain account)
- two steps:          POST /auth -> 401 mfa_token, POST /auth/mfa with the code
- one step with otp:  POST /auth {username, password, otp}
- recovery code:      POST /auth -> 401, POST /auth/mfa with a recovery code

A TOTP step is accepted once per account, hence one account per sample.
Prints the medians (ms) and their ratios to password-only; writes nothing.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import pyotp  # noqa: E402

import jsonhttp  # noqa: E402
import run  # noqa: E402

PASSWORD = "bench-passphrase-12345"


def _ok(status, body, expected, what):
    if status != expected:
        raise RuntimeError(f"{what}: {status} {body}")
    return body


def make_accounts(url, prefix, count, with_totp):
    """`count` accounts named prefix0..; with TOTP on (confirmed with the previous step's code) if asked."""
    accounts = []
    for i in range(count):
        name = f"{prefix}{i}"
        _ok(*jsonhttp.call("POST", url + "/register", body={"username": name, "password": PASSWORD})[::2],
            201, "register")
        account = {"username": name}
        if with_totp:
            token = _ok(*jsonhttp.call("POST", url + "/auth", body={"username": name, "password": PASSWORD})[::2],
                        200, "login")["access_token"]
            secret = _ok(*jsonhttp.call("POST", url + "/mfa/totp", token=token)[::2], 200, "enroll")["secret"]
            if not 2 <= time.time() % 30 <= 28:  # no step edge between the code and its check
                time.sleep(3)
            code = pyotp.TOTP(secret).at(time.time() - 30)
            codes = _ok(*jsonhttp.call("POST", url + "/mfa/totp/confirm", token=token, body={"code": code})[::2],
                        200, "confirm")["recovery_codes"]
            account.update(secret=secret, recovery_codes=codes)
        accounts.append(account)
    return accounts


def timed(steps):
    """Run the (method, url, body, expected status) steps in order; seconds for all, or fail."""
    total = 0.0
    previous = None
    for method, url, body_of, expected in steps:
        status, _, body, elapsed = jsonhttp.timed_call(method, url, body=body_of(previous))
        _ok(status, body, expected, url)
        total += elapsed
        previous = body
    return total


def login_kinds(url, plain, secured, index):
    """{kind: seconds} for one sample of each kind."""
    creds = lambda account: {"username": account["username"], "password": PASSWORD}  # noqa: E731
    p, s = plain[index], secured[index]
    now = pyotp.TOTP(s["secret"]).now
    return {
        "password only": timed([("POST", url + "/auth", lambda _: creds(p), 200)]),
        "two steps (code)": timed([
            ("POST", url + "/auth", lambda _: creds(s), 401),
            ("POST", url + "/auth/mfa", lambda prev: {"mfa_token": prev["mfa_token"], "code": now()}, 200)]),
        "one step (otp)": timed([("POST", url + "/auth", lambda _: dict(
            creds(s), otp=pyotp.TOTP(s["secret"]).at(time.time() + 30)), 200)]),
        "two steps (recovery code)": timed([
            ("POST", url + "/auth", lambda _: creds(s), 401),
            ("POST", url + "/auth/mfa", lambda prev: {"mfa_token": prev["mfa_token"],
                                                      "recovery_code": s["recovery_codes"][0]}, 200)]),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=40, help="samples per kind (one account each)")
    args = parser.parse_args(argv)
    with run.workspace("bench-mfa-") as (base, database, work):
        env = run.server_env(base, database)
        server = run.start_ours("service", env, work)
        server.ready("/healthz")
        run.log(f"making {args.users} plain and {args.users} TOTP accounts")
        plain = make_accounts(server.url, "plain", args.users, with_totp=False)
        secured = make_accounts(server.url, "secured", args.users, with_totp=True)
        for account in plain[:3]:  # warm every worker's pool
            timed([("POST", server.url + "/auth", lambda _: {"username": account["username"],
                                                            "password": PASSWORD}, 200)])
        samples = {}
        for index in range(args.users):
            for kind, seconds in login_kinds(server.url, plain, secured, index).items():
                samples.setdefault(kind, []).append(seconds)
    baseline = statistics.median(samples["password only"])
    print(f"{'login':<28}{'median ms':>10}{'p90 ms':>9}{'x password':>12}")
    for kind, values in samples.items():
        median = statistics.median(values)
        p90 = statistics.quantiles(values, n=10)[-1]
        print(f"{kind:<28}{median * 1000:>10.1f}{p90 * 1000:>9.1f}{median / baseline:>12.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
