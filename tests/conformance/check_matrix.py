#!/usr/bin/env python3
"""Check the RFC conformance matrix in docs/conformance/ against the source tree.

Every table row of every docs/conformance/rfc*.md is parsed. The checker verifies that
  - the status is one of the legend's values;
  - every file cited in the code column exists, and a cited `file::a::b` names an identifier
    (`b`, the last component) that occurs as a whole word in that file;
  - every file cited in the test column exists; a quoted name after a C++ file is the exact name
    of a doctest TEST_CASE in it (adjacent string literals are joined, as the compiler does); a
    bare name after a Python file is a function defined in it (`def name(`);
  - a row marked compliant cites at least one test, a row marked "compliant (untested)" or
    "gap" cites none (partial and n.a. rows may cite tests for the part that holds);
  - docs/conformance/README.md carries the summary line this script computes for each RFC.
It exits 1 and lists every broken citation, 0 when all hold.

  check_matrix.py [--root DIR] [--docs DIR]   check (defaults: the repository, its docs/conformance)
  check_matrix.py --summary                   print the summary table for the README
  check_matrix.py --self-test                 prove the checker fails on broken citations
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

STATUSES = ("compliant", "compliant (untested)", "partial", "gap", "n.a.")
NEEDS_TEST = ("compliant",)
NO_TEST = ("compliant (untested)", "gap")

CODE_RE = re.compile(r"`([A-Za-z0-9_./-]+)((?:::[A-Za-z0-9_~]+)*)`")
# A repository path: relative, at least one directory, a file name with an extension.
PATH_RE = re.compile(r"[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*/[A-Za-z0-9_-][A-Za-z0-9_.-]*\.[A-Za-z0-9]+")
# `path`: "name"  or  `path`: name   (the backticks are optional)
TEST_RE = re.compile(r"`?([A-Za-z0-9_./-]+\.(?:cpp|py))`?\s*:\s*(?:\"((?:[^\"\\]|\\.)*)\"|([A-Za-z_][A-Za-z0-9_]*))")
LITERAL_RE = re.compile(r'\s*"((?:[^"\\]|\\.)*)"')


def repo_root():
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def shown(path, root):
    """A path relative to the repository when it lies inside it, else absolute."""
    rel = os.path.relpath(path, root)
    return path if rel.startswith("..") else rel


def unescape(s):
    return re.sub(r"\\(.)", r"\1", s)


def cpp_test_cases(path):
    """The names of every doctest TEST_CASE in a C++ file, with adjacent literals joined."""
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    names = set()
    for m in re.finditer(r"\bTEST_CASE\s*\(", text):
        pos = m.end()
        parts = []
        while True:
            lm = LITERAL_RE.match(text, pos)
            if not lm:
                break
            parts.append(unescape(lm.group(1)))
            pos = lm.end()
        if parts:
            names.add("".join(parts))
    return names


def py_functions(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return set(re.findall(r"^\s*(?:async\s+)?def\s+([A-Za-z_][A-Za-z0-9_]*)\s*\(", f.read(), re.M))


def split_row(line):
    cells = line.strip()
    if cells.startswith("|"):
        cells = cells[1:]
    if cells.endswith("|"):
        cells = cells[:-1]
    # A literal | inside a cell is written \| in Markdown.
    return [c.replace("\\|", "|").strip() for c in re.split(r"(?<!\\)\|", cells)]


def parse_tables(path):
    """Yield (line number, {column: cell}) for every body row of every table in a file."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    header = None
    for i, line in enumerate(lines, 1):
        if not line.lstrip().startswith("|"):
            header = None
            continue
        cells = split_row(line)
        if header is None:
            header = [c.lower() for c in cells]
            continue
        if all(re.fullmatch(r":?-{3,}:?", c) for c in cells):
            continue
        if len(cells) != len(header):
            yield i, None
            continue
        yield i, dict(zip(header, cells))


