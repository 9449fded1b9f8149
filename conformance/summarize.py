"""Summarizes an Autobahn|Testsuite report (index.json): the cases per
behavior, by group (the case id's first number) and in all, and the ids of
the cases that FAILED. Exits 1 if any did, 2 if the report is missing."""

import json
import sys
from collections import Counter, defaultdict

BEHAVIORS = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED"]


def case_key(case_id):
    return tuple(int(part) for part in case_id.split("."))


def main(path):
    try:
        with open(path) as f:
            index = json.load(f)
    except (OSError, ValueError) as e:
        print(f"summarize: no report at {path}: {e}", file=sys.stderr)
        return 2
    if not index:
        print(f"summarize: {path} lists no agent", file=sys.stderr)
        return 2
    status = 0
    for agent, cases in sorted(index.items()):
        groups = defaultdict(Counter)
        failed = []
        for case_id, result in cases.items():
            behavior = result.get("behavior", "?")
            groups[int(case_id.split(".")[0])][behavior] += 1
            if behavior == "FAILED":
                failed.append(case_id)
        total = Counter()
        for counts in groups.values():
            total.update(counts)
        others = sorted(set(total) - set(BEHAVIORS))
        columns = BEHAVIORS + others
        print(f"agent {agent}: {sum(total.values())} cases")
        print("group " + " ".join(f"{c:>13}" for c in columns))
        for group in sorted(groups):
            print(f"{group:>5} " + " ".join(f"{groups[group][c]:>13}" for c in columns))
        print("total " + " ".join(f"{total[c]:>13}" for c in columns))
        if failed:
            failed.sort(key=case_key)
            print(f"FAILED ({len(failed)}): " + " ".join(failed))
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "conformance/reports/clients/index.json"))
