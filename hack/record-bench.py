#!/usr/bin/env python3
"""Runs a benchmark and writes what it prints into its marked blocks of a Markdown file.

    hack/record-bench.py NAME FILE -- COMMAND [ARG...]

COMMAND's output is passed through as it comes. Only when COMMAND succeeds is FILE rewritten:
the output is cut at its `### ` headings, and each part replaces the lines between

    <!-- NAME: KEY -->
    <!-- end NAME: KEY -->

where KEY is the heading with every number written as `#` (so a run over 500 objects fills
the same block as one over 1,000), or `results` for output before any heading. The heading
itself stays out: the file has its own, and the prose around the blocks, which says which
commit it discusses, is left alone. A part without its block in FILE, or a block that
appears twice, is an error and FILE is left as it was: a benchmark's figures are never
dropped silently.
"""

import re
import subprocess
import sys


def usage() -> None:
    sys.exit("usage: record-bench.py NAME FILE -- COMMAND [ARG...]")


def key_of(heading: str) -> str:
    return re.sub(r"\d[\d,.]*", "#", heading.strip())


def split_parts(output: str) -> dict[str, str]:
    parts: dict[str, list[str]] = {}
    key = "results"
    for line in output.splitlines():
        if line.startswith("### "):
            key = key_of(line[4:])
            parts[key] = []
            continue
        parts.setdefault(key, []).append(line)
    blocks = {k: "\n".join(lines).strip("\n") for k, lines in parts.items()}
    return {k: text for k, text in blocks.items() if text}


def fill(document: str, name: str, parts: dict[str, str]) -> str:
    for key, text in parts.items():
        begin = f"<!-- {name}: {key} -->"
        end = f"<!-- end {name}: {key} -->"
        pattern = re.compile(re.escape(begin) + r"\n.*?" + re.escape(end), re.DOTALL)
        found = len(pattern.findall(document))
        if found != 1:
            where = "no block" if found == 0 else f"{found} blocks"
            raise SystemExit(f"record-bench: {where} `{begin}` ... `{end}` for this output")
        document = pattern.sub(lambda _: f"{begin}\n{text}\n{end}", document)
    return document


def main() -> None:
    if len(sys.argv) < 5 or sys.argv[3] != "--":
        usage()
    name, path, command = sys.argv[1], sys.argv[2], sys.argv[4:]
    captured = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        for line in process.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            captured.append(line)
    if process.returncode != 0:
        sys.exit(f"record-bench: {' '.join(command)} failed ({process.returncode}); {path} left as it was")
    parts = split_parts("".join(captured))
    if not parts:
        sys.exit(f"record-bench: {' '.join(command)} printed nothing; {path} left as it was")
    with open(path, encoding="utf-8") as file:
        document = file.read()
    updated = fill(document, name, parts)
    with open(path, "w", encoding="utf-8") as file:
        file.write(updated)
    print(f"record-bench: wrote {', '.join(parts)} into {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
