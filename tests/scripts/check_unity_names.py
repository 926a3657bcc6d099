#!/usr/bin/env python3
"""File-local names that would clash in a unity build, whatever the batches.

  check_unity_names.py <repo root> [--list]    (--list: print every name found, file by file)

qfae_core (src/**/*.cpp but main.cpp) and qfae_tests (tests/**/*.cpp) are unity builds: CMake
pastes several .cpp files of a target into one translation unit, so names each file meant for
itself share one scope with the other files of its batch. Which files share a batch depends on
the glob order and the batch size, so this check does not look at batches: within each target it
lists, for every .cpp file, the names it declares at namespace scope with internal linkage

  - everything declared in an anonymous namespace (functions, variables, types, aliases,
    enumerators of unscoped enums),
  - `static` functions and variables,
  - `const` and `constexpr` variables (internal linkage in C++ unless `inline` or `extern`),

and prints every name that two files of the same target both declare, with each file and line,
whatever namespace encloses it (an inner one hides an outer one in unity builds, so the bare name
is what must be unique). An alias, or a using-declaration, that two files make for the same
thing is not a clash; one for different things is. Names in ALL_CAPS are taken for macros (TEST,
TORCH_MODULE) and skipped; so are operators, which are overloads by design. A `#define` in a
.cpp file that the file does not `#undef` again is printed too. Files kept out of the batches
(SKIP_UNITY_BUILD_INCLUSION in CMakeLists.txt, read from there) are compiled on their own and not
checked.

Exit 1 when anything is printed.
"""
import pathlib
import re
import sys

KEYWORDS = {
    "alignas", "alignof", "auto", "bool", "char", "class", "const", "consteval", "constexpr",
    "constinit", "decltype", "double", "enum", "explicit", "extern", "float", "friend", "inline",
    "int", "long", "mutable", "noexcept", "operator", "requires", "short", "signed", "sizeof",
    "static", "struct", "template", "thread_local", "typename", "union", "unsigned", "using",
    "virtual", "void", "volatile", "__attribute__", "override", "final",
}
# Identifier followed by a parenthesised group that is not a declarator.
NOT_A_NAME_BEFORE_PAREN = {"decltype", "alignas", "__attribute__", "noexcept", "requires",
                           "sizeof", "alignof", "explicit"}


class Tok:
    __slots__ = ("text", "line", "body")

    def __init__(self, text, line, body=None):
        self.text, self.line, self.body = text, line, body

    def __repr__(self):
        return self.text


def strip_source(text):
    """Comments and string/char literals out (a literal becomes "" / ''), preprocessor lines
    returned apart as (line, text); line numbers are kept."""
    out, directives = [], []
    i, n, line = 0, len(text), 1
    at_line_start = True
    while i < n:
        c = text[i]
        if c == "\n":
            out.append(c)
            line += 1
            i += 1
            at_line_start = True
            continue
        if at_line_start and c == "#":
            start, start_line = i, line
            while i < n and text[i] != "\n":
                if text[i] == "\\" and i + 1 < n and text[i + 1] == "\n":
                    i += 2
                    line += 1
                    out.append("\n")
                    continue
                if text.startswith("/*", i):  # a comment inside a directive
                    end = text.find("*/", i + 2)
                    end = n if end < 0 else end + 2
                    line += text.count("\n", i, end)
                    out.append("\n" * text.count("\n", i, end))
                    i = end
                    continue
                if text.startswith("//", i):
                    while i < n and text[i] != "\n":
                        i += 1
                    break
                i += 1
            directives.append((start_line, text[start:i].replace("\\\n", " ")))
            continue
        if not c.isspace():
            at_line_start = False
        if text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
            continue
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append("\n" * text.count("\n", i, end))
            line += text.count("\n", i, end)
            i = end
            continue
        raw = re.match(r'(?:u8|u|U|L)?R"([^()\\ ]{0,16})\(', text[i:i + 40])
        if raw and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            end = text.find(")" + raw.group(1) + '"', i + raw.end())
            end = n if end < 0 else end + len(raw.group(1)) + 2
            out.append('""' + "\n" * text.count("\n", i, end))
            line += text.count("\n", i, end)
            i = end
            continue
        if c == '"' or (c == "'" and not _digit_separator(text, i)):
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(c + c)
            i = j + 1
            continue
        out.append(c)
        i += 1
    return "".join(out), directives


