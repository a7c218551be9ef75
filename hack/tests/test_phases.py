"""hack/lib/phases.sh: one line per phase with its time, and on failure the log's tail and a hint."""

import pathlib
import subprocess
import tempfile
import unittest

LIB = pathlib.Path(__file__).resolve().parent.parent / "lib" / "phases.sh"


def run(script: str, logs: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", f'source "{LIB}"; {script}'],
        capture_output=True, text=True, env={"PGOP_LOG_DIR": logs, "PATH": "/usr/bin:/bin"})


class PhasesTest(unittest.TestCase):
    def test_each_phase_prints_one_line_and_keeps_its_output_in_a_log(self):
        with tempfile.TemporaryDirectory() as logs:
            done = run('phases_init demo 2; phase "Build things (first run)" "hint" '
                       'echo compiler chatter; phase "Start" "hint" true; phases_done', logs)
            self.assertEqual(done.returncode, 0, done.stderr)
            lines = done.stdout.splitlines()
            self.assertEqual(lines[0], f"demo: full logs in {logs}/")
            self.assertRegex(lines[1], r"^\[1/2\] Build things \(first run\) \.\.\. done \(\d+s\)$")
            self.assertRegex(lines[2], r"^\[2/2\] Start \.\.\. done \(\d+s\)$")
            self.assertRegex(lines[3], r"^demo: all done in \d+s$")
            self.assertNotIn("compiler chatter", done.stdout)
            log = pathlib.Path(logs, "01-build-things.log").read_text()
            self.assertEqual(log, "compiler chatter\n")

    def test_a_failing_phase_shows_its_last_lines_the_log_and_what_to_do(self):
        with tempfile.TemporaryDirectory() as logs:
            failed = run('phases_init demo 2; phase "Compile" "Run cargo build by hand." '
                         'bash -c "seq 1 40; echo the real error >&2; exit 3"; '
                         'phase "Never" "hint" true', logs)
            self.assertEqual(failed.returncode, 3)
            out = failed.stdout
            self.assertIn("[1/2] Compile ... FAILED after", out)
            self.assertIn("  the real error", out)
            self.assertNotIn("  1\n", out, "only the last lines")
            self.assertIn(f"Full log: {logs}/01-compile.log", out)
            self.assertIn("demo: Run cargo build by hand.", out)
            self.assertNotIn("Never", out)


if __name__ == "__main__":
    unittest.main()
