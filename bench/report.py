#!/usr/bin/env python3
"""Turns bench/run.sh's raw results into bench/results.json and docs/benchmarks.md.

Input: one JSON object a line, each with name, unit, samples (syncline),
baseline_samples (plain) and, for capture, peers (a peer's name to its
samples: PgQ, the audit trigger, wal2json, SQLite's session extension). value
and baseline are the medians, ratio is value / baseline, the spread of each
is its min-max; the target is checked here.
"""
import argparse
import json
import statistics

# Peers: name -> how the tables call it.
PEERS = {
    "pgq": "PgQ `pgq.logutriga` trigger",
    "audit": "audit trigger (PL/pgSQL, `to_jsonb`)",
    "wal2json_slot": "wal2json slot, no consumer",
    "wal2json_consumer": "wal2json slot + `pg_recvlogical`",
    "session": "session extension + changeset",
}
# The pgbench targets ask syncline to stay above these by more than the spread.
TRIGGER_PEERS = ("pgq", "audit")
HIGHER_IS_BETTER = ("tps", "changes/s", "rows/s")

# name: (what it measures, target: (field, op, threshold) or None)
METRICS = {
    "sqlite.insert_1_txn": ("insert N rows, one transaction (time)", ("ratio", "<=", 2.0)),
    "sqlite.insert_1000_txns": ("insert N rows in 1,000 transactions (time)", ("ratio", "<=", 1.5)),
    "sqlite.update_all": ("update one column of every row (time)", ("ratio", "<=", 4.0)),
    "sqlite.delete_10pct": ("delete 10 % of the rows (time)", ("ratio", "<=", 2.0)),
    "sqlite.storage": ("file size after the insert and a checkpoint", ("ratio", "<=", 1.6)),
    "sqlite.insert_1_txn_tuned": ("insert N rows, one transaction, with `temp_store=MEMORY` and a 32 MB cache "
                                  "(docs/sqlite.md) in both (time)", None),
    "sqlite.update_all_tuned": ("update one column of every row, same settings (time)", None),
    "sqlite.delete_10pct_tuned": ("delete 10 % of the rows, same settings (time)", None),
    "sqlite.pull": ("`syncline_pull_since`, pages of 1000, vs `json_group_array` pages by key", ("ratio", ">=", 0.5)),
    "sqlite.apply": ("`syncline_apply_push` of those pages into an empty tracked file, vs prepared upsert, "
                     "1000 a transaction", ("ratio", ">=", 0.5)),
    "pg.bulk_insert": ("`INSERT ... SELECT` of N rows (time)", ("ratio", "<=", 1.5)),
    "pg.bulk_update": ("`UPDATE` of one column of N rows (time)", ("ratio", "<=", 1.8)),
    "pg.pull": ("`syncline.pull_since`, pages of 1000, vs `jsonb_agg(to_jsonb(t))` pages by key", ("ratio", ">=", 0.5)),
    "pg.apply": ("`syncline.apply_push` of SQLite-pulled pages into an empty tracked table, vs "
                 "`INSERT ... ON CONFLICT`, 1000 rows a statement", ("ratio", ">=", 0.5)),
}
for op in ("insert", "update"):
    for clients in (1, 4):
        for notify in ("off", "on"):
            METRICS[f"pg.pgbench_{op}_c{clients}_notify_{notify}"] = (
                f"single-row {op}, {clients} client{'s' if clients > 1 else ''}, NOTIFY {notify} (TPS)",
                ("ratio", ">=", 0.85))
for op in ("insert", "update"):
    METRICS[f"pg.instructions_{op}"] = (
        f"single-row {op}, NOTIFY off: instructions a statement (callgrind, single-user backend)", None)
METRICS["pg.logical.bulk_insert"] = ("`INSERT ... SELECT` of N rows, wal_level=logical cluster (time)", None)
METRICS["pg.logical.bulk_update"] = ("`UPDATE` of one column of N rows, wal_level=logical cluster (time)", None)
for op in ("insert", "update"):
    for clients in (1, 4):
        METRICS[f"pg.logical.pgbench_{op}_c{clients}"] = (
            f"single-row {op}, {clients} client{'s' if clients > 1 else ''}, NOTIFY off, wal_level=logical "
            "cluster (TPS)", None)


