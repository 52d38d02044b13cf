"""`bench/run.py --cluster`: what a 3-node Galera cluster, and causal reads on it, cost per request.

One run measures three copies of the service side by side, each against
the same data (1,000 users, 1,000 posts), each with the cache off so that
MySQL answers every request (with the cache on, a hit reads nothing and
costs nothing more on a cluster):
- single:      the single server the normal bench uses;
- cluster off: node 1 of a 3-node Galera cluster started for the run
               (tests/cluster/harness.py), DB_CAUSAL_READS=off;
- cluster on:  the same node, DB_CAUSAL_READS=on (wsrep_sync_wait=1: every
               read first waits until the node has applied what the
               cluster had committed).
Rounds are interleaved with the bare-Flask hello, as in the normal bench;
the report gives each figure as a ratio to hello and to the single server.
"""
import datetime
import os
import sys
from pathlib import Path

import load_data
import run as bench

# tests/cluster/harness.py imports tests/support.py (`from support import ...`),
# as every test module does: put both folders on the path, as tests/conftest.py
# does; appended, so that nothing there shadows a bench module.
sys.path += [str(bench.ROOT / "tests"), str(bench.ROOT / "tests" / "cluster")]
import harness  # noqa: E402

NAMES = ("rest_auth", "posts_page")
LABELS = ("single", "cluster_off", "cluster_on")


def run_cluster(args, base, database, work):
    """Start the cluster, load it, measure the three services; print the table, write the JSON."""
    missing = harness.missing_tools()
    if missing:
        bench.log(f"--cluster needs {', '.join(missing)} (make system-deps installs them)")
        return 2
    cluster = harness.Cluster(auto_increment_control=False)  # ids as on the single server
    try:
        bench.log("starting a 3-node Galera cluster and Redis Sentinel")
        cluster.start()
        return _measure(args, base, database, work, cluster)
    finally:
        cluster.stop()
        bench.log("stopped the cluster")


def _measure(args, base, database, work, cluster):
    node = cluster.galera.nodes[0]
    cluster_base = dict(base, **{k: v for k, v in node.config().items() if k != "DB_NAME"})
    cluster_db = bench.create_database(cluster_base)
    for target_base, name in ((base, database), (cluster_base, cluster_db)):
        load_data.load(name, bench.BASE_USERS, bench.BASE_POSTS, target_base)
    envs = {
        "single": dict(bench.server_env(base, database), CACHE_SECONDS="0"),
        "cluster_off": dict(bench.server_env(cluster_base, cluster_db), CACHE_SECONDS="0", DB_CAUSAL_READS="off"),
        "cluster_on": dict(bench.server_env(cluster_base, cluster_db), CACHE_SECONDS="0", DB_CAUSAL_READS="on"),
    }
    hello = bench.start_hello(envs["single"], work)
    contexts = {}
    for label in LABELS:
        server = bench.start_ours(label, envs[label], work)
        server.ready("/rest-auth")
        contexts[label] = bench.logged_in(bench.Context(hello, server, work, server))
    for label, ctx in contexts.items():  # warm every worker and code path, unrecorded
        for name in ("hello", *NAMES):
            bench.endpoints(ctx)[name][1](min(2.0, args.duration))
    results = bench.run_rounds(contexts, list(NAMES), args.rounds, args.duration)
    summaries = {label: bench.summarize(results[label], args.rounds) for label in LABELS}
    table = _table(summaries, args.rounds)
    _print(table)
    path = bench.write_json({
        "when": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "mode": "cluster",
        "settings": {"workers": bench.WORKERS, "connections": bench.CONNECTIONS, "duration_s": args.duration,
                     "rounds": args.rounds, "cores": bench.cores(), "load_average": os.getloadavg(),
                     "cache": "off (CACHE_SECONDS=0)"},
        "summary": summaries, "ratios": table,
    })
    print(f"\nwrote {Path(path).relative_to(bench.ROOT)}")
    bench.drop_database(cluster_base, cluster_db)
    return 0


def _table(summaries, rounds):
    """Per endpoint: req/s of each service, and the ratios that answer "what does it cost?"."""
    table = {}
    for name in NAMES:
        rates = {label: summaries[label][name]["req_s"]["values"] for label in LABELS}
        per_round = lambda a, b: bench._stats([rates[a][r] / rates[b][r] for r in range(rounds)])  # noqa: E731
        table[name] = {
            "req_s": {label: summaries[label][name]["req_s"]["median"] for label in LABELS},
            "vs_hello": {label: summaries[label][name]["ratio"]["median"] for label in LABELS},
            "cluster_off_vs_single": per_round("cluster_off", "single"),
            "cluster_on_vs_single": per_round("cluster_on", "single"),
            "causal_on_vs_off": per_round("cluster_on", "cluster_off"),
            "p99_ms": {label: summaries[label][name]["p99_ms"]["median"] for label in LABELS},
            "non2xx": sum(summaries[label][name]["non2xx"] for label in LABELS),
        }
    return table


def _print(table):
    print("\nCache off (every request reads MySQL); medians over the rounds.")
    print(f"{'endpoint':12} {'single':>9} {'cl. off':>9} {'cl. on':>9}   "
          f"{'off/single':>10} {'on/single':>10} {'on/off':>8}   p99 ms single/off/on")
    for name, row in table.items():
        rates = row["req_s"]
        p99 = row["p99_ms"]
        print(f"{name:12} {rates['single']:9.0f} {rates['cluster_off']:9.0f} {rates['cluster_on']:9.0f}   "
              f"{row['cluster_off_vs_single']['median']:10.3f} {row['cluster_on_vs_single']['median']:10.3f} "
              f"{row['causal_on_vs_off']['median']:8.3f}   "
              f"{p99['single']:.1f}/{p99['cluster_off']:.1f}/{p99['cluster_on']:.1f}"
              f"{'  NON-2xx: ' + str(row['non2xx']) if row['non2xx'] else ''}")