def _digit_separator(text, i):
    """Whether the ' at i sits inside a number (1'000)."""
    j = i - 1
    while j >= 0 and (text[j].isalnum() or text[j] in "_.'"):
        j -= 1
    return j + 1 < i and text[j + 1].isdigit()


TOKEN = re.compile(r'[A-Za-z_]\w*|\d[\w.\']*|::|->|""|\'\'|\.\.\.|\S')


def tokenize(code):
    toks = []
    for line_no, line in enumerate(code.split("\n"), start=1):
        for m in TOKEN.finditer(line):
            toks.append(Tok(m.group(0), line_no))
    return toks


def collapse(toks, i):
    """toks[i] is '{': returns (index after the matching '}', the tokens inside)."""
    depth, j = 0, i
    while j < len(toks):
        if toks[j].text == "{":
            depth += 1
        elif toks[j].text == "}":
            depth -= 1
            if depth == 0:
                return j + 1, toks[i + 1:j]
        j += 1
    return j, toks[i + 1:]


def skip_group(toks, i, open_, close):
    """toks[i] is `open_`: the index after its match (angle brackets count '>>' as two)."""
    depth = 0
    while i < len(toks):
        t = toks[i].text
        if t == open_:
            depth += 1
        elif t == close:
            depth -= 1
        elif open_ == "<" and t in ("(", "["):
            i = skip_group(toks, i, t, ")" if t == "(" else "]")
            continue
        if depth == 0:
            return i + 1
        i += 1
    return i


def strip_prefix(decl):
    """Drops leading template<...> heads and [[attributes]]."""
    i = 0
    while i < len(decl):
        if decl[i].text == "template" and i + 1 < len(decl) and decl[i + 1].text == "<":
            i = skip_group(decl, i + 1, "<", ">")
        elif decl[i].text == "[" and i + 1 < len(decl) and decl[i + 1].text == "[":
            i = skip_group(decl, i, "[", "]")
        else:
            break
    return decl[i:]


def is_name(tok):
    return re.fullmatch(r"[A-Za-z_]\w*", tok.text) is not None and tok.text not in KEYWORDS


def is_function_head(decl):
    """A declaration whose '{' opens a function body: a top-level ( before it, no top-level =."""
    decl = strip_prefix(decl)
    if decl and decl[0].text in ("struct", "class", "union", "enum", "namespace"):
        return False
    depth, paren = 0, False
    for t in decl:
        if t.text in ("(", "["):
            if depth == 0 and t.text == "(":
                paren = True
            depth += 1
        elif t.text in (")", "]"):
            depth -= 1
        elif t.text == "=" and depth == 0:
            return False
    return paren