def beats_peers(name):
    """Whether the metric's target also asks to stay above the trigger peers."""
    return name.startswith("pg.pgbench_")


def clone_metric(name):
    label = name.split("_")[1]
    if name.endswith("_time"):
        return (f"clone of {label} rows: wall time, vs `\\copy` + SQLite bulk load", None)
    if name.endswith("_rate"):
        target = ("value", ">=", 100000) if label == "1m" else None
        return (f"clone of {label} rows: rows/s", target)
    target = ("value", "<", 100) if label == "1m" else None
    return (f"clone of {label} rows: peak RSS (baseline: its larger process)", target)


def describe(name):
    if name in METRICS:
        return METRICS[name]
    if name.startswith("e2e.clone_"):
        return clone_metric(name)
    return (name, None)


def check(entry, target):
    field, op, threshold = target
    x = entry[field]
    return x <= threshold if op == "<=" else x >= threshold if op == ">=" else x < threshold


def fmt(x, unit=""):
    if unit == "bytes":
        return f"{x / 1048576:.1f} MiB"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def target_text(name, target):
    if target is None:
        return "(info)"
    field, op, threshold = target
    op = {"<=": "≤", ">=": "≥", "<": "<"}[op]
    text = f"ratio {op} {threshold:g}" if field == "ratio" else f"{op} {fmt(threshold)}"
    if beats_peers(name):
        text += ", above " + " and ".join(TRIGGER_PEERS) + " by more than the spread"
    return text


def spread(samples):
    return [min(samples), max(samples)] if samples else None


def above(unit, ours, theirs):
    """ours is better than theirs by more than the larger of the two min-max spreads."""
    width = max(max(ours) - min(ours), max(theirs) - min(theirs))
    gap = statistics.median(ours) - statistics.median(theirs)
    return (gap if unit in HIGHER_IS_BETTER else -gap) > width


def make_entry(raw):
    samples, base = raw["samples"], raw["baseline_samples"]
    value, baseline = statistics.median(samples), statistics.median(base)
    text, target = describe(raw["name"])
    entry = {
        "name": raw["name"],
        "value": round(value, 4),
        "unit": raw["unit"],
        "baseline": round(baseline, 4),
        "ratio": round(value / baseline, 4) if baseline else None,
        "runs": len(samples),
        "spread": spread(samples),
        "baseline_spread": spread(base),
        "samples": samples,
        "baseline_samples": base,
        "description": text,
        "target": target_text(raw["name"], target) if target else None,
        "met": None,
    }
    peers = {}
    for peer, peer_samples in raw.get("peers", {}).items():
        if not peer_samples:
            continue
        median = statistics.median(peer_samples)
        peers[peer] = {
            "value": round(median, 4),
            "spread": spread(peer_samples),
            "ratio": round(median / baseline, 4) if baseline else None,
            "syncline_over_peer": round(value / median, 4) if median else None,
            "above_by_more_than_spread": above(raw["unit"], samples, peer_samples),
            "samples": peer_samples,
        }
    if peers:
        entry["peers"] = peers
    if target:
        misses = [] if check({"value": value, "ratio": value / baseline}, target) else [target[0]]
        if beats_peers(raw["name"]):
            misses += [f"not above {p}" for p in TRIGGER_PEERS
                       if p in peers and not peers[p]["above_by_more_than_spread"]]
        entry["met"] = not misses
        entry["missed"] = misses
    return entry


def workload_key(name):
    key = name.replace("pg.logical.", "pg.", 1)
    for suffix in ("_notify_off", "_notify_on", "_tuned"):
        if key.endswith(suffix):
            key = key[:-len(suffix)]
    return key


