#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets (tests/fuzz/corpus/).

The seeds are committed; this script documents them and regenerates them
after a change of the fuzzed schema (apply_fuzz.cc). Batches name the tables,
node ids and stamps of apply_fuzz.cc's base image:

  local node   11111111-1111-4111-8111-111111111111 (its own rows, stamps of
               2023-12-31T23:50Z + version)
  local rows   notes n1 n2, cells 1/1/1 1/1/2 1/2/2, users 1 2, readings r1 r2,
               tags n1/red n2/blue, kv 1 '1' x'01' 2.5
  remote R1    22222222-2222-4222-8222-222222222222 (n3, users 3, cells 1/2/1,
               tags n3/green, a tombstone for notes "gone"; stamps
               018cc248d0280000 + i; its cursor is at position 5)
  remote R2    33333333-3333-4333-8333-333333333333 (unknown to the image)
  wall clock   2024-01-01T00:00:00Z (018cc251f4000000)

Usage: tests/fuzz/make_corpus.py   (from the repository root)
"""
import json
import os
import shutil

LOCAL = "11111111-1111-4111-8111-111111111111"
R1 = "22222222-2222-4222-8222-222222222222"
R2 = "33333333-3333-4333-8333-333333333333"
FILTER = "0123456789abcdef"


def stamp(ms_from_wall, logical=0):
    return format(((1704067200000 + ms_from_wall) << 16) + logical, "016x")


NEW = stamp(-60000)  # newer than anything in the image
OLD = stamp(-86400000)  # older than anything in the image
AHEAD = stamp(60000)  # ahead of the wall clock, within the drift bound
FAR = stamp(600000)  # past the drift bound (5 minutes)
R1_BASE = "018cc248d0280000"  # the stamp of R1's n3


def up(table, pk, row, hlc=NEW, node=R2, clock=1):
    return {"table": table, "op": "upsert", "pk": pk, "row": row, "clock": clock, "hlc": hlc, "node": node}


def rm(table, pk, hlc=NEW, node=R2, clock=2):
    return {"table": table, "op": "delete", "pk": pk, "clock": clock, "hlc": hlc, "node": node}


def note(id_, title="t", hlc=NEW, node=R2, org=1, body="b"):
    return up("notes", {"id": id_}, {"id": id_, "org_id": org, "title": title, "body": body}, hlc, node)


def user(id_, email, name="N", score=1.5, hlc=NEW, node=R2):
    return up("users", {"id": id_}, {"id": id_, "email": email, "name": name, "score": score}, hlc, node)


def cell(sheet, r, c, v, hlc=NEW, node=R2):
    return up("cells", {"sheet": sheet, "r": r, "c": c}, {"sheet": sheet, "r": r, "c": c, "v": v}, hlc, node)


def reading(id_, at, value=None, raw=None, extra=None, hlc=NEW, node=R2):
    return up("readings", {"id": id_}, {"id": id_, "at": at, "value": value, "raw": raw, "extra": extra}, hlc, node)


def tag(note_id, name, hlc=NEW, node=R2):
    return up("tags", {"note_id": note_id, "tag": name}, {"note_id": note_id, "tag": name}, hlc, node)


def kv(k, v, hlc=NEW, node=R2):
    return up("kv", {"k": k}, {"k": k, "v": v}, hlc, node)


def batch(changes, source=R2, cursor=None, has_more=None):
    out = {"format": 1, "source": source}
    if cursor is not None:
        out["cursor"] = cursor
    if has_more is not None:
        out["has_more"] = has_more
    out["changes"] = changes
    return json.dumps(out, separators=(",", ":"))


def inc(hlc, n):
    return format(int(hlc, 16) + n, "016x")


# Accepted batches: upserts, deletes, conflicts both ways, tagged values.
VALID = {
    "notes_upsert": batch([note("n1", "newer"), note("n4", "new row")]),
    "notes_older_skipped": batch([note("n1", "older", hlc=OLD), note("gone", "resurrect?", hlc=OLD)]),
    "notes_delete_with_children": batch([rm("tags", {"note_id": "n2", "tag": "blue"}), rm("notes", {"id": "n2"}, hlc=inc(NEW, 1))]),
    "notes_tombstone_unknown_row": batch([rm("notes", {"id": "never-seen"})]),
    "notes_same_row_thrice": batch([note("n6", "a"), rm("notes", {"id": "n6"}, hlc=inc(NEW, 1)), note("n6", "c", hlc=inc(NEW, 2))]),
    "notes_older_in_batch": batch([note("n7", "newest", hlc=inc(NEW, 5)), note("n7", "older", hlc=inc(NEW, 1))]),
    "notes_unicode_and_escapes": batch([note("ключ", "tab\there \"quoted\" \\ \u00e9\u20ac\U0001F600", body="line\nbreak\u0001")]),
    "notes_relay_far_ahead": batch([note("n8", "relayed", hlc=FAR, node=R1)]),
    "notes_ahead_within_bound": batch([note("n9", "ahead", hlc=AHEAD)]),
    "remote_replayed": batch([note("n3", "remote", hlc=R1_BASE, node=R1, org=3)], source=R1),
    "cells_values": batch([
        cell(2, 1, 1, 3.25), cell(2, 1, 2, {"real": "Infinity"}), cell(2, 1, 3, {"real": "-0.0"}),
        cell(2, 1, 4, {"blob": "AAEC/w=="}), cell(2, 1, 5, 9223372036854775807), cell(2, 1, 6, -9223372036854775808),
        cell(2, 1, 7, None), cell(2, 1, 8, {"real": "1.0e+300"}), cell(2, 1, 9, "text"), cell(2, 1, 10, True),
    ]),
    "cells_overwrite_and_delete": batch([cell(1, 1, 1, "b"), rm("cells", {"sheet": 1, "r": 1, "c": 2}), rm("cells", {"c": 2, "r": 2, "sheet": 1})]),
    "cells_real_key": batch([cell(3, 1.5, 1, 1)]),
    "users_update_and_insert": batch([user(1, "ann@example.com", "Ann", 2.5), user(4, "dee@example.com", "Dee", None)]),
    "users_swap_email": batch([user(1, "tmp@example.com"), user(2, "ann@example.com", hlc=inc(NEW, 1))]),
    "users_integer_score": batch([user(4, "eve@example.com", "Eve", 7)]),
    "readings_strict": batch([reading("r3", 5, {"real": "-Infinity"}, {"blob": ""}, 1.5), reading("r1", 1, 0.25, None, "t")]),
    "readings_delete": batch([rm("readings", {"id": "r2"})]),
    "tags_new": batch([tag("n1", "green"), tag("n3", "red")]),
    "cursor_advances": batch([note("n1", "x")], source=R1, cursor=f"{R1}:{FILTER}:7", has_more=True),
    "cursor_older_page": batch([], source=R1, cursor=f"{R1}:{FILTER}:3"),
    "cursor_new_peer": batch([tag("n3", "x")], cursor=f"{R2}:fedcba9876543210:1.2", has_more=False),
    "users_delete_real_key": batch([rm("users", {"id": 2.5}, hlc=OLD)]),
    "cells_tagged_real_key": batch([cell(1, {"real": "2.5"}, 1, "x"), rm("cells", {"sheet": 1, "r": 2, "c": 2})]),
    "kv_types": batch([kv(3, "three"), kv("3", 3.5), kv({"blob": "Aw=="}, None), kv(3.25, "12"), kv(None, 1)]),
    "kv_overwrite_and_delete": batch([kv(1, "uno"), rm("kv", {"k": "1"}), kv({"blob": "AQ=="}, {"blob": "AQ=="})]),
    "empty": batch([]),
    "uppercase_ids": batch([note("n10", hlc=NEW.upper(), node=R2.upper())], source=R2.upper()),
}

# Rejected batches: each must leave the database as it was.
INVALID = {
    "corrupt_same_stamp": batch([note("n3", "different", hlc=R1_BASE, node=R1)], source=R1),
    "copied_database": batch([note("n1", "mine?", node=LOCAL)]),
    "drift": batch([note("n1", "future", hlc=FAR)]),
    "clock_then_error": batch([note("n11", "ahead", hlc=AHEAD), up("untracked", {"id": 1}, {"id": 1, "x": 1})]),
    "fk_deferred": batch([rm("notes", {"id": "n2"})]),
    "fk_missing_parent": batch([tag("nobody", "x")]),
    "unique_conflict": batch([user(5, "ann@example.com")]),
    "not_null": batch([user(6, "fay@example.com", None)]),
    "strict_type": batch([reading("r4", "noon")]),
    "nan": batch([cell(2, 2, 2, {"real": "NaN"})]),
    "integer_gets_text": batch([note("n12", org="one")]),
    "text_key_gets_integer": batch([up("notes", {"id": 5}, {"id": 5, "org_id": 1, "title": "t", "body": "b"})]),
    "wrong_key_column": batch([up("notes", {"title": "t"}, {"id": "x", "org_id": 1, "title": "t", "body": "b"})]),
    "partial_key": batch([up("cells", {"sheet": 1, "r": 1}, {"sheet": 1, "r": 1, "c": 1, "v": 1})]),
    "row_lacks_column": batch([up("notes", {"id": "n13"}, {"id": "n13", "title": "t"})]),
    "unknown_column": batch([up("notes", {"id": "n13"}, {"id": "n13", "org_id": 1, "title": "t", "body": "b", "x": 1})]),
    "untracked_table": batch([up("untracked", {"id": 2}, {"id": 2, "x": 1})]),
    "metadata_table": batch([up("syncline_rows", {"version": 1}, {"version": 1})]),
    "no_such_table": batch([up("nope", {"id": 1}, {"id": 1})]),
    "good_then_bad": batch([note("n14", "ok"), cell(2, 2, 3, {"blob": "AA="})]),
    "cursor_other_node": batch([], source=R2, cursor=f"{R1}:{FILTER}:9"),
}

RAW_INVALID = {
    "format_2": '{"format":2,"source":"%s","changes":[]}' % R2,
    "duplicate_key": '{"format":1,"format":1,"source":"%s","changes":[]}' % R2,
    "truncated": batch([note("n1")])[:-7],
    "lone_surrogate": '{"format":1,"source":"%s","changes":[{"table":"notes\\udc00"}]}' % R2,
    "integer_overflow": batch([cell(2, 2, 2, 1)]).replace('"v":1', '"v":9223372036854775808'),
    "deep": "[" * 70 + "]" * 70,
}

OTHER_DECODE = {
    "options_local": '{"origin":"local"}',
    "options_exclude": '{"exclude_origin":"%s"}' % R1.upper(),
    "options_scope": '{"scope":{"blob":"AAE="},"origin":"local"}',
    "options_scope_real": '{"scope":1.5e3}',
    "cursor": f"{R1}:{FILTER}:5",
    "cursor_pair": f"{R1}:{FILTER}:1.2.10\n{R2}:{FILTER}:1.10.2",
    "key_text": '["n1"]',
    "key_mixed": '[7,{"blob":"AAE="},1.5,{"real":"NaN"},null,true,"x"]',
    "hlc": "018CC251F4000000",
    "node": R2.upper(),
    "base64": "AAECAw==",
}


def write(directory, name, text):
    with open(os.path.join(directory, name), "w", encoding="utf-8", newline="") as f:
        f.write(text)


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    for sub in ("decode", "apply"):
        shutil.rmtree(os.path.join(root, sub), ignore_errors=True)
        os.makedirs(os.path.join(root, sub))
    for prefix, seeds in (("valid_", VALID), ("invalid_", INVALID), ("invalid_", RAW_INVALID)):
        for name, text in seeds.items():
            write(os.path.join(root, "apply"), prefix + name + ".json", text)
            write(os.path.join(root, "decode"), prefix + name + ".json", text)
    for name, text in OTHER_DECODE.items():
        write(os.path.join(root, "decode"), name + ".txt", text)


if __name__ == "__main__":
    main()