def declared(decl, file_local_scope):
    """(name, line, kind, what) for each internal-linkage name `decl` declares; kind is 'name'
    or 'alias' (then `what` says what it stands for)."""
    decl = strip_prefix(decl)
    if not decl:
        return []
    texts = [t.text for t in decl]
    first = texts[0]
    if first in ("static_assert", "friend", "extern") or first.startswith("operator"):
        return []
    if first == "namespace":  # namespace x = y;
        if len(decl) > 2 and decl[2].text == "=":
            return [(decl[1].text, decl[1].line, "alias", "".join(texts[3:]))]
        return []
    if first == "using":
        if len(texts) > 1 and texts[1] == "namespace":
            return []  # a directive
        if len(texts) > 2 and texts[2] == "=":
            return [(texts[1], decl[1].line, "alias", "".join(texts[3:]))]
        # A using-declaration (`using a::b::name;`), at any namespace scope: it reaches the
        # rest of the translation unit like an alias does.
        last = decl[-1]
        return [(last.text, last.line, "alias", "".join(texts[1:]))] if is_name(last) else []
    if first == "typedef":
        names = [t for t in decl if is_name(t)]
        return [(names[-1].text, names[-1].line, "alias", "".join(texts[1:-1]))] if names else []
    specifiers = set()
    i = 0
    while i < len(decl) and decl[i].text in ("static", "inline", "constexpr", "const", "extern",
                                             "thread_local", "constinit", "consteval"):
        specifiers.add(decl[i].text)
        i += 1
    rest = decl[i:]
    if rest and rest[0].text in ("struct", "class", "union", "enum"):
        return class_head(rest, file_local_scope)
    return declarator(rest, specifiers, file_local_scope)


def class_head(rest, file_local_scope):
    if not file_local_scope or not any(t.text == "{" for t in rest):
        return []  # a type outside an anonymous namespace has linkage; a forward declaration
    j = 1
    scoped = rest[0].text == "enum" and len(rest) > 1 and rest[1].text in ("class", "struct")
    if scoped:
        j = 2
    out = []
    if j < len(rest) and is_name(rest[j]) and not rest[j].text.isupper():
        out.append((rest[j].text, rest[j].line, "name", ""))
    if rest[0].text == "enum" and not scoped:
        body = next(t.body for t in rest if t.text == "{")
        expect = True
        depth = 0
        for t in body:
            if t.text in ("(", "{", "["):
                depth += 1
            elif t.text in (")", "}", "]"):
                depth -= 1
            elif depth == 0 and t.text == ",":
                expect = True
            elif expect and depth == 0 and is_name(t):
                out.append((t.text, t.line, "name", ""))
                expect = False
    return out


def declarator(rest, specifiers, file_local_scope):
    """The name a function or variable declaration declares, when it has internal linkage: the
    identifier before the first top-level '(' (a function, or a variable initialised with
    parentheses), else the one before '=', '{', '[', ',' or the end."""

    def unqualified_name_at(k):  # rest[k] when it is a name not preceded by '::'
        if 0 <= k < len(rest) and is_name(rest[k]) and (k < 1 or rest[k - 1].text != "::"):
            return rest[k]
        return None

    name, is_function, end = None, False, len(rest)
    k = 0
    while k < len(rest):
        t = rest[k].text
        if t == "<":  # template arguments of the type
            k = skip_group(rest, k, "<", ">")
            continue
        if t == "(" and k and rest[k - 1].text in NOT_A_NAME_BEFORE_PAREN:
            k = skip_group(rest, k, "(", ")")
            continue
        if t in ("(", "=", "{", "[", ";", ","):
            end = k
            is_function = t == "("
            break
        k += 1
    name = unqualified_name_at(end - 1)
    type_tokens = [x.text for x in rest[:max(end - 1, 0)]]
    if name is None or name.text.isupper() or any(x == "operator" for x in type_tokens):
        return []
    if not type_tokens and "static" not in specifiers:
        return []  # no type: a macro call or a constructor, not a declaration qfae writes
    internal = file_local_scope or "static" in specifiers
    if not is_function and "inline" not in specifiers and "extern" not in specifiers:
        internal = internal or "constexpr" in specifiers or "const" in specifiers or \
            ("const" in type_tokens and type_tokens[-1:] != ["*"])
    return [(name.text, name.line, "name", "")] if internal else []