def setting(name, facts):
    if name.startswith("pg.logical."):
        return "wal_level=logical (second cluster)"
    if name.startswith("pg.instructions_"):
        return "single-user backend, callgrind"
    if name.startswith("pg."):
        return "wal_level=" + facts.get("wal_level", "replica")
    if name.endswith("_tuned"):
        return "`temp_store=MEMORY`, 32 MB cache"
    return "default cache and temp store"


def workload_title(key):
    titles = {
        "sqlite.insert_1_txn": "SQLite: insert N rows in one transaction",
        "sqlite.update_all": "SQLite: update one column of every row",
        "sqlite.delete_10pct": "SQLite: delete 10 % of the rows",
        "pg.bulk_insert": "PostgreSQL: `INSERT ... SELECT` of N rows",
        "pg.bulk_update": "PostgreSQL: `UPDATE` of one column of N rows",
        "pg.instructions_insert": "PostgreSQL: instructions a single-row insert",
        "pg.instructions_update": "PostgreSQL: instructions a single-row update by key",
    }
    if key in titles:
        return titles[key]
    if key.startswith("pg.pgbench_"):
        _, op, clients = key.split("_")
        n = int(clients[1:])
        return f"PostgreSQL: pgbench single-row {op}, {n} client{'s' if n > 1 else ''}"
    return key


def side_by_side(entries, facts, w):
    """One table per workload with peers: plain, syncline and each peer, in each setting."""
    workloads = {}
    for e in entries:
        workloads.setdefault(workload_key(e["name"]), []).append(e)
    for key, group in workloads.items():
        if not any("peers" in e for e in group):
            continue
        unit = group[0]["unit"]
        better = "higher" if unit in HIGHER_IS_BETTER else "lower"
        w(f"### {workload_title(key)}")
        w("")
        w(f"{'TPS' if unit == 'tps' else unit}, {better} is better.")
        w("")
        w("| contender | setting | median | min–max | × plain | syncline ÷ peer |")
        w("|---|---|---:|---:|---:|---:|")
        settings = {}
        for e in group:
            settings.setdefault(setting(e["name"], facts), []).append(e)
        for where, members in settings.items():
            first = members[0]
            rows = [("plain", first["baseline"], first["baseline_spread"], 1.0, None)]
            for e in members:
                label = "syncline"
                if (e["name"].endswith("_notify_off") or e["name"].startswith("pg.logical.pgbench_")
                        or e["name"].startswith("pg.instructions_")):
                    label = "syncline, NOTIFY off"
                elif e["name"].endswith("_notify_on"):
                    label = "syncline, NOTIFY on"
                elif e["name"].startswith("pg.bulk_") or e["name"].startswith("pg.logical.bulk_"):
                    label = "syncline (NOTIFY on)"
                rows.append((label, e["value"], e["spread"], e["ratio"], None))
            for peer, p in first.get("peers", {}).items():
                rows.append((PEERS.get(peer, peer), p["value"], p["spread"], p["ratio"], p["syncline_over_peer"]))
            for label, value, rng, ratio, over in rows:
                w(f"| {label} | {where} | {fmt(value)} | {fmt(rng[0])}–{fmt(rng[1])} "
                  f"| {'—' if ratio is None else f'{ratio:.2f}'} | {'—' if over is None else f'{over:.2f}'} |")
        w("")


