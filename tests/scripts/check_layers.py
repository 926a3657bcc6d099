#!/usr/bin/env python3
"""docs/architecture.md's layer table against the #include lines.

  check_layers.py <repo root>

The table's last column lists the areas each area uses; an area may include its own headers and
those of the areas it uses, directly or through them (the transitive closure; `everything` for
cli). Every #include "qfae/<area>/..." in include/qfae/<area>/ and src/<area>/ outside that set is
printed with its file and line, as is an area folder missing from the table, a table row without
a folder, or a row that uses a row below it (the table is ordered: lower rows use upper rows). Exit 1 when anything is printed.
"""
import pathlib
import re
import sys


def read_table(doc):
    uses = {}  # in the table's order
    for line in doc.read_text().splitlines():
        m = re.match(r"^\| `(\w+)` \|.*\| ([^|]+) \|$", line)
        if not m:
            continue
        area, column = m.group(1), m.group(2).strip()
        if column == "everything":
            uses[area] = None
        elif column in ("–", "-", ""):
            uses[area] = set()
        else:
            uses[area] = {u.strip() for u in column.split(",")}
    return uses


def closure(uses):
    everything = set(uses)
    allowed = {}
    for area in uses:
        if uses[area] is None:
            allowed[area] = everything
            continue
        seen, todo = set(), list(uses[area])
        while todo:
            u = todo.pop()
            if u in seen:
                continue
            seen.add(u)
            todo.extend(uses.get(u) or [])
        allowed[area] = seen | {area}
    return allowed


def main():
    root = pathlib.Path(sys.argv[1])
    uses = read_table(root / "docs" / "architecture.md")
    problems = []
    folders = {p.name for p in (root / "include" / "qfae").iterdir() if p.is_dir()}
    folders |= {p.name for p in (root / "src").iterdir() if p.is_dir()}
    for area in sorted(folders - set(uses)):
        problems.append(f"area '{area}' has a folder but no row in docs/architecture.md")
    for area in sorted(set(uses) - folders):
        problems.append(f"docs/architecture.md has a row for '{area}' but no folder")
    order = list(uses)
    for area, used in uses.items():
        for u in sorted(used or []):
            if u not in order or order.index(u) >= order.index(area):
                problems.append(f"docs/architecture.md: '{area}' uses '{u}', which is not a row "
                                f"above it (lower rows use upper rows only)")
    allowed = closure(uses)
    include = re.compile(r'^\s*#\s*include\s+"qfae/(\w+)/')
    for area in sorted(folders & set(uses)):
        files = []
        for base in (root / "include" / "qfae" / area, root / "src" / area):
            if base.is_dir():
                files += sorted(p for p in base.rglob("*") if p.suffix in (".h", ".cpp"))
        for f in files:
            for n, line in enumerate(f.read_text(errors="replace").splitlines(), 1):
                m = include.match(line)
                if m and m.group(1) not in allowed[area]:
                    problems.append(f"{f.relative_to(root)}:{n}: {area} includes {m.group(1)}, "
                                    f"which its row does not reach "
                                    f"(uses: {', '.join(sorted(uses[area] or [])) or '–'})")
    for p in problems:
        print(p)
    print(f"{len(folders)} areas, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
