"""hack/purge.sh: it removes what the project installed and never what the machine came with."""

import pathlib
import subprocess
import unittest

HACK = pathlib.Path(__file__).resolve().parent.parent


def listed(name: str) -> set[str]:
    packages = set()
    for line in (HACK / "deps" / f"{name}.list").read_text().splitlines():
        words = line.split("#", 1)[0].split()
        if words and not words[0].startswith("("):
            packages.add(words[0])
    return packages


class PurgeTest(unittest.TestCase):
    def test_a_dry_run_changes_nothing_and_spares_the_machines_own_packages(self):
        before = subprocess.run(["dpkg-query", "-W", "-f=${Package}\\n"],
                                capture_output=True, text=True, check=True).stdout
        done = subprocess.run([str(HACK / "purge.sh"), "--dry-run", "--keep-toolchain-caches"],
                              capture_output=True, text=True)
        self.assertEqual(done.returncode, 0, done.stderr)
        after = subprocess.run(["dpkg-query", "-W", "-f=${Package}\\n"],
                               capture_output=True, text=True, check=True).stdout
        self.assertEqual(before, after, "a dry run removed packages")
        kept = listed("machine") | listed("base")
        for line in done.stderr.splitlines():
            if "apt-get purge" in line:
                removed = set(line.split("-qq", 1)[1].split())
                self.assertFalse(removed & kept, f"would remove the machine's own {removed & kept}")
        self.assertIn("purge: done", done.stderr)


if __name__ == "__main__":
    unittest.main()