def notify_table(by_name, w):
    rows = []
    for op in ("insert", "update"):
        for clients in (1, 4):
            off = by_name.get(f"pg.pgbench_{op}_c{clients}_notify_off")
            on = by_name.get(f"pg.pgbench_{op}_c{clients}_notify_on")
            if off and on:
                rows.append((f"single-row {op}, {clients} client{'s' if clients > 1 else ''}", off, on))
    if not rows:
        return
    w("### NOTIFY on against off")
    w("")
    w("syncline's pgbench TPS with NOTIFY off (`syncline.track(t, '{\"notify\": false}')`) and on (the default), "
      "medians and min–max, interleaved in the same runs.")
    w("")
    w("| workload | NOTIFY off | NOTIFY on | on ÷ off |")
    w("|---|---:|---:|---:|")
    for label, off, on in rows:
        w(f"| {label} | {fmt(off['value'])} ({fmt(off['spread'][0])}–{fmt(off['spread'][1])}) "
          f"| {fmt(on['value'])} ({fmt(on['spread'][0])}–{fmt(on['spread'][1])}) | {on['value'] / off['value']:.2f} |")
    w("")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--results", required=True)
    parser.add_argument("--json", required=True)
    parser.add_argument("--markdown", required=True)
    parser.add_argument("--fact", action="append", default=[])
    args = parser.parse_args()
    facts = dict(f.split("=", 1) for f in args.fact)
    facts["wal_level"] = facts.get("pg_settings", "wal_level=replica").rsplit("wal_level=", 1)[-1]

    entries = []
    with open(args.results) as f:
        for line in f:
            if line.strip():
                entries.append(make_entry(json.loads(line)))
    with open(args.json, "w") as f:
        json.dump(entries, f, indent=2)
        f.write("\n")

    minutes, seconds = divmod(int(facts.get("runtime", "0")), 60)
    out = []
    w = out.append
    w("# Benchmarks")
    w("")
    w("Generated by `make bench` (`tests/pg/with_cluster.sh bench/run.sh`); the raw numbers, every")
    w("run's samples included, are in [bench/results.json](../bench/results.json). Do not edit by hand:")
    w("rerun `make bench`.")
    w("")
    w("## Machine")
    w("")
    w("| | |")
    w("|---|---|")
    for key, label in (("date", "date"), ("nproc", "nproc"), ("cpu", "CPU"), ("memory", "memory"),
                       ("kernel", "kernel"), ("sqlite", "SQLite"), ("postgresql", "PostgreSQL"),
                       ("pg_settings", "PostgreSQL settings (main cluster)"),
                       ("logical_settings", "PostgreSQL settings (logical decoding cluster)"),
                       ("pgq", "PgQ (postgresql-15-pgq3)"), ("wal2json", "wal2json (postgresql-15-wal2json)"),
                       ("gxx", "g++"), ("load", "load average")):
        if key in facts:
            w(f"| {label} | {facts[key]} |")
    w(f"| run time | {minutes} min {seconds} s |")
    w("")
    w(f"N = {int(facts.get('rows', 0)):,} rows; the clone uses {int(facts.get('clone_rows', 0)):,}. "
      f"Fast metrics (SQLite insert, update, delete, storage, pull; PostgreSQL bulk capture and pull) are medians "
      f"of {facts.get('runs')} runs, pgbench of {facts.get('pgbench_runs', facts.get('slow_runs'))} runs of "
      f"{facts.get('pgbench_seconds')} s each, the slow ones (the 1,000-transaction insert, apply, clone) "
      f"of {facts.get('slow_runs')}. Spreads are min–max over the runs.")
    w("")
    w("## Results")
    w("")
    w("`value` is syncline (tracked table, `pull_since`, `apply_push`, `clone`), `baseline` the plain")
    w("equivalent measured in the same run, interleaved with it; both are medians. `ratio` is")
    w("value / baseline: for times and sizes lower is better, for rates higher is better. The")
    w("pgbench targets also ask syncline's median TPS to exceed each trigger-based peer's (PgQ, the")
    w("audit trigger) by more than the larger of the two min–max spreads; the peers themselves are in")
    w("the next section.")
    w("")
    sections = (("sqlite.", "SQLite (N rows, file databases)"), ("pg.bulk_", "PostgreSQL capture, bulk"),
                ("pg.pgbench_", "PostgreSQL capture, pgbench single-row transactions"),
                ("pg.instructions_", "PostgreSQL capture, instructions a single-row statement"),
                ("pg.logical.", "PostgreSQL capture, second cluster with wal_level=logical"),
                ("pg.pull", "PostgreSQL pull"), ("pg.apply", "PostgreSQL apply"), ("e2e.", "End to end: clone"))
    order = {name: i for i, name in enumerate(METRICS)}
    for prefix, title in sections:
        group = sorted((e for e in entries if e["name"].startswith(prefix)),
                       key=lambda e: order.get(e["name"], len(order)))
        if not group:
            continue
        w(f"### {title}")
        w("")
        w("| metric | syncline | baseline | unit | ratio | target | met |")
        w("|---|---:|---:|---|---:|---|---|")
        for e in group:
            unit = "MiB" if e["unit"] == "bytes" else e["unit"]
            met = "—" if e["met"] is None else ("**met**" if e["met"] else "**missed**")
            if e["met"] is False:
                met += " (" + ", ".join(e["missed"]) + ")"
            w(f"| {e['description']} <br>`{e['name']}` | {fmt(e['value'], e['unit'])} "
              f"| {fmt(e['baseline'], e['unit'])} | {unit} | {e['ratio']:.2f} | {e['target'] or '(info)'} | {met} |")
        w("")
    met = [e for e in entries if e["met"] is True]
    missed = [e for e in entries if e["met"] is False]
    w(f"Targets: {len(met)} met, {len(missed)} missed"
      + (": " + ", ".join(f"`{e['name']}`" for e in missed) if missed else "") + ".")
    w("")
    by_name = {e["name"]: e for e in entries}
    small = next((e for n, e in by_name.items() if n.startswith("e2e.clone_") and n.endswith("_peak_rss")
                  and not n.startswith("e2e.clone_1m")), None)
    big = by_name.get("e2e.clone_1m_peak_rss")
    if small and big:
        w(f"Clone memory: peak RSS {small['value']:.1f} MiB at {small['name'].split('_')[1]} rows and "
          f"{big['value']:.1f} MiB at 1m rows ({big['value'] / small['value']:.2f}x the memory for "
          f"{int(facts.get('clone_rows', 0)) / max(1, int(facts.get('rows', 1))):g}x the rows).")
        w("")
    if any("peers" in e for e in entries) or by_name.get("pg.pgbench_insert_c1_notify_on"):
        w("## Capture against its peers")
        w("")
        w("Each workload as plain, syncline and every peer ran it, interleaved in the same runs (their")
        w("order rotating from run to run); how each peer was set up is under The peers, below. `×")
        w("plain` is the median over the median of the plain table measured with it, in the same setting")
        w("(the same cluster, the same SQLite settings); `syncline ÷ peer` is the median of that setting's")
        w("first syncline row (NOTIFY off in pgbench) over the peer's: above 1 syncline is faster in TPS,")
        w("slower in time. The wal2json rows with a consumer do not include the decoding that finishes")
        w("after the timed statement (see The peers).")
        w("")
        side_by_side(entries, facts, w)
        notify_table(by_name, w)
    w(METHOD)
    w(PEERS_METHOD)
    w(PROFILE)
    with open(args.markdown, "w") as f:
        f.write("\n".join(out))


