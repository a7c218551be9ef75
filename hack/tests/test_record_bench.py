"""hack/record-bench.py: what a benchmark prints lands in its blocks, and nothing else moves."""

import pathlib
import subprocess
import sys
import tempfile
import unittest

SCRIPT = pathlib.Path(__file__).resolve().parent.parent / "record-bench.py"

DOCUMENT = """# Numbers

Prose that stays.

<!-- just bench: Pod ready → Database Ready -->
old latency
<!-- end just bench: Pod ready → Database Ready -->

More prose.

<!-- just bench: # Databases and # Backups -->
old scale
<!-- end just bench: # Databases and # Backups -->
"""

OUTPUT = """### Pod ready → Database Ready

new latency | 234 ms

### 500 Databases and 500 Backups

new scale
"""


class RecordBench(unittest.TestCase):
    def setUp(self) -> None:
        directory = tempfile.TemporaryDirectory()
        self.addCleanup(directory.cleanup)
        self.document = pathlib.Path(directory.name, "performance.md")
        self.document.write_text(DOCUMENT, encoding="utf-8")
        self.output = pathlib.Path(directory.name, "output.md")

    def record(self, output: str, *command: str) -> subprocess.CompletedProcess:
        self.output.write_text(output, encoding="utf-8")
        command = command or ("cat", str(self.output))
        return subprocess.run(
            [sys.executable, str(SCRIPT), "just bench", str(self.document), "--", *command],
            capture_output=True,
            text=True,
        )

    def test_each_section_replaces_its_block_whatever_the_counts(self) -> None:
        result = self.record(OUTPUT)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, OUTPUT, "the output is passed through")
        written = self.document.read_text(encoding="utf-8")
        self.assertEqual(
            written,
            DOCUMENT.replace("old latency", "new latency | 234 ms").replace(
                "old scale", "new scale"
            ),
        )

    def test_a_failed_run_writes_nothing(self) -> None:
        result = self.record(OUTPUT, "sh", "-c", f"cat {self.output}; exit 3")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("left as it was", result.stderr)
        self.assertEqual(self.document.read_text(encoding="utf-8"), DOCUMENT)

    def test_a_section_without_a_block_writes_nothing(self) -> None:
        result = self.record(OUTPUT + "\n### Something new\n\nfigures\n")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("no block `<!-- just bench: Something new -->`", result.stderr)
        self.assertEqual(self.document.read_text(encoding="utf-8"), DOCUMENT)

    def test_a_block_written_twice_is_refused(self) -> None:
        self.document.write_text(DOCUMENT + DOCUMENT, encoding="utf-8")
        result = self.record(OUTPUT)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("2 blocks", result.stderr)
        self.assertEqual(self.document.read_text(encoding="utf-8"), DOCUMENT + DOCUMENT)


class PerformanceDocument(unittest.TestCase):
    """docs/performance.md keeps one block for each section the two benchmarks print."""

    def test_every_benchmark_section_has_one_block(self) -> None:
        document = (SCRIPT.parent.parent / "docs" / "performance.md").read_text(encoding="utf-8")
        for name, key in [
            ("just bench", "Pod ready → Database Ready"),
            ("just bench", "N Databases and N Backups"),
            ("just bench-backup", "results"),
        ]:
            for marker in (f"<!-- {name}: {key} -->", f"<!-- end {name}: {key} -->"):
                self.assertEqual(document.count(marker), 1, marker)


if __name__ == "__main__":
    unittest.main()
