#!/usr/bin/env python3
"""Checks that the folders of Sources/Compress use only what the layering rules allow.

The folders share one Swift module, so imports cannot show who uses whom: this
script collects the top-level declarations (types, protocols, free functions,
type aliases, global constants) of each folder, then scans every folder's code
(comments and string literals stripped, interpolations kept) for identifiers
declared in another folder, and checks each use against the rules.

The rules are the fenced ```layering block of docs/architecture.md: one line
per folder, `Folder: Other, Other(NameA, NameB)`, listing the folders it may
use besides itself; `Other(NameA, NameB)` allows only those names of Other.
A folder missing from the table is an error too, so a new folder gets a rule.

Usage: scripts/check-layering.py [--graph]
  --graph  prints which folder uses which (and through what), then checks.
Exits 1 with one line per violation, naming file, line, name and the rule.
Plain python3, no dependencies.
"""
import os
import re
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
SOURCES = os.path.join(ROOT, "Sources", "Compress")
DOC = os.path.join(ROOT, "docs", "architecture.md")

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
DECLARATION = re.compile(
    r"^(?:@\w+(?:\([^)]*\))?\s+)*"  # attributes such as @inlinable, @usableFromInline
    r"(?:(?:public|internal|package|open|final|indirect|nonisolated|private|fileprivate)\s+)*"
    r"(struct|class|enum|protocol|actor|typealias|func|let|var)\s+([A-Za-z_][A-Za-z0-9_]*)")


def strip_comments_and_strings(text):
    """The code of `text` with comments and string literal contents replaced by
    spaces (newlines kept, so line numbers stay), interpolations `\\(...)` kept."""
    out = []
    i, n = 0, len(text)
    # Each entry: ("string", quote) or ("interpolation", paren depth); code when empty.
    stack = []
    while i < n:
        c = text[i]
        top = stack[-1] if stack else None
        if top is None or top[0] == "interpolation":
            if text.startswith("//", i):
                j = text.find("\n", i)
                j = n if j < 0 else j
                out.append(" " * (j - i))
                i = j
                continue
            if text.startswith("/*", i):
                depth, j = 1, i + 2
                while j < n and depth:
                    if text.startswith("/*", j):
                        depth, j = depth + 1, j + 2
                    elif text.startswith("*/", j):
                        depth, j = depth - 1, j + 2
                    else:
                        j += 1
                out.append(re.sub(r"[^\n]", " ", text[i:j]))
                i = j
                continue
            raw = re.match(r"(#+)(\"\"\"|\")", text[i:])
            if raw or c == '"':
                hashes = raw.group(1) if raw else ""
                quote = '"""' if text.startswith('"""', i + len(hashes)) else '"'
                stack.append(("string", hashes + quote))
                width = len(hashes) + len(quote)
                out.append(" " * width)
                i += width
                continue
            if top is not None:
                if c == "(":
                    stack[-1] = ("interpolation", top[1] + 1)
                elif c == ")":
                    if top[1] == 0:
                        stack.pop()
                        out.append(" ")
                        i += 1
                        continue
                    stack[-1] = ("interpolation", top[1] - 1)
            out.append(c)
            i += 1
            continue
        # Inside a string literal.
        opener = top[1]
        hashes = opener[: len(opener) - len(opener.lstrip("#"))]
        quote = opener[len(hashes):]
        if c == "\\" and text.startswith(hashes, i + 1):
            k = i + 1 + len(hashes)
            if k < n and text[k] == "(":
                stack.append(("interpolation", 0))
                out.append(" " * (k + 1 - i))
                i = k + 1
                continue
            out.append(" " * (k + 1 - i) if k < n and text[k] != "\n" else " " * (k - i))
            i = k + 1 if k < n and text[k] != "\n" else k
            continue
        if text.startswith(quote + hashes, i):
            stack.pop()
            out.append(" " * len(quote + hashes))
            i += len(quote + hashes)
            continue
        out.append("\n" if c == "\n" else " ")
        i += 1
    return "".join(out)


def top_level_declarations(code):
    """(kind, name, line) of the declarations at brace depth 0 of stripped `code`,
    except private and fileprivate ones (no other file can use them)."""
    found = []
    depth = 0
    for number, line in enumerate(code.split("\n"), 1):
        if depth == 0:
            m = DECLARATION.match(line.strip())
            if m and not re.search(r"\b(private|fileprivate)\b", line.split(m.group(1))[0]):
                found.append((m.group(1), m.group(2), number))
        depth += line.count("{") - line.count("}")
    return found


LOCAL_BINDINGS = [
    re.compile(r"\b(?:let|var)\s+([A-Za-z_]\w*)"),            # let name, var name
    re.compile(r"\b(?:let|var)\s*\(([^)]*)\)"),             # let (a, b)
    re.compile(r"\bfor\s+(?:case\s+)?(?:let\s+)?\(?([\w\s,]+?)\)?\s+in\b"),  # for a in, for (a, b) in
    re.compile(r"\{\s*\(?([\w\s,]+?)\)?\s+in\b"),              # { a, b in
    re.compile(r"[(,]\s*(?:\w+\s+)?(\w+)\s*:"),              # parameter names: (label name: T
]


