"""hack/check-deps.py: every program the project runs is installed by the project."""

import importlib.util
import pathlib
import subprocess
import unittest
from collections import defaultdict

HACK = pathlib.Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("check_deps", HACK / "check-deps.py")
check_deps = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_deps)


def programs(script: str) -> set[str]:
    found: dict[str, set[str]] = defaultdict(set)
    check_deps.shell_programs("t.sh", script, found, set())
    return set(found)


class ParsingTest(unittest.TestCase):
    def test_finds_programs_behind_wrappers_pipes_and_substitutions(self):
        script = """
exec alpha --flag
setsid beta </dev/null &
nice -n 19 gamma
timeout 10 delta
echo "$(epsilon x)" | zeta
find . | xargs -r eta
env -i PATH=/bin theta
if command -v iota >/dev/null; then :; fi
"""
        self.assertEqual(
            programs(script) - {"echo", "find", ":"},
            {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota"},
        )

    def test_ignores_heredocs_case_patterns_arrays_and_computed_names(self):
        script = """
cat <<END
notacommand here
END
case $x in
  build) alpha ;;
esac
LIST=(beta gamma)
"$BIN/delta" --version
$tool run
"""
        self.assertEqual(programs(script), {"cat", "alpha"})


class DeclaredTest(unittest.TestCase):
    def test_every_program_the_project_runs_is_named_in_a_list(self):
        missing = check_deps.undeclared()
        self.assertEqual(
            missing, {}, "programs named in no hack/deps/*.list (add them to the list of the "
            "purpose that uses them, so a fresh machine installs them)")

    def test_an_undeclared_program_would_be_reported(self):
        found: dict[str, set[str]] = defaultdict(set)
        check_deps.shell_programs("t.sh", "surely-not-a-declared-tool --now\n", found, set())
        known = set(check_deps.declared()) | check_deps.builtins()
        self.assertIn("surely-not-a-declared-tool", set(found) - known)

    def test_base_list_names_only_packages_every_debian_system_has(self):
        for line in (HACK / "deps" / "base.list").read_text().splitlines():
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            fields = subprocess.run(
                ["dpkg-query", "-W", "-f=${Essential} ${Priority}", words[0]],
                capture_output=True, text=True, check=True).stdout.split()
            self.assertTrue("yes" in fields or "required" in fields,
                            f"{words[0]} is neither essential nor required: {fields}")

    def test_every_list_line_names_a_package(self):
        for path in sorted((HACK / "deps").glob("*.list")):
            for n, line in enumerate(path.read_text().splitlines(), 1):
                words = line.split("#", 1)[0].split()
                if words:
                    self.assertRegex(
                        words[0], r"^(\([a-z]+\)|[a-z0-9][a-z0-9.+-]+|hack/[\w.-]+|justw)$",
                        f"{path.name}:{n}")


if __name__ == "__main__":
    unittest.main()
