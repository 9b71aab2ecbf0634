#!/usr/bin/env python3
"""Prints the last criterion run of some groups as Markdown tables, each row with its ratio to
the group's first row (the floor or the bare service).

    python3 bench/criterion-table.py verify layer decode

Each argument is a group-name prefix (`verify` matches `verify/1 KiB`, ...). Reads
target/criterion/<group>/<row>/new/estimates.json and benchmark.json; rows keep the order in
which the bench ran them (the modification time of their estimates).
"""

import json
import os
import sys

ROOT = os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "criterion")


def fmt_ns(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.3f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.3f} µs"
    return f"{ns:.1f} ns"


def rows(group_dir):
    out = []
    for entry in os.listdir(group_dir):
        estimates = os.path.join(group_dir, entry, "new", "estimates.json")
        meta = os.path.join(group_dir, entry, "new", "benchmark.json")
        if not os.path.exists(estimates):
            continue
        with open(estimates) as f:
            est = json.load(f)
        with open(meta) as f:
            name = json.load(f)["function_id"]
        median = est["median"]["point_estimate"]
        low = est["median"]["confidence_interval"]["lower_bound"]
        high = est["median"]["confidence_interval"]["upper_bound"]
        out.append((os.path.getmtime(estimates), name, median, low, high))
    out.sort()
    return out


def main(prefixes):
    groups = []
    for group in sorted(os.listdir(ROOT)):
        path = os.path.join(ROOT, group)
        if not os.path.isdir(path) or group == "report":
            continue
        with_meta = [
            d for d in os.listdir(path) if os.path.exists(os.path.join(path, d, "new", "benchmark.json"))
        ]
        if not with_meta:
            continue
        with open(os.path.join(path, with_meta[0], "new", "benchmark.json")) as f:
            title = json.load(f)["group_id"]
        if any(title.startswith(p) for p in prefixes):
            groups.append((title, path))
    for title, path in groups:
        found = rows(path)
        if not found:
            continue
        first = found[0][2]
        print(f"\n**{title}**\n")
        print("| row | median | 95% CI of the median | ratio to first row | difference |")
        print("|---|---:|---:|---:|---:|")
        for _, name, median, low, high in found:
            print(
                f"| {name} | {fmt_ns(median)} | {fmt_ns(low)} – {fmt_ns(high)} "
                f"| {median / first:.2f}x | {'+' if median >= first else '−'}{fmt_ns(abs(median - first))} |"
            )


if __name__ == "__main__":
    main(sys.argv[1:] or ["verify", "layer", "decode"])