METHOD = """## Method

Every workload runs in full for each sample; syncline's sample, the
baseline's and each peer's take turns (which goes first rotates from run to
run), so load from other processes falls on all alike. The table is always the same 5 columns:
a text UUID key (`uuid` in PostgreSQL), an integer, about 40 characters of
text, a real and a 32-byte blob.

**SQLite** (`bench/sqlite_bench.cc`, mode `sqlite`): file databases in a
temporary directory, `journal_mode=WAL`, `synchronous=NORMAL`, default cache
and temporary storage (the `_tuned` metrics repeat insert, update and delete
with `temp_store=MEMORY` and `cache_size=-32000` in both databases, the
settings docs/sqlite.md recommends for large transactions on tracked tables).
Every sample starts from a new file (the extension loaded in both, the
tracked one `syncline_track`ed while empty), is checkpointed
(`wal_checkpoint(TRUNCATE)`) before each timed step, and times: the insert
(one prepared statement, one transaction), then `UPDATE items SET n = n + 1`,
then `DELETE FROM items WHERE n % 10 = 0`; the file size is taken after the
insert's checkpoint. Insert, update and delete also run against SQLite's
session extension (the peer, below), in the same runs, in turn with plain
and tracked. The 1,000-transaction insert is a separate new file (100 rows
a transaction). Pull reads a tracked file holding N rows:
`syncline_pull_since(cursor, 1000)` until `has_more` is false, against
`json_group_array(json_object(...))` of pages of 1000 rows by key (`id > ?
ORDER BY id LIMIT 1000`; the blob as `hex()`, as SQLite's JSON cannot hold a
blob and SQLite has no base64). Apply feeds those pages to
`syncline_apply_push` in a new, empty tracked file (each call its own
transaction), against a prepared `INSERT ... ON CONFLICT(id) DO UPDATE` of
the same rows, one transaction per 1000. Timing is `std::chrono::steady_clock`
around each whole workload, not Google Benchmark: every sample needs its own
new file and schema outside the timed region and pairs with a baseline
sample, which Google Benchmark's iteration model does not fit.

**PostgreSQL capture** (`bench/pg_workloads.sh`, psql `\\timing`): for
every sample a new table with the contender's capture attached (nothing for
plain; `syncline.track`, which keeps NOTIFY on; a PgQ or audit trigger) and
the contender's log emptied (`untrack` for syncline, `TRUNCATE` of PgQ's
current event table or of the audit log), `VACUUM ANALYZE` of the table and
its log and `CHECKPOINT` before each timed statement; `INSERT INTO t SELECT
... FROM generate_series(1, N)`, then `UPDATE t SET n = n + 1`. pgbench
(`-n -c C -j C -T seconds`, a `CHECKPOINT` before each run): the insert
script inserts one new row with `gen_random_uuid()`; the update script
updates one random row of N by key. Each contender has its own two tables:
plain, tracked with `{"notify": false}`, tracked with NOTIFY on, PgQ, audit
(and, in the logical decoding cluster, plain, tracked with `{"notify":
false}`, slot, slot with a consumer); logs are not emptied between pgbench
runs, for any contender. The contenders' order rotates from run to run.

**PostgreSQL capture in instructions** (`bench/instructions.sh`): timings on a
shared machine vary run to run by more than the differences between the
contenders; instruction counts do not. A single-user backend (`postgres
--single`: no client, no network, each statement its own transaction) runs
the pgbench statements, single-row inserts, then single-row updates by key
of a table of N rows, under `valgrind --tool=callgrind`, per contender, each
run on a fresh copy of one data directory: 100 statements, then 100 + 1,000,
and the difference over 1,000 (the first statements fill caches and build
plans). syncline runs with NOTIFY off. The counts include
everything the backend does for a statement: parse, plan, execute, the
capture, commit.

**PostgreSQL pull and apply** (`bench/sqlite_bench.cc`, mode `pg`, libpq over
the Unix socket, results read as text by the client): `syncline.pull_since(cursor,
1000)::text` until `has_more` is false over a tracked table of N rows,
against `jsonb_agg(to_jsonb(p))::text` of pages of 1000 by key. Apply sends
the pages pulled from a SQLite file holding the same rows to
`syncline.apply_push($1::text)` (one statement, so one transaction, each)
into an empty tracked table (untracked, dropped and recreated, then
`VACUUM`/`CHECKPOINT`, before each sample), against a prepared `INSERT ...
VALUES (1000 rows) ON CONFLICT (id) DO UPDATE` with text parameters, into a
truncated plain table.

**End to end**: `build/bin/syncline clone -q` of a tracked server table into a
new file, under `/usr/bin/time` (wall time, peak RSS), against
`psql -c "\\copy (SELECT id, n, s, r, b FROM items) TO file"` (text format)
followed by `sqlite_bench load-copy`, a small C++ loader that decodes the
COPY text (bytea hex into blobs) into a plain SQLite table with one prepared
statement in one transaction (WAL, `synchronous=NORMAL`). The baseline's time
is the sum of both steps, its RSS the larger of the two processes. Row counts
are checked after every sample.

**The PostgreSQL clusters** are `tests/pg/with_cluster.sh`'s throwaway
clusters, which run with `fsync=off`: commits are cheap, which magnifies
per-row costs in the TPS ratios. Client and server share the machine's
cores. The main cluster keeps the default `wal_level=replica`; the logical
decoding peer runs in a second one (below).
"""