def local_bindings(code):
    """Names `code` binds as local constants, variables or parameters: a use of
    such a name that is not a call is taken for the local, not a declaration
    elsewhere with the same name."""
    names = set()
    for pattern in LOCAL_BINDINGS:
        for m in pattern.finditer(code):
            names.update(IDENTIFIER.findall(m.group(1)))
    return names


def parse_rules(path):
    """Folder -> {used folder: None (anything) or a set of allowed names}."""
    try:
        text = open(path, encoding="utf-8").read()
    except OSError as error:
        sys.exit(f"check-layering: cannot read the rules in {path}: {error}")
    block = re.search(r"```layering\n(.*?)```", text, re.S)
    if not block:
        sys.exit(f"check-layering: no ```layering block in {path}")
    rules = {}
    for raw in block.group(1).split("\n"):
        line = raw.split("#")[0].strip()
        if not line:
            continue
        folder, _, uses = line.partition(":")
        allowed = {}
        for item in re.findall(r"[A-Za-z]+(?:\([^)]*\))?", uses):
            name, _, names = item.partition("(")
            allowed[name] = set(re.findall(r"\w+", names)) if names else None
        rules[folder.strip()] = allowed
    return rules


def swift_files():
    for directory, _, files in os.walk(SOURCES):
        for file in sorted(files):
            if file.endswith(".swift"):
                path = os.path.join(directory, file)
                folder = os.path.relpath(path, SOURCES).split(os.sep)[0]
                if folder.endswith(".swift"):
                    folder = "."
                yield folder, path


def main():
    show_graph = "--graph" in sys.argv[1:]
    rules = parse_rules(DOC)
    files = [(folder, path, strip_comments_and_strings(open(path, encoding="utf-8").read()))
             for folder, path in swift_files()]
    definers = {}  # name -> set of folders declaring it
    for folder, path, code in files:
        for _, name, _ in top_level_declarations(code):
            definers.setdefault(name, set()).add(folder)

    problems = []
    uses = {}  # (folder, used folder) -> names
    folders = {f for f, _, _ in files}
    for folder in sorted(folders):
        if folder not in rules:
            problems.append(f"Sources/Compress/{folder}: no rule for this folder in docs/architecture.md "
                            "(add a line to the ```layering block)")
    # The rules themselves must name folders and symbols that exist, so they stay true.
    for folder, allowed in sorted(rules.items()):
        for used, names in sorted(allowed.items()):
            if used not in folders or folder not in folders:
                problems.append(f"docs/architecture.md: the rule '{folder}: ... {used}' names a folder "
                                "Sources/Compress does not have")
            for name in sorted(names or []):
                if used not in definers.get(name, set()):
                    problems.append(f"docs/architecture.md: the rule for {folder} allows '{name}' from {used}, "
                                    f"which {used} does not declare")
    for folder, path, code in files:
        rule = rules.get(folder, {})
        locals_ = local_bindings(code)
        for number, line in enumerate(code.split("\n"), 1):
            for m in IDENTIFIER.finditer(line):
                name = m.group(0)
                where = definers.get(name)
                if not where or folder in where:
                    continue
                before = line[: m.start()].rstrip()
                after = line[m.end():]
                # `x.name` is a member, `name:` a label or a declared name.
                if before.endswith(".") or after.startswith(":"):
                    continue
                if name in locals_ and not after.lstrip().startswith("("):
                    continue
                for used in where:
                    uses.setdefault((folder, used), set()).add(name)
                if any(used in rule and (rule[used] is None or name in rule[used]) for used in where):
                    continue
                if folder not in rules:
                    continue
                relative = os.path.relpath(path, ROOT)
                owner = " or ".join(sorted(where))
                limited = [u for u in sorted(where) if u in rule]
                detail = (f"{folder} may use only {', '.join(sorted(rule[limited[0]]))} from {limited[0]}"
                          if limited else f"{folder} may not use {owner}")
                problems.append(f"{relative}:{number}: '{name}' (declared in {owner}): {detail} "
                                f"(rules: docs/architecture.md)")
    if show_graph:
        for (folder, used), names in sorted(uses.items()):
            print(f"{folder} -> {used}: {', '.join(sorted(names))}")
    if problems:
        print("check-layering: Sources/Compress breaks the layering rules of docs/architecture.md:", file=sys.stderr)
        for problem in problems:
            print("  " + problem, file=sys.stderr)
        sys.exit(1)
    print(f"check-layering: {len(files)} files in Sources/Compress follow the layering rules")


if __name__ == "__main__":
    main()
