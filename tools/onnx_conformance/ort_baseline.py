#!/usr/bin/env python3
"""Run the prepared conformance tests on onnxruntime and record which pass (a baseline).

Loupe's Swift runner compares itself with this: a test onnxruntime also fails (or cannot load)
usually exercises something outside float32 inference (string/float8 types, training ops,
unreleased opsets) and can be listed as expected-unsupported instead of read as a Loupe bug.

Comparison follows the ONNX backend test runner: numpy.testing.assert_allclose with the
test's rtol/atol (1e-3 / 1e-7 for node tests), NaN == NaN, exact equality for non-float types.
Writes .conformance/<suite>/ort_baseline.json = {"onnxruntime": version, "summary": {...},
"results": {test_name: "pass" | "fail: ..." | "error: ..." | "skip: ..."}}.

    .venv/bin/python tools/onnx_conformance/prepare.py
    .venv/bin/python tools/onnx_conformance/ort_baseline.py            # all prepared suites
    .venv/bin/python tools/onnx_conformance/ort_baseline.py --suites node --filter conv
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from loupe_venv import REPO_ROOT, ensure_venv  # noqa: E402

ensure_venv()

import argparse  # noqa: E402
import collections  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import time  # noqa: E402


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Run .conformance/ tests on onnxruntime; write ort_baseline.json per suite.",
        epilog="The venv can be chosen with --venv DIR or LOUPE_VENV (default: .venv).",
    )
    p.add_argument("--root", default=str(REPO_ROOT / ".conformance"),
                   help="conformance root written by prepare.py (default: %(default)s)")
    p.add_argument("--suites", default=None, help="comma-separated suites (default: all found)")
    p.add_argument("--filter", default=None, help="only tests whose name matches this regex")
    p.add_argument("--verbose", action="store_true", help="print every non-passing test")
    return p.parse_args()


def load_pb(path: Path, value_info):
    """Read one test-data protobuf as the numpy value the backend runner would feed."""
    import onnx
    from onnx import numpy_helper

    data = path.read_bytes()
    t = value_info.type
    if t.HasField("sequence_type"):
        proto = onnx.SequenceProto()
        proto.ParseFromString(data)
        return numpy_helper.to_list(proto)
    if t.HasField("optional_type"):
        proto = onnx.OptionalProto()
        proto.ParseFromString(data)
        return numpy_helper.to_optional(proto)
    if t.HasField("map_type"):
        proto = onnx.MapProto()
        proto.ParseFromString(data)
        return numpy_helper.to_dict(proto)
    proto = onnx.TensorProto()
    proto.ParseFromString(data)
    return numpy_helper.to_array(proto)


def compare(expected, actual, rtol: float, atol: float) -> None:
    import numpy as np

    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            raise AssertionError(f"sequence length {len(actual) if isinstance(actual, list) else '?'}"
                                 f" != {len(expected)}")
        for e, a in zip(expected, actual):
            compare(e, a, rtol, atol)
        return
    if expected is None:
        if actual is not None:
            raise AssertionError("expected an empty optional")
        return
    expected = np.asarray(expected)
    actual = np.asarray(actual)
    if expected.shape != actual.shape:
        raise AssertionError(f"shape {actual.shape} != {expected.shape}")
    if expected.dtype.kind in "fc":
        np.testing.assert_allclose(actual.astype(expected.dtype), expected, rtol=rtol, atol=atol)
    else:
        np.testing.assert_array_equal(actual, expected)


def run_test(test_dir: Path, rtol: float, atol: float) -> str:
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(test_dir / "model.onnx"))
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 4
    try:
        sess = ort.InferenceSession(str(test_dir / "model.onnx"), so,
                                    providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises several unrelated exception types
        return "error: load: " + str(exc).splitlines()[0][:200]
    inputs_by_name = {i.name: i for i in model.graph.input}
    feeds_names = [i.name for i in sess.get_inputs()]
    for ds in sorted(test_dir.glob("test_data_set_*")):
        inputs = [load_pb(p, model.graph.input[k])
                  for k, p in enumerate(sorted(ds.glob("input_*.pb"), key=lambda p: int(p.stem[6:])))]
        expected = [load_pb(p, model.graph.output[k])
                    for k, p in enumerate(sorted(ds.glob("output_*.pb"), key=lambda p: int(p.stem[7:])))]
        feeds = {}
        graph_inputs = [i.name for i in model.graph.input]
        for name, value in zip(graph_inputs, inputs):
            if name in feeds_names and name in inputs_by_name:
                feeds[name] = value
        try:
            actual = sess.run(None, feeds)
        except Exception as exc:
            return "error: run: " + str(exc).splitlines()[0][:200]
        try:
            for e, a in zip(expected, actual):
                compare(e, a, rtol, atol)
        except AssertionError as exc:
            lines = [ln for ln in str(exc).splitlines() if ln.strip()]
            return "fail: " + " | ".join(lines[:4])[:300]
    return "pass"


def main() -> int:
    args = parse_args()
    import onnxruntime as ort

    root = Path(args.root)
    if args.suites:
        suites = [s.strip() for s in args.suites.split(",") if s.strip()]
    else:
        suites = sorted(p.name for p in root.iterdir() if (p / "index.json").is_file()) if root.is_dir() else []
    if not suites:
        print(f"error: no prepared suites in {root}; run tools/onnx_conformance/prepare.py first",
              file=sys.stderr)
        return 2
    name_filter = re.compile(args.filter) if args.filter else None
    for suite in suites:
        index = json.loads((root / suite / "index.json").read_text())
        started = time.time()
        results = {}
        for entry in index["tests"]:
            if name_filter and not name_filter.search(entry["name"]):
                continue
            results[entry["name"]] = run_test(root / suite / entry["name"], entry["rtol"], entry["atol"])
            if args.verbose and results[entry["name"]] != "pass":
                print(f"  {entry['name']}: {results[entry['name']]}")
        summary = collections.Counter(r.split(":")[0] for r in results.values())
        out = {"suite": suite, "onnxruntime": ort.__version__, "summary": dict(summary),
               "results": results}
        (root / suite / "ort_baseline.json").write_text(json.dumps(out, indent=1) + "\n")
        print(f"{suite:>18}: {dict(summary)} in {time.time() - started:.1f} s "
              f"-> {root / suite / 'ort_baseline.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