PEERS_METHOD = """## The peers

What else records changes for someone to ship, set up as their documentation
says, on the same table and workloads, interleaved with plain and syncline.

| contenders | where | WAL setting |
|---|---|---|
| plain, syncline, PgQ, audit trigger | main cluster | `wal_level=replica` (the default) |
| plain, syncline (again), wal2json slot, wal2json slot + consumer | second cluster | `wal_level=logical` |
| SQLite: plain, syncline, session extension | file databases | `journal_mode=WAL`, `synchronous=NORMAL` |

**PgQ** (Debian `postgresql-15-pgq3`): `CREATE EXTENSION pgq; SELECT
pgq.create_queue('q');` and on the table `CREATE TRIGGER ... AFTER INSERT OR
UPDATE OR DELETE ... FOR EACH ROW EXECUTE FUNCTION pgq.logutriga('q')`, which
encodes the row (URL-encoded) into the queue's current event table. No
`pgqd` runs, so the event tables do not rotate during the bench, and no
consumer is registered: this is the cost of capture alone.

**The audit trigger** is what users write by hand, in PL/pgSQL:

```sql
CREATE TABLE audit_log (id bigserial PRIMARY KEY, table_name text NOT NULL, op text NOT NULL,
                        row_data jsonb NOT NULL, changed_at timestamptz NOT NULL DEFAULT now());
CREATE FUNCTION audit_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO audit_log (table_name, op, row_data) VALUES (TG_TABLE_NAME, TG_OP, to_jsonb(OLD));
  ELSE
    INSERT INTO audit_log (table_name, op, row_data) VALUES (TG_TABLE_NAME, TG_OP, to_jsonb(NEW));
  END IF;
  RETURN NULL;
END $$;
-- AFTER INSERT OR UPDATE OR DELETE ... FOR EACH ROW EXECUTE FUNCTION audit_row()
```

**Logical decoding with wal2json** (Debian `postgresql-15-wal2json`) needs
`wal_level=logical`, which writes more WAL for every table, so it runs in a
second throwaway cluster (`bench/logical.sh` inside another
`tests/pg/with_cluster.sh`, switched to `wal_level=logical` by `ALTER
SYSTEM` and a restart; this PostgreSQL build also needs wal2json named in
`output_plugin_libraries`). Plain and syncline (NOTIFY off in pgbench, on in
the bulk workloads) are measured again there, interleaved with the peer, and
the peer's ratios are to that cluster's plain; syncline ÷ peer compares with
the syncline of that cluster. Two contenders: **slot, no consumer**
(`pg_create_logical_replication_slot('bench', 'wal2json')` before the
sample, dropped after it, nothing reading it: the cost of the setting and of
a slot retaining WAL) and **slot + `pg_recvlogical`** (`pg_recvlogical
--start -o format-version=2 -F 0 -s 1 -f /dev/null` on the same slot, running
throughout the sample). Decoding happens in the WAL sender while the
workload runs and competes with it for the same cores, which is what the
consumer rows measure; it is not in the client's critical path (a bulk
statement's changes are decoded once it commits), so after each timed step
the bench waits, untimed, until the consumer has confirmed all WAL written,
so that one step's decoding does not fall into the next step's time.

**SQLite's session extension** (`sqlite3session_*`, in Debian's libsqlite3,
built with `SQLITE_ENABLE_SESSION` and `SQLITE_ENABLE_PREUPDATE_HOOK`) is the
floor for a recorder without triggers: the preupdate hook feeds an in-memory
hash of the changed rows' keys and old values. For each timed step
(insert, update, delete) a new session is attached to `items` (untimed), and
the step's time includes `sqlite3session_changeset` producing the changeset
of the step's changes, as a sync layer must; the number of changes in it is
checked afterwards.
"""