class Checker:
    def __init__(self, root, docs):
        self.root = root
        self.docs = docs
        self.errors = []
        self.counts = {}
        self._cpp = {}
        self._py = {}
        self._text = {}

    def err(self, where, msg):
        self.errors.append(f"{where}: {msg}")

    def file_ok(self, where, rel):
        full = os.path.join(self.root, rel)
        if os.path.isabs(rel) or ".." in rel.split("/") or not os.path.isfile(full):
            self.err(where, f"cited file does not exist: {rel}")
            return None
        return full

    def check_code(self, where, cell):
        for m in CODE_RE.finditer(cell):
            rel, symbol = m.group(1), m.group(2)
            if not PATH_RE.fullmatch(rel):
                continue  # a plain code word such as `0x8000` or `/probe`, not a file
            full = self.file_ok(where, rel)
            if full is None or not symbol:
                continue
            ident = symbol.split("::")[-1]
            if full not in self._text:
                with open(full, encoding="utf-8", errors="replace") as f:
                    self._text[full] = f.read()
            if not re.search(r"(?<![A-Za-z0-9_])" + re.escape(ident) + r"(?![A-Za-z0-9_])",
                             self._text[full]):
                self.err(where, f"identifier '{ident}' does not occur in {rel}")

    def check_tests(self, where, cell):
        n = 0
        for m in TEST_RE.finditer(cell):
            n += 1
            rel, cname, pyname = m.group(1), m.group(2), m.group(3)
            full = self.file_ok(where, rel)
            if full is None:
                continue
            if rel.endswith(".cpp"):
                if cname is None:
                    self.err(where, f"a C++ test must be cited by its quoted TEST_CASE name: {m.group(0)}")
                    continue
                if full not in self._cpp:
                    self._cpp[full] = cpp_test_cases(full)
                if unescape(cname) not in self._cpp[full]:
                    self.err(where, f'no TEST_CASE("{unescape(cname)}") in {rel}')
            else:
                if pyname is None:
                    self.err(where, f"a Python test must be cited by its function name: {m.group(0)}")
                    continue
                if full not in self._py:
                    self._py[full] = py_functions(full)
                if pyname not in self._py[full]:
                    self.err(where, f"no function {pyname}() in {rel}")
        mentioned = len(re.findall(r"\.(?:cpp|py)\b", cell))
        if mentioned > n:
            self.err(where, "a test citation does not parse (want `file.cpp`: \"NAME\" or "
                            "`file.py`: function)")
        return n

    def check_file(self, path):
        name = os.path.basename(path)
        rfc = os.path.splitext(name)[0].upper()
        counts = self.counts.setdefault(rfc, {s: 0 for s in STATUSES})
        rows = 0
        for line, row in parse_tables(path):
            where = f"{shown(path, self.root)}:{line}"
            if row is None:
                self.err(where, "row has a different number of cells than its header")
                continue
            missing = [c for c in ("§", "clause", "level", "status", "code", "test") if c not in row]
            if missing:
                self.err(where, f"table lacks column(s) {', '.join(missing)}")
                continue
            rows += 1
            status = row["status"]
            if status not in STATUSES:
                self.err(where, f"unknown status '{status}' (one of: {', '.join(STATUSES)})")
                continue
            counts[status] += 1
            self.check_code(where, row["code"])
            n = self.check_tests(where, row["test"])
            if status in NEEDS_TEST and n == 0:
                self.err(where, f"status '{status}' needs at least one cited test")
            if status in NO_TEST and n > 0:
                self.err(where, f"status '{status}' cites a test: make it compliant/partial or drop it")
        if rows == 0:
            self.err(shown(path, self.root), "no clause rows found")

    def summary_lines(self):
        out = []
        for rfc in sorted(self.counts, key=lambda r: int(re.sub(r"\D", "", r) or 0)):
            c = self.counts[rfc]
            total = sum(c.values())
            out.append(f"| {rfc} | {total} | {c['compliant']} | {c['compliant (untested)']} | "
                       f"{c['partial']} | {c['gap']} | {c['n.a.']} |")
        return out

    def run(self, check_readme=True):
        files = sorted(f for f in os.listdir(self.docs) if re.fullmatch(r"rfc\d+\.md", f))
        if not files:
            self.err(self.docs, "no rfc*.md files")
        for f in files:
            self.check_file(os.path.join(self.docs, f))
        if check_readme:
            readme = os.path.join(self.docs, "README.md")
            if not os.path.isfile(readme):
                self.err(shown(readme, self.root), "missing")
            else:
                with open(readme, encoding="utf-8") as f:
                    text = f.read().splitlines()
                for line in self.summary_lines():
                    if line not in text:
                        self.err(shown(readme, self.root),
                                 f"summary line missing or out of date; expected: {line}")
        return not self.errors


def check(root, docs):
    c = Checker(root, docs)
    ok = c.run()
    n = sum(sum(v.values()) for v in c.counts.values())
    if ok:
        print(f"conformance matrix: {n} clauses in {len(c.counts)} RFC files, every citation resolves")
        return 0
    print(f"conformance matrix: {len(c.errors)} broken citation(s):")
    for e in c.errors:
        print("  " + e)
    return 1


