#!/usr/bin/env python3
"""Checks that every program the project's scripts run is installed by the project.

Each file in hack/deps/ declares, for one purpose, the packages the project installs and
the commands each provides (hack/lib/deps.sh installs them). This script parses every shell
script, the justfile's recipes, the Python helpers' subprocess calls and the Rust code's
`Command::new("...")` with shfmt's syntax tree, collects the programs they run, and reports
every one that no list names. A program a fresh machine lacks then fails this check instead
of failing a user's first run half an hour in.

    hack/check-deps.py            report, exit 1 on any undeclared program
    hack/check-deps.py --list     print each program found with where it is used
"""
from __future__ import annotations

import json
import pathlib
import re
import subprocess
import sys
from collections import defaultdict

REPO = pathlib.Path(__file__).resolve().parent.parent
DEPS_DIR = REPO / "hack" / "deps"

# Code that runs inside an image, not on this machine: its programs come from the image's
# own packages (hack/images.sh installs those into the rootfs). The instance manager runs in
# each PostgreSQL Pod, with the programs of the PostgreSQL image.
INSIDE_IMAGES = ("hack/images/", "crates/instance-manager/")

# Wrappers whose first operand (after their own options) is the program they run.
WRAPPERS = {"exec", "command", "setsid", "nohup", "nice", "time", "sudo", "xargs", "env",
            "timeout", "stdbuf", "flock", "builtin"}
# Wrapper options that take a value (so the value is not the program).
WRAPPER_VALUE_OPTS = {"nice": {"-n"}, "xargs": {"-I", "-n", "-P", "-d", "-L", "-s"},
                      "timeout": {"-s", "-k"}, "env": {"-u", "-C"}, "flock": {"-w", "-E"}}


def declared() -> dict[str, tuple[str, str]]:
    """command -> (list file, package) for every command named in hack/deps/*.list."""
    out: dict[str, tuple[str, str]] = {}
    for path in sorted(DEPS_DIR.glob("*.list")):
        for line in path.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            package, *commands = line.split()
            for command in commands:
                out.setdefault(pathlib.PurePath(command).name, (path.name, package))
    return out


def builtins() -> set[str]:
    names = subprocess.run(["bash", "-c", "compgen -b; compgen -k"], check=True,
                           capture_output=True, text=True).stdout.split()
    return set(names)


def shell_sources() -> list[tuple[str, str]]:
    """(name, shell text) for every script, and the justfile's recipe bodies."""
    files = [REPO / ".ci" / "run", REPO / "justw"]
    files += sorted((REPO / "hack").rglob("*.sh"))
    out = []
    for f in files:
        rel = f.relative_to(REPO).as_posix()
        if rel.startswith(INSIDE_IMAGES):
            continue
        out.append((rel, f.read_text()))
    recipes = []
    for line in (REPO / "justfile").read_text().splitlines():
        if line.startswith("    ") and line.strip():
            # just's {{interpolations}} are not shell; a variable stands in for them, so one
            # in a program's place counts as computed, like "$BIN/tool".
            recipes.append(re.sub(r"\{\{[^}]*\}\}", '"$JUST"', line.strip().lstrip("@-")))
    out.append(("justfile", "\n".join(recipes) + "\n"))
    return out


def literal(word: dict | None) -> str | None:
    """The text of a word made only of literal and quoted-literal parts, else None."""
    if not word:
        return None
    text = ""
    for part in word.get("Parts", []):
        kind = part.get("Type")
        if kind == "Lit":
            text += part["Value"]
        elif kind == "SglQuoted":
            text += part["Value"]
        elif kind == "DblQuoted" and all(p.get("Type") == "Lit" for p in part.get("Parts", [])):
            text += "".join(p["Value"] for p in part.get("Parts", []))
        else:
            return None
    return text


def walk(node, visit):
    if isinstance(node, dict):
        visit(node)
        for value in node.values():
            walk(value, visit)
    elif isinstance(node, list):
        for item in node:
            walk(item, visit)


def program_of(args: list[dict]) -> str | None:
    """The program a call runs, or only looks up (`command -v X`), skipping wrappers; None
    when it is computed."""
    i = 0
    while i < len(args):
        word = literal(args[i])
        if word is None:
            return None
        if word in WRAPPERS:
            wrapper = word
            i += 1
            lookup = False
            while i < len(args):
                opt = literal(args[i])
                if opt is None:
                    return None
                if wrapper == "env" and "=" in opt and not opt.startswith("-"):
                    i += 1
                elif opt.startswith("-"):
                    if wrapper == "command" and opt in ("-v", "-V"):
                        lookup = True
                    i += 2 if opt in WRAPPER_VALUE_OPTS.get(wrapper, ()) else 1
                elif wrapper in ("timeout",) or (wrapper == "flock" and opt.isdigit()):
                    i += 1  # the duration, or flock's file descriptor
                    wrapper = ""
                else:
                    break
            if i >= len(args):
                return None
            if lookup:
                return literal(args[i])
            continue
        return word
    return None


def shell_programs(name: str, text: str, found, functions: set[str]):
    tree = subprocess.run(["shfmt", "-ln", "bash", "--to-json"], input=text, check=True,
                          capture_output=True, text=True).stdout
    root = json.loads(tree)

    def visit(node):
        kind = node.get("Type")
        if kind == "FuncDecl":
            functions.add(node["Name"]["Value"])
        elif kind == "CallExpr" and node.get("Args"):
            program = program_of(node["Args"])
            if program:
                found[program].add(f"{name}:{node['Pos']['Line']}")

    walk(root, visit)


# Programs other languages start by name: (files, pattern whose group 1 is the program).
CALLS = [
    ("hack", "*.py", r"subprocess\.\w+\(\s*\[\s*[\"']([\w.+-]+)[\"']"),
    ("crates", "*.rs", r'Command::new\(\s*"([^"/]+)"'),
]


def called_programs(found):
    for folder, files, pattern in CALLS:
        for f in sorted((REPO / folder).rglob(files)):
            rel = f.relative_to(REPO).as_posix()
            if rel.startswith(INSIDE_IMAGES):
                continue
            for n, line in enumerate(f.read_text().splitlines(), 1):
                for m in re.finditer(pattern, line):
                    found[m.group(1)].add(f"{rel}:{n}")


def collect() -> tuple[dict[str, set[str]], set[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    functions: set[str] = set()
    for name, text in shell_sources():
        shell_programs(name, text, found, functions)
    called_programs(found)
    return found, functions


def undeclared() -> dict[str, set[str]]:
    found, functions = collect()
    known = set(declared()) | builtins() | functions
    missing = {}
    for program, places in found.items():
        if "/" in program:
            # A path: the project's own scripts are checked by existing; an absolute
            # path to a system file is named in a list by its basename.
            if program.startswith("/"):
                if pathlib.PurePath(program).name not in known:
                    missing[program] = places
            elif not (REPO / program).exists() and not program.startswith("./"):
                missing[program] = places
            continue
        if program not in known:
            missing[program] = places
    return missing


def main() -> int:
    if "--list" in sys.argv[1:]:
        found, _ = collect()
        decl = declared()
        for program in sorted(found):
            where = decl.get(program, ("-", "-"))
            print(f"{program:28} {where[0]:14} {where[1]:28} {sorted(found[program])[0]}")
        return 0
    missing = undeclared()
    for program in sorted(missing):
        print(f"{program}: used at {', '.join(sorted(missing[program])[:3])} but named in no "
              f"hack/deps/*.list", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
