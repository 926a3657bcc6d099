#!/usr/bin/env python3
"""Every registered test carries exactly one of the labels `unit` and `integration`.

  check_labels.py <ctest> <build dir>

Reads the tests as `ctest --show-only=json-v1` lists them (the GoogleTest cases included, with the
labels tests/CMakeLists.txt gives them) and prints each test with neither label or with both.
Exit 1 when anything is printed, or when the listing has no unit or no integration test at all.
The listing runs on a copy of the build's CTestTestfile.cmake files, because any ctest run
rewrites <build>/Testing/Temporary/LastTest.log, which the ctest running this test is writing.
"""
import json
import pathlib
import shutil
import subprocess
import sys
import tempfile


def list_tests(ctest, build):
    build = pathlib.Path(build)
    with tempfile.TemporaryDirectory() as tmp:
        for testfile in build.rglob("CTestTestfile.cmake"):
            copy = pathlib.Path(tmp) / testfile.relative_to(build)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(testfile, copy)
        listing = subprocess.run([ctest, "--test-dir", tmp, "--show-only=json-v1"],
                                 capture_output=True, text=True, check=True)
    return json.loads(listing.stdout)["tests"]


def main():
    tests = list_tests(sys.argv[1], sys.argv[2])
    problems, counts = [], {"unit": 0, "integration": 0}
    for test in tests:
        labels = []
        for prop in test.get("properties", []):
            if prop["name"] == "LABELS":
                labels = prop["value"]
        kinds = [k for k in ("unit", "integration") if k in labels]
        if len(kinds) != 1:
            problems.append(f"{test['name']}: labels {labels}; expected exactly one of unit and "
                            "integration (tests/CMakeLists.txt, docs/contributing.md §5)")
        for k in kinds:
            counts[k] += 1
    for kind, n in counts.items():
        if n == 0:
            problems.append(f"no test is labelled {kind}: the labels were not read")
    for p in problems:
        print(p)
    if not problems:
        print(f"{len(tests)} tests: {counts['unit']} unit, {counts['integration']} integration")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
