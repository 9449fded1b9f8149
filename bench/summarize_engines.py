#!/usr/bin/env python3
"""Tables of bench/engines.sh: medians per client, and ratios measured
within each repetition (then the median of those ratios).

    bench/summarize_engines.py RESULTS.jsonl
"""

import json
import statistics
import sys
from collections import defaultdict

ORDER = ["machine-tws", "machine-yawc", "machine-yawc-deflate", "tws", "yawc", "yawc-deflate"]
NAMES = {
    "machine-tws": "machine on tokio-websockets",
    "machine-yawc": "machine on yawc, compression offered, declined",
    "machine-yawc-deflate": "machine on yawc, permessage-deflate",
    "tws": "bare tokio-websockets",
    "yawc": "bare yawc, compression off",
    "yawc-deflate": "bare yawc, permessage-deflate",
}
# Each client against the clients its ratios are taken to.
BASES = ["machine-tws", "tws", "yawc"]


def median(values):
    return statistics.median(values) if values else None


def fmt(value, digits):
    return "-" if value is None else f"{value:,.{digits}f}"


def main(path):
    # (server, case) -> label -> rep -> value
    cells = defaultdict(lambda: defaultdict(dict))
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if not line:
            continue
        record = json.loads(line)
        report = record["report"]
        if report["scenario"] == "throughput":
            value = report["msgs_per_sec"] if report["size"] < 1024 else report["mib_per_sec"]
        elif report["scenario"] == "idle":
            value = report["kib_per_conn"]
        else:
            continue
        cells[(record["server"], record["case"])][record["label"]][record["rep"]] = value

    for (server, case), by_label in sorted(cells.items(), key=lambda kv: (kv[0][0] != "yawc", kv[0][1])):
        idle = case.startswith("idle")
        unit = "KiB per connection" if idle else ("msg/s" if case.startswith("64 B") else "MiB/s")
        server_name = "wsm-bench-echo (yawc)" if server == "yawc" else "wsm echo-server (tokio-websockets)"
        print(f"### {case}, server {server_name}: {unit}")
        print()
        bases = [b for b in BASES if b in by_label]
        header = ["client", "median", "runs"] + [f"/ {b}" for b in bases]
        if idle:
            header = ["client", "median KiB/conn", "runs"] + [f"- {b} (KiB)" for b in bases]
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for label in ORDER:
            if label not in by_label:
                continue
            values = by_label[label]
            row = [NAMES[label], fmt(median(list(values.values())), 2 if idle else (0 if unit == "msg/s" else 1))]
            row.append(" ".join(fmt(values[r], 2 if idle else (0 if unit == "msg/s" else 1)) for r in sorted(values)))
            for base in bases:
                pairs = [
                    (values[r] - by_label[base][r]) if idle else values[r] / by_label[base][r]
                    for r in values
                    if r in by_label[base] and by_label[base][r]
                ]
                row.append(fmt(median(pairs), 2 if idle else 3))
            print("| " + " | ".join(row) + " |")
        print()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
