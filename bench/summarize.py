#!/usr/bin/env python3
"""Turns a bench/run.sh results file into Markdown tables of medians.

    python3 bench/summarize.py bench/results/<date>.jsonl

Each input line is {"label": ..., "rep": N, "report": <a client's JSON line>}.
Runs with the same label are one measurement repeated; within a repetition,
the ws-machine and tokio-websockets runs of a label form a pair, and ratios
and differences are taken per pair before the median, so that drift between
repetitions cancels out. Standard library only.
"""

import json
import sys
from collections import defaultdict
from statistics import median

MACHINE = "ws-machine"
RAW = "tokio-websockets"


def load(path):
    """The runs by label, in file order: {label: [(rep, report), ...]}."""
    runs = defaultdict(list)
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            line = line.strip()
            if not line:
                continue
            try:
                entry = json.loads(line)
                runs[entry["label"]].append((entry["rep"], entry["report"]))
            except (ValueError, KeyError) as error:
                sys.exit(f"{path}:{number}: not a results line ({error})")
    return runs


def values(runs, client, key):
    """The non-null values of `key` in the runs of `client`."""
    return [r[key] for _, r in runs if r["client"] == client and r.get(key) is not None]


def med(numbers):
    return median(numbers) if numbers else None


def paired(runs, key, combine):
    """`combine(machine, raw)` of `key` for every repetition that has both."""
    by_rep = defaultdict(dict)
    for rep, report in runs:
        if report.get(key) is not None:
            by_rep[rep][report["client"]] = report[key]
    return [
        combine(pair[MACHINE], pair[RAW])
        for pair in by_rep.values()
        if MACHINE in pair and RAW in pair and (combine is not ratio or pair[RAW])
    ]


def ratio(machine, raw):
    return machine / raw


def difference(machine, raw):
    return machine - raw


def fmt(number, decimals=1, thousands=False):
    if number is None:
        return "—"
    if thousands:
        return f"{number:,.{decimals}f}"
    return f"{number:.{decimals}f}"


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(out)


def scenario_of(runs):
    return runs[0][1]["scenario"]


def throughput(labels, runs):
    rows = []
    for label in labels:
        r = runs[label]
        rows.append([
            label.removeprefix("throughput "),
            fmt(med(values(r, MACHINE, "msgs_per_sec")), 0, True),
            fmt(med(values(r, RAW, "msgs_per_sec")), 0, True),
            fmt(med(values(r, MACHINE, "mib_per_sec")), 1, True),
            fmt(med(values(r, RAW, "mib_per_sec")), 1, True),
            fmt(med(paired(r, "msgs_per_sec", ratio)), 3),
        ])
    return "### Throughput\n\n" + table(
        ["messages", "ws-machine msg/s", "tokio-websockets msg/s",
         "ws-machine MiB/s", "tokio-websockets MiB/s", "ratio (machine / raw)"],
        rows,
    )


def latency(labels, runs):
    rows = []
    for label in labels:
        r = runs[label]
        rows.append([
            label.removeprefix("latency "),
            fmt(med(values(r, MACHINE, "p50_us"))),
            fmt(med(values(r, RAW, "p50_us"))),
            fmt(med(values(r, MACHINE, "p99_us"))),
            fmt(med(values(r, RAW, "p99_us"))),
            fmt(med(paired(r, "p50_us", difference))),
        ])
    return "### Latency (round trip, µs)\n\n" + table(
        ["rounds", "ws-machine p50", "tokio-websockets p50", "ws-machine p99",
         "tokio-websockets p99", "p50 difference (machine − raw)"],
        rows,
    )


def idle(labels, runs):
    rows = []
    for label in sorted(labels, key=lambda l: int(l.split()[-1])):
        r = runs[label]
        rows.append([
            fmt(float(label.split()[-1]), 0, True),
            fmt(med(values(r, MACHINE, "kib_per_conn")), 2),
            fmt(med(values(r, RAW, "kib_per_conn")), 2),
            fmt(med(paired(r, "kib_per_conn", difference)), 2),
            fmt(med(values(r, MACHINE, "connect_secs")), 3),
            fmt(med(values(r, RAW, "connect_secs")), 3),
        ])
    return "### Idle connections\n\n" + table(
        ["connections", "ws-machine KiB/conn", "tokio-websockets KiB/conn",
         "difference KiB/conn", "ws-machine connect s", "tokio-websockets connect s"],
        rows,
    )


def churn(labels, runs):
    rows = []
    for label in labels:
        r = runs[label]
        messages = med(values(r, MACHINE, "messages"))
        rows.append([
            label.removeprefix("churn "),
            fmt(messages, 0, True),
            fmt(med(values(r, MACHINE, "received")), 0, True),
            fmt(med(values(r, MACHINE, "lost")), 0, True),
            fmt(med(values(r, MACHINE, "reconnects")), 0),
            fmt(med(values(r, MACHINE, "mean_reconnect_ms"))),
            fmt(med(values(r, MACHINE, "secs")), 2),
        ])
    return "### Churn (ws-machine; the server closes every connection after K messages)\n\n" + table(
        ["variant", "messages", "received", "lost", "reconnects",
         "mean reconnect ms", "secs"],
        rows,
    )


def deadpeer(labels, runs):
    rows = []
    for label in labels:
        r = runs[label]
        detected = values(r, MACHINE, "detect_ms")
        total = sum(1 for _, report in r if report["client"] == MACHINE)
        rows.append([
            label.removeprefix("deadpeer "),
            fmt(med(detected)),
            fmt(min(detected) if detected else None),
            fmt(max(detected) if detected else None),
            f"{len(detected)}/{total}",
        ])
    return "### Dead peer (ws-machine; the server freezes with TCP open)\n\n" + table(
        ["keep-alive", "detect ms (median)", "min", "max", "detected"],
        rows,
    )


SECTIONS = [
    ("throughput", throughput),
    ("latency", latency),
    ("idle", idle),
    ("churn", churn),
    ("deadpeer", deadpeer),
]


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: summarize.py RESULTS.jsonl")
    runs = load(sys.argv[1])
    if not runs:
        sys.exit(f"{sys.argv[1]}: no results")
    by_scenario = defaultdict(list)
    for label, label_runs in runs.items():
        by_scenario[scenario_of(label_runs)].append(label)
    parts = [render(labels, runs) for name, render in SECTIONS
             if (labels := by_scenario.get(name))]
    print("\n\n".join(parts))


if __name__ == "__main__":
    main()
