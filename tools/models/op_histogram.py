#!/usr/bin/env python3
"""Print the ONNX operator histogram of one or more model files.

For every op type (nodes in subgraphs included; non-default domains as `domain::Op`) it
prints the total node count, in how many files it appears, and which files. Loupe's operator
coverage is checked against this list.

    .venv/bin/python tools/models/op_histogram.py .models/*.onnx
    .venv/bin/python tools/models/op_histogram.py --json Tests/Fixtures/models/*.onnx
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from loupe_venv import ensure_venv  # noqa: E402

ensure_venv()

import argparse  # noqa: E402
import collections  # noqa: E402
import json  # noqa: E402


def histogram(path: Path) -> collections.Counter:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    counts: collections.Counter = collections.Counter()

    def walk(graph):
        for node in graph.node:
            key = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}::{node.op_type}"
            counts[key] += 1
            for attr in node.attribute:
                if attr.HasField("g"):
                    walk(attr.g)
                for sub in attr.graphs:
                    walk(sub)
    walk(model.graph)
    return counts


def main() -> int:
    p = argparse.ArgumentParser(description="ONNX op-type histogram over model files.",
                                epilog="The venv can be chosen with --venv DIR or LOUPE_VENV.")
    p.add_argument("models", nargs="+", help="ONNX files")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--per-model", action="store_true", help="also print each model's histogram")
    args = p.parse_args()

    per_model = {Path(m).name: histogram(Path(m)) for m in args.models}
    total: collections.Counter = collections.Counter()
    where: dict[str, list[str]] = collections.defaultdict(list)
    for name, counts in per_model.items():
        total.update(counts)
        for op in counts:
            where[op].append(name.removesuffix(".onnx"))

    if args.json:
        print(json.dumps({"models": sorted(per_model),
                          "ops": {op: {"nodes": total[op], "models": sorted(where[op])}
                                  for op in sorted(total)},
                          "per_model": {k: dict(sorted(v.items())) for k, v in per_model.items()}
                          if args.per_model else None}, indent=1))
        return 0
    width = max(len(op) for op in total) if total else 10
    print(f"{'op_type':<{width}}  {'nodes':>6}  {'models':>6}  in")
    for op in sorted(total):
        print(f"{op:<{width}}  {total[op]:>6}  {len(where[op]):>6}  {', '.join(sorted(where[op]))}")
    print(f"{len(total)} op types, {sum(total.values())} nodes, {len(per_model)} models")
    if args.per_model:
        for name, counts in per_model.items():
            print(f"\n{name}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
