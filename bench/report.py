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

from report_text import METHOD, PEERS_METHOD, PROFILE

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
    "sqlite.column_merge_update": ("UPDATE of one column of every row, a column-merge table vs the same table "
                                   "in row mode (time)", ("ratio", "<=", 1.3)),
    "sqlite.column_merge_metadata": ("metadata per row after that update, column merge vs row mode "
                                     "(dbstat, after VACUUM)", ("ratio", "<=", 1.2)),
    "pg.column_merge_update": ("UPDATE of one column of every row, a column-merge table vs the same table "
                               "in row mode (time)", ("ratio", "<=", 1.3)),
    "pg.column_merge_metadata": ("metadata per row after that update, column merge vs row mode "
                                 "(`pg_column_size` of its `syncline.rows` row)", ("ratio", "<=", 1.2)),
    "wasm.insert_1_txn": ("insert N rows, one `INSERT ... SELECT` (time)", None),
    "wasm.update_all": ("update one column of every row (time)", None),
    "wasm.pull": ("`pullSince` pages of 1000 from JavaScript, vs `json_group_array` pages by key", None),
    "wasm.apply": ("`applyPush` of those pages into an empty tracked database, vs an upsert from `json_each` "
                   "of each page", None),
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
# Metadata after deleting 90 % of N rows (bench/sqlite_gc.cc, bench/gc.sh):
# (engine, how the files were compacted, before or after GC) by name.
GC_METRICS = {
    "gc.sqlite_before": ("SQLite", "in place (dbstat: b-tree pages)", "before"),
    "gc.sqlite_after": ("SQLite", "in place (dbstat: b-tree pages)", "after"),
    "gc.sqlite_before_compacted": ("SQLite", "`VACUUM` (compacted)", "before"),
    "gc.sqlite_after_compacted": ("SQLite", "`VACUUM` (compacted)", "after"),
    "gc.pg_before": ("PostgreSQL", "`VACUUM`", "before"),
    "gc.pg_after": ("PostgreSQL", "`VACUUM`", "after"),
    "gc.pg_before_compacted": ("PostgreSQL", "`VACUUM FULL` (compacted)", "before"),
    "gc.pg_after_compacted": ("PostgreSQL", "`VACUUM FULL` (compacted)", "after"),
}
for gc_name, (engine, compaction, when) in GC_METRICS.items():
    METRICS[gc_name] = (f"{engine}: metadata bytes per live row {when} garbage collection, {compaction}; "
                        "baseline: the table's own bytes per live row", None)
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
    if "detail" in raw:
        entry["detail"] = raw["detail"]
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


def gc_table(entries, w):
    """Metadata per live row after deleting 90 % of the rows, before and after GC, both engines."""
    by_name = {e["name"]: e for e in entries}
    if not any(name in by_name for name in GC_METRICS):
        return
    w("Bytes per live row after inserting N rows into a tracked table and deleting 90 % of them, before and "
      "after garbage collection (`syncline_gc` through the highest version; `syncline.gc` with `min_age` and "
      "`device_window` 0), which collected every tombstone. Metadata: every b-tree of the `syncline_*` tables "
      "(SQLite), `pg_total_relation_size('syncline.rows')` (PostgreSQL); table: the tracked table with its primary "
      "key. Sizes are deterministic: one run each (see Method).")
    w("")
    w("| engine | measured after | GC | metadata / live row | table / live row | metadata ÷ table "
      "| metadata | metadata rows | tombstones |")
    w("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for name, (engine, compaction, when) in GC_METRICS.items():
        e = by_name.get(name)
        if not e:
            continue
        d = e.get("detail", {})
        gc = f"after (collected {d['collected']:,})" if "collected" in d else when
        w(f"| {engine} | {compaction} | {gc} | {e['value']:,.0f} B | {e['baseline']:,.0f} B | {e['ratio']:.2f} "
          f"| {fmt(d.get('metadata_bytes', 0), 'bytes')} | {d.get('metadata_rows', 0):,} | {d.get('tombstones', 0):,} |")
    w("")
    shrink = []
    for engine, key in (("SQLite", "sqlite"), ("PostgreSQL", "pg")):
        for suffix, how in (("", "in place"), ("_compacted", "compacted")):
            before, after = by_name.get(f"gc.{key}_before{suffix}"), by_name.get(f"gc.{key}_after{suffix}")
            if before and after and after["value"]:
                shrink.append(f"{engine} {how} {before['value'] / after['value']:.1f}x")
    if shrink:
        w("Garbage collection divides the metadata per live row by: " + ", ".join(shrink) + ".")
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
      f"of {facts.get('slow_runs')}. Spreads are min–max over the runs. Sizes after garbage collection are "
      f"deterministic and measured once.")
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
    sections = (("sqlite.", "SQLite (N rows, file databases)"),
                ("wasm.", "SQLite as WebAssembly (N rows, `web/sqlite` in Node, databases in memory)"), ("pg.bulk_", "PostgreSQL capture, bulk"),
                ("pg.pgbench_", "PostgreSQL capture, pgbench single-row transactions"),
                ("pg.instructions_", "PostgreSQL capture, instructions a single-row statement"),
                ("pg.logical.", "PostgreSQL capture, second cluster with wal_level=logical"),
                ("pg.column_", "PostgreSQL column merge (baseline: the same table in row mode)"),
                ("pg.pull", "PostgreSQL pull"), ("pg.apply", "PostgreSQL apply"), ("e2e.", "End to end: clone"),
                ("gc.", "Metadata per live row, before and after garbage collection"))
    order = {name: i for i, name in enumerate(METRICS)}
    for prefix, title in sections:
        group = sorted((e for e in entries if e["name"].startswith(prefix)),
                       key=lambda e: order.get(e["name"], len(order)))
        if not group:
            continue
        w(f"### {title}")
        w("")
        if prefix == "gc.":
            gc_table(group, w)
            continue
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


if __name__ == "__main__":
    main()
