#!/usr/bin/python3
"""Independent oracle: drives the CQL test peer with the DataStax Python driver, the way an application uses a real
cluster, and prints what it observed as one JSON object on stdout. Usage: driver_oracle.py HOST[,HOST...] PORT [USER PASS]
"""
import json
import sys
import time

try:
    from cassandra.cluster import Cluster, ExecutionProfile, EXEC_PROFILE_DEFAULT, NoHostAvailable
    from cassandra.policies import RoundRobinPolicy, TokenAwarePolicy
    from cassandra.query import SimpleStatement, BatchStatement, BatchType
    from cassandra.auth import PlainTextAuthProvider
    from cassandra import InvalidRequest, AuthenticationFailed
except ImportError as e:
    print(json.dumps({"error": "missing-module", "detail": str(e)}))
    sys.exit(3)


def main():
    hosts = sys.argv[1].split(",")
    port = int(sys.argv[2])
    auth = None
    if len(sys.argv) >= 5:
        auth = PlainTextAuthProvider(username=sys.argv[3], password=sys.argv[4])
    out = {}
    profile = ExecutionProfile(load_balancing_policy=TokenAwarePolicy(RoundRobinPolicy()), request_timeout=10)
    cluster = Cluster(contact_points=hosts, port=port, protocol_version=4, auth_provider=auth,
                      execution_profiles={EXEC_PROFILE_DEFAULT: profile}, connect_timeout=10,
                      control_connection_timeout=10)
    session = cluster.connect()
    out["hosts"] = sorted(str(h.address) for h in cluster.metadata.all_hosts())
    out["partitioner"] = cluster.metadata.partitioner

    session.execute("CREATE KEYSPACE IF NOT EXISTS oracle WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 1}")
    session.set_keyspace("oracle")
    session.execute("CREATE TABLE IF NOT EXISTS msgs (chat text, seq bigint, body text, n int, "
                    "PRIMARY KEY ((chat), seq)) WITH CLUSTERING ORDER BY (seq DESC)")
    session.execute("CREATE TABLE IF NOT EXISTS kv (k text PRIMARY KEY, v text, tags set<text>)")

    # Plain writes with explicit timestamps: last write wins by timestamp, not by arrival.
    session.execute("INSERT INTO kv (k, v) VALUES ('a', 'new') USING TIMESTAMP 2000")
    session.execute("INSERT INTO kv (k, v) VALUES ('a', 'old') USING TIMESTAMP 1000")
    out["lww"] = session.execute("SELECT v, writetime(v) FROM kv WHERE k = 'a'").one()[0:2]
    # A delete shadows older cells only; a later write reappears.
    session.execute("DELETE FROM kv USING TIMESTAMP 3000 WHERE k = 'a'")
    out["after_delete"] = [list(r) for r in session.execute("SELECT k, v FROM kv WHERE k = 'a'")]
    session.execute("UPDATE kv USING TIMESTAMP 4000 SET v = 'back' WHERE k = 'a'")
    out["after_rewrite"] = session.execute("SELECT v FROM kv WHERE k = 'a'").one()[0]
    # TTL: visible, then gone.
    session.execute("INSERT INTO kv (k, v, tags) VALUES ('t', 'ttl', {'x', 'y'}) USING TTL 1")
    row = session.execute("SELECT v, tags, ttl(v) FROM kv WHERE k = 't'").one()
    out["ttl_before"] = [row[0], sorted(row[1]), row[2]]
    time.sleep(2.5)
    out["ttl_after"] = [list(r) for r in session.execute("SELECT k FROM kv WHERE k = 't'")]

    # Prepared statements, and paging across pages.
    insert = session.prepare("INSERT INTO msgs (chat, seq, body, n) VALUES (?, ?, ?, ?)")
    out["routing_indexes"] = list(insert.routing_key_indexes or [])
    for i in range(1, 24):
        session.execute(insert, ("c1", i, "m%d" % i, i * 10))
    select = session.prepare("SELECT seq, body FROM msgs WHERE chat = ?")
    select.fetch_size = 5
    result = session.execute(select, ("c1",))
    seqs = []
    for r in result:
        seqs.append(r.seq)
    out["paged_seqs"] = seqs
    stmt = SimpleStatement("SELECT seq FROM msgs WHERE chat = 'c1' AND seq >= 5 AND seq < 9 ORDER BY seq ASC", fetch_size=2)
    out["range_asc"] = [r.seq for r in session.execute(stmt)]
    out["count"] = session.execute("SELECT COUNT(*) FROM msgs WHERE chat = 'c1'").one()[0]
    out["limit"] = [r.seq for r in session.execute("SELECT seq FROM msgs WHERE chat = %s LIMIT 3", ("c1",))]

    # A logged batch mixing prepared and plain statements.
    batch = BatchStatement(batch_type=BatchType.LOGGED)
    batch.add(insert, ("c2", 1, "b1", 1))
    batch.add(SimpleStatement("INSERT INTO msgs (chat, seq, body, n) VALUES (%s, %s, %s, %s)"), ("c2", 2, "b2", 2))
    batch.add(SimpleStatement("UPDATE msgs SET body = 'b3' WHERE chat = 'c2' AND seq = 3"))
    session.execute(batch)
    out["batch_rows"] = [[r.seq, r.body] for r in session.execute("SELECT seq, body FROM msgs WHERE chat = 'c2'")]
    big = BatchStatement(batch_type=BatchType.UNLOGGED)
    for i in range(10, 17):
        big.add(insert, ("c3", i, "x", i))
    future = session.execute_async(big)
    future.result()
    out["batch_warnings"] = len(future.warnings or [])

    # Lightweight transactions.
    lwt = "INSERT INTO kv (k, v) VALUES ('lwt', 'first') IF NOT EXISTS"
    first = session.execute(lwt).one()
    second = session.execute("INSERT INTO kv (k, v) VALUES ('lwt', 'second') IF NOT EXISTS").one()
    out["lwt"] = [first[0], second[0], second.v]
    cas = session.execute("UPDATE kv SET v = 'third' WHERE k = 'lwt' IF v = 'first'").one()
    cas_fail = session.execute("UPDATE kv SET v = 'fourth' WHERE k = 'lwt' IF v = 'first'").one()
    out["cas"] = [cas[0], cas_fail[0], cas_fail.v]

    try:
        session.execute("SELECT * FROM nosuchtable")
        out["invalid"] = "no error"
    except InvalidRequest as e:
        out["invalid"] = "InvalidRequest"

    out["dropped"] = "ok"
    session.execute("DROP TABLE msgs")
    cluster.shutdown()
    print(json.dumps(out, separators=(",", ":")))


if __name__ == "__main__":
    try:
        main()
    except AuthenticationFailed as e:
        print(json.dumps({"error": "auth", "detail": str(e)}))
    except NoHostAvailable as e:
        # A refused login surfaces as "no host available", each host's error being the authentication failure.
        if e.errors and all(isinstance(x, AuthenticationFailed) for x in e.errors.values()):
            print(json.dumps({"error": "auth", "detail": str(e)}))
        else:
            print(json.dumps({"error": "NoHostAvailable", "detail": str(e)}))
            sys.exit(2)
    except Exception as e:  # report, so the C# side shows what failed
        import traceback
        print(json.dumps({"error": type(e).__name__, "detail": str(e), "trace": traceback.format_exc()}))
        sys.exit(2)