PROFILE = """## Where the time goes

### SQLite (callgrind)

`bench/profile.sh [ROWS]` runs the SQLite workloads once, plain and tracked,
under `valgrind --tool=callgrind` and prints instructions per phase and the
hottest functions; it is not part of `make bench` and its figures are not
regenerated here. 5,000 rows, at commit 7080141 (before) and after this
round's work (compact UUID metadata keys, the streaming batch reader):

| phase | tracked, instructions/row | before | plain (baseline) | ratio |
|---|---:|---:|---:|---:|
| insert, one transaction | 31,184 | 32,760 | 10,581 | 2.95 |
| update one column | 28,038 | 29,152 | 2,073 | 13.52 |
| delete | 3,462 | 3,704 | 915 | 3.78 |
| pull (vs `json_group_array` pages) | 26,749 | 33,579 | 13,924 | 1.92 |
| apply (vs prepared upsert) | 56,237 | 99,248 | 10,826 | 5.19 |

- **Tracked insert and update** are close to what SQL triggers allow: an
  empty trigger alone costs about 4,300 instructions a row (the trigger
  program's frame and the statement journal), inserting the metadata row
  about 11,000 more; an update moves the metadata row to its new version
  (6,000 to 13,000 instructions in every layout measured: `WITHOUT ROWID`
  keyed by row, a stable rowid with a version index; docs/sqlite.md). The
  wall-time ratios are higher than the instruction ratios because the
  tracked file is larger and, in one big transaction, spills statement
  journals to a temporary file (the `_tuned` rows above).
- **apply_push**: the upsert into the user's table 29 % (17,600 a row: the
  capture triggers' programs start even though their `WHEN` is false), the
  metadata upsert 23 %, its lookup 9 %, decoding the batch 20 % (RapidJSON's
  SAX reader in situ, straight into the `Batch`).
- **pull_since**: writing the batch about a third, the per-row `SELECT` by
  primary key, decoding keys 4 %.

### PostgreSQL (perf)

`perf record` of the backend, 50,000 rows (not part of `make bench`):

- **Capture** is one trigger per statement with transition tables, writing
  metadata 1,000 rows per plan execution (it was a row trigger with one
  execution per row: 25 % less backend CPU for a bulk insert). What remains
  is the metadata row itself: a second heap row and its primary key index
  (the `ON CONFLICT` probe 15 %, index inserts 24 % of the backend), and
  its version index. Rows of unscoped tables are in one version index, not
  two.
- **pull_since** returns the batch as text (no `jsonb_in`, which was a
  third of the time) and reads a page's rows a table at a time (keys in as
  arrays, one primary key probe each); a page's node ids come in one lookup
  (a join rescanned `syncline.nodes`, a file seek each, for every row). What
  remains is mostly those probes (`_bt_first`/`_bt_compare`, about 40 % of
  the backend), planning the page's statements anew on every call (6 %),
  and the values' output functions and the batch writer (about 10 %).
- **apply_push** (the merge in `core/merge`, the writes in sets): per batch
  of 1,000 one-table changes, one primary key probe per row for the
  metadata, one `INSERT ... SELECT FROM unnest(...) ON CONFLICT DO UPDATE
  ... RETURNING` for the user's rows (in a subtransaction), one plain
  `INSERT` of the new metadata. The backend spends about 78 % in those
  statements' executors: two heap rows and five index entries per change
  (the user's row and its key; the metadata row, its key and its version
  index), against one heap row and one index entry for the baseline's
  upsert; C++ (decoding, converting values, the merge) is about 10 %. That
  is the floor of this metadata layout: a change costs at least two rows.
- **SQLite apply_push** (callgrind, 20,000 rows in pages of 1,000, about
  60,000 instructions a row): the upsert into the user's table 36 % (the
  capture triggers' programs start for every row, and their `WHEN` asks
  whether the row is the one being applied), the metadata upsert 20 %,
  decoding the batch 20 %, the metadata lookup 11 %.
- **Clone**: the client requests the next page while it applies the current
  one and commits pages together (per-page commits wrote the file about a
  hundred times over); it is bound by the client's `apply_push` (about 15 µs
  of CPU a row) and the statement journal of each apply's savepoint.
"""

if __name__ == "__main__":
    main()