def file_local_names(path):
    code, directives = strip_source(path.read_text(errors="replace"))
    toks = tokenize(code)
    names = []
    stack = []  # True for an anonymous namespace, False for a named one or extern "C"
    decl = []
    i = 0
    while i < len(toks):
        t = toks[i]
        if t.text == "{":
            texts = [x.text for x in decl]
            if texts and (texts[0] == "namespace" or texts[:2] == ["inline", "namespace"]):
                stack.append(texts[-1] == "namespace")
                decl = []
                i += 1
                continue
            if texts[:1] == ["extern"] and len(texts) == 2:
                stack.append(False)
                decl = []
                i += 1
                continue
            end, body = collapse(toks, i)
            decl.append(Tok("{", t.line, body))
            i = end
            if is_function_head(decl[:-1]):
                names += declared(decl[:-1], any(stack))
                decl = []
            continue
        if t.text == "}":
            if stack:
                stack.pop()
            decl = []
        elif t.text == ";":
            names += declared(decl, any(stack))
            decl = []
        else:
            decl.append(t)
        i += 1
    defines = []
    undefined = set()
    for line, text in directives:
        m = re.match(r"#\s*(define|undef)\s+(\w+)", text)
        if m and m.group(1) == "define":
            defines.append((m.group(2), line))
        elif m:
            undefined.add(m.group(2))
    leaked = [(name, line) for name, line in defines if name not in undefined]
    return names, leaked


def kept_out_of_batches(root):
    """Sources CMakeLists.txt marks SKIP_UNITY_BUILD_INCLUSION (paths, or ${VAR}s set to one)."""
    text = (root / "CMakeLists.txt").read_text()
    variables = dict(re.findall(r"set\((\w+)\s+\$\{PROJECT_SOURCE_DIR\}/(\S+?)\)", text))
    out = set()
    for args in re.findall(r"set_source_files_properties\(([^)]*SKIP_UNITY_BUILD_INCLUSION[^)]*)",
                           text):
        for ref in re.findall(r"\$\{PROJECT_SOURCE_DIR\}/(\S+)", args):
            out.add(ref)
        for var in re.findall(r"\$\{(\w+)\}", args):
            if var in variables:
                out.add(variables[var])
    return out


def check_target(root, sources, skipped, listing):
    problems = []
    seen = {}  # name -> [(file, line, kind, what)]
    for path in sources:
        rel = path.relative_to(root).as_posix()
        if rel in skipped:
            continue  # compiled on its own
        names, leaked = file_local_names(path)
        for name, line in leaked:
            problems.append(f"{rel}:{line}: #define {name} is not #undef'd at the end of the "
                            "file, so it reaches the other files of its unity batch")
        if listing:
            for name, line, kind, what in names:
                print(f"{rel}:{line}: {name}" + (f" = {what}" if kind == "alias" else ""))
        mine = {}
        for name, line, kind, what in names:
            mine.setdefault(name, (rel, line, kind, what))
        for name, entry in mine.items():
            seen.setdefault(name, []).append(entry)
    for name, entries in sorted(seen.items()):
        if len(entries) < 2:
            continue
        if all(e[2] == "alias" for e in entries) and len({e[3] for e in entries}) == 1:
            continue  # the same alias everywhere: a harmless redeclaration
        where = ", ".join(f"{f}:{line}" for f, line, _, _ in entries)
        problems.append(f"'{name}' is file-local in {len(entries)} files of one unity target "
                        f"({where}); give each a name of its own (docs/contributing.md §6)")
    return problems


def main():
    listing = "--list" in sys.argv[1:]
    root = pathlib.Path([a for a in sys.argv[1:] if a != "--list"][0]).resolve()
    skipped = kept_out_of_batches(root)
    targets = {
        "qfae_core": [p for p in sorted((root / "src").rglob("*.cpp")) if p.name != "main.cpp"],
        "qfae_tests": sorted((root / "tests").rglob("*.cpp")),
    }
    problems = []
    counted = 0
    for sources in targets.values():
        counted += len(sources)
        problems += check_target(root, sources, skipped, listing)
    for p in problems:
        print(p)
    if not problems:
        print(f"{counted} files ({len(skipped)} compiled on their own): no file-local name is declared twice within a unity target")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