def self_test(root, docs):
    """Copy the matrix, break it in each way the checker must catch, and expect failure."""
    me = os.path.abspath(__file__)
    failures = []

    def run_copy(tmp):
        r = subprocess.run([sys.executable, me, "--root", root, "--docs", tmp],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
        return r.returncode, r.stdout

    with tempfile.TemporaryDirectory() as tmp:
        copy = os.path.join(tmp, "conformance")
        shutil.copytree(docs, copy)
        rc, out = run_copy(copy)
        if rc != 0:
            failures.append("the unmodified copy does not pass:\n" + out)

        target = os.path.join(copy, "rfc5357.md")
        with open(target, encoding="utf-8") as f:
            pristine = f.read()
        bad_rows = {
            "missing file": "| 9.9 | bogus | MUST | compliant | `include/twamp/no_such_file.hpp` | "
                            "`tests/test_control.cpp`: \"message sizes and constants follow RFC 4656/5357/5938\" |",
            "missing identifier": "| 9.9 | bogus | MUST | compliant | `include/twamp/timestamp.hpp::no_such_identifier_xyz` | "
                                  "`tests/test_timestamp.cpp`: \"NTP: the 2036 era boundary\" |",
            "missing TEST_CASE": "| 9.9 | bogus | MUST | compliant | `include/twamp/timestamp.hpp` | "
                                 "`tests/test_timestamp.cpp`: \"NTP: no such test case\" |",
            "renamed TEST_CASE (prefix)": "| 9.9 | bogus | MUST | compliant | `include/twamp/timestamp.hpp` | "
                                          "`tests/test_timestamp.cpp`: \"NTP: the 2036 era\" |",
            "missing test file": "| 9.9 | bogus | MUST | compliant | `include/twamp/timestamp.hpp` | "
                                 "`tests/test_nowhere.cpp`: \"x\" |",
            "missing Python function": "| 9.9 | bogus | MUST | compliant | `include/twamp/timestamp.hpp` | "
                                       "`tests/integration/test_loopback.py`: no_such_function_xyz |",
            "compliant without a test": "| 9.9 | bogus | MUST | compliant | `include/twamp/timestamp.hpp` | — |",
            "unknown status": "| 9.9 | bogus | MUST | fine | `include/twamp/timestamp.hpp` | — |",
            "unparsable test citation": "| 9.9 | bogus | MUST | partial | `include/twamp/timestamp.hpp` | "
                                        "`tests/test_timestamp.cpp` \"NAME\" |",
        }
        for what, row in bad_rows.items():
            # Append the row to the first table of the file (after its last row).
            lines = pristine.splitlines()
            idx = next(i for i, l in enumerate(lines) if l.startswith("|"))
            while idx < len(lines) and lines[idx].startswith("|"):
                idx += 1
            lines.insert(idx, row)
            with open(target, "w", encoding="utf-8") as f:
                f.write("\n".join(lines) + "\n")
            rc, out = run_copy(copy)
            if rc != 1:
                failures.append(f"{what}: expected exit 1, got {rc}")
            elif "rfc5357.md:" + str(idx + 1) not in out:
                failures.append(f"{what}: the broken row (line {idx + 1}) is not listed:\n{out}")
        with open(target, "w", encoding="utf-8") as f:
            f.write(pristine)

        # A stale README summary is caught too.
        readme = os.path.join(copy, "README.md")
        with open(readme, encoding="utf-8") as f:
            text = f.read()
        with open(readme, "w", encoding="utf-8") as f:
            f.write(re.sub(r"^\| RFC5357 \| (\d+) \|", lambda m: f"| RFC5357 | {int(m.group(1)) + 1} |",
                           text, flags=re.M))
        rc, out = run_copy(copy)
        if rc != 1 or "summary line" not in out:
            failures.append(f"stale README summary: expected exit 1 naming the summary, got {rc}:\n{out}")

    # The C++ name parser joins adjacent string literals and unescapes quotes.
    with tempfile.TemporaryDirectory() as tmp:
        p = os.path.join(tmp, "t.cpp")
        with open(p, "w", encoding="utf-8") as f:
            f.write('TEST_CASE("a b "\n          "c")\n{}\nTEST_CASE(\n    "d \\"q\\"")\n{}\n')
        got = cpp_test_cases(p)
        if got != {"a b c", 'd "q"'}:
            failures.append(f"cpp_test_cases parsed {sorted(got)}")

    if failures:
        print("self-test FAILED:")
        for f in failures:
            print("  " + f)
        return 1
    print(f"self-test: the checker rejects all {len(bad_rows) + 1} kinds of broken matrix and "
          "passes the intact copy")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=repo_root())
    ap.add_argument("--docs")
    ap.add_argument("--summary", action="store_true")
    ap.add_argument("--self-test", action="store_true")
    a = ap.parse_args()
    root = os.path.abspath(a.root)
    docs = os.path.abspath(a.docs or os.path.join(root, "docs", "conformance"))
    if a.self_test:
        return self_test(root, docs)
    if a.summary:
        c = Checker(root, docs)
        c.run(check_readme=False)
        print("| RFC | clauses | compliant | compliant (untested) | partial | gap | n.a. |")
        print("|---|---|---|---|---|---|---|")
        print("\n".join(c.summary_lines()))
        return 0
    return check(root, docs)


if __name__ == "__main__":
    sys.exit(main())
