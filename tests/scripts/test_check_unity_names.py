#!/usr/bin/env python3
"""check_unity_names.py on small made-up trees: each clash a unity batch would make is found,
with both files named, and what is not a clash (members, function locals, literals, comments,
the same alias twice, files compiled on their own, the other target) is not.

  test_check_unity_names.py <repo root>
"""
import pathlib
import subprocess
import sys
import tempfile

CMAKE = """
set(QFAE_COMM_SOURCE ${PROJECT_SOURCE_DIR}/src/alone.cpp)
set_source_files_properties(${QFAE_COMM_SOURCE} PROPERTIES SKIP_UNITY_BUILD_INCLUSION ON)
"""

# (what it checks, {path: text}, lines the output must contain (each a list of fragments that
# must all be on one line), whether the check must fail)
CASES = [
    ("functions in anonymous namespaces of two files",
     {"src/a/x.cpp": "namespace qfae::a {\nnamespace {\nint helper(int v) { return v; }\n}\n}\n",
      "src/b/y.cpp": "namespace {\n\ndouble helper(double v) {\n  return v;\n}\n}  // namespace\n"},
     [["'helper'", "src/a/x.cpp:3", "src/b/y.cpp:3"]], True),
    ("static functions and variables, constexpr and const variables",
     {"src/x.cpp": "namespace qfae {\nstatic int count = 0;\nstatic void reset() {}\n"
                   "constexpr int kLimit = 3;\nconst std::string kName = \"x\";\n}\n",
      "src/y.cpp": "static double count;\nnamespace qfae::y {\nvoid reset(int) {}\n"
                   "static void reset() {}\n"
                   "inline constexpr int kLimit = 4;\nconstexpr auto kName = 1;\n}\n"},
     [["'count'", "src/x.cpp:2", "src/y.cpp:1"], ["'reset'", "src/x.cpp:3", "src/y.cpp:4"],
      ["'kName'", "src/x.cpp:5", "src/y.cpp:6"]], True),
    ("types, enumerators and templates",
     {"tests/a_test.cpp": "namespace {\nstruct Weights {\n  int a;\n};\nenum Mode { kFast, kSlow };\n"
                          "template <class T>\nT twice(T v) { return v + v; }\n}  // namespace\n",
      "tests/b_test.cpp": "namespace {\nclass Weights final : public Base {};\n"
                          "enum class Other { kFast };\nconstexpr int kSlow = 1;\n"
                          "template <typename T, int N = 2>\nstatic T twice(T v);\n}\n"},
     [["'Weights'", "tests/a_test.cpp:2", "tests/b_test.cpp:2"],
      ["'kSlow'", "tests/a_test.cpp:5", "tests/b_test.cpp:4"],
      ["'twice'", "tests/a_test.cpp:7", "tests/b_test.cpp:6"]], True),
    ("aliases: the same one twice is fine, different ones clash",
     {"src/x.cpp": "namespace fs = std::filesystem;\nusing json = nlohmann::json;\n"
                   "using Clock = std::chrono::steady_clock;\n",
      "src/y.cpp": "namespace fs = std::filesystem;\nusing nlohmann::json;\n"
                   "namespace {\nusing Clock = std::chrono::system_clock;\n}\n"},
     [["'Clock'", "src/x.cpp:3", "src/y.cpp:4"]], True),
    ("a #define left defined", {"src/x.cpp": "#define QFAE_KEEP 1\n#define QFAE_GONE 2\n"
                                             "int f();\n#undef QFAE_GONE\n"},
     [["src/x.cpp:1", "QFAE_KEEP"]], True),
    ("not clashes: members, locals, lambdas, literals, comments, the other target, a file "
     "compiled alone, a macro call, names with linkage",
     {"src/x.cpp": "namespace {\nstruct A {\n  static int helper();\n  int kLimit = 1;\n};\n"
                   "const auto f = [](int v) { int local = v; return local; };\n}\n"
                   "int qfae_x() { static int calls = 0; const int kLimit = 2; return calls; }\n"
                   "const char* text = R\"(namespace { int helper(); })\";\n"
                   "// namespace { int helper(); }\n/* static int local; */\n"
                   "void A::helper2() {}\nint shared_with_linkage(int);\n",
      "src/y.cpp": "struct B {\n  int local;\n  static int calls;\n};\nint B::calls = 0;\n"
                   "namespace {\nTORCH_MODULE(Thing);\n}\nint shared_with_linkage(int v) "
                   "{ return v; }\nconst auto g = [] { return 1'000; };\nchar q = '{';\n",
      "src/alone.cpp": "#define USE_IT 1\nnamespace {\nint f = 1;\nint helper;\n}\n",
      "tests/x_test.cpp": "namespace {\nint f = 2;\nint helper();\n}\n"
                          "TEST(X, Y) { static int calls; }\n",
      "src/main.cpp": "namespace {\nint f = 3;\n}\n"},
     [], False),
]


def run_case(checker, files):
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        (root / "CMakeLists.txt").write_text(CMAKE)
        (root / "src").mkdir()
        (root / "tests").mkdir()
        for rel, text in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        done = subprocess.run([sys.executable, str(checker), str(root)], capture_output=True,
                              text=True)
        return done.returncode, done.stdout + done.stderr


def main():
    checker = pathlib.Path(sys.argv[1]) / "tests" / "scripts" / "check_unity_names.py"
    failures = 0
    for what, files, expected, fails in CASES:
        rc, out = run_case(checker, files)
        problems = []
        if (rc == 1) != fails or rc not in (0, 1):
            problems.append(f"exit {rc}, expected {1 if fails else 0}")
        lines = out.splitlines()
        for fragments in expected:
            if not any(all(f in line for f in fragments) for line in lines):
                problems.append(f"no line with all of {fragments}")
        # Every line printed on failure is one of the expected ones: nothing else is taken for a
        # clash.
        if fails:
            for line in lines:
                if not any(all(f in line for f in fragments) for fragments in expected):
                    problems.append(f"unexpected line: {line}")
        status = "ok" if not problems else "FAILED"
        print(f"[{status}] {what}")
        for p in problems:
            print(f"    {p}")
        if problems:
            print("    output:\n      " + "\n      ".join(lines))
            failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
