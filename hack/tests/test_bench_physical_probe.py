"""hack/bench-physical-probe.py: WAL file names place segments in order, and the lag summary."""

import importlib.util
import pathlib
import unittest

SCRIPT = pathlib.Path(__file__).resolve().parent.parent / "bench-physical-probe.py"
spec = importlib.util.spec_from_file_location("bench_physical_probe", SCRIPT)
probe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(probe)

MIB_16 = 16 * 1024 * 1024


class SegmentNumber(unittest.TestCase):
    def test_segments_count_across_a_log_boundary(self) -> None:
        last_of_log_0 = probe.segment_number("0000000100000000000000FF", MIB_16)
        first_of_log_1 = probe.segment_number("000000010000000100000000", MIB_16)
        self.assertEqual(first_of_log_1 - last_of_log_0, 1)

    def test_the_timeline_does_not_count(self) -> None:
        self.assertEqual(
            probe.segment_number("000000020000000000000005", MIB_16),
            probe.segment_number("000000010000000000000005", MIB_16),
        )

    def test_larger_segments_fill_a_log_sooner(self) -> None:
        self.assertEqual(probe.segment_number("000000010000000100000000", 64 * 1024 * 1024), 64)


class Summary(unittest.TestCase):
    def test_p95_is_the_nearest_rank(self) -> None:
        lags = [float(n) for n in range(1, 21)]  # 20 values: the 19th is the p95
        self.assertEqual(probe.summary(lags, 0), "20 10.50 19.00 20.00 0")

    def test_unarchived_segments_are_counted_apart(self) -> None:
        self.assertEqual(probe.summary([0.3], 2), "1 0.30 0.30 0.30 2")
        self.assertEqual(probe.summary([], 3), "0 - - - 3")


if __name__ == "__main__":
    unittest.main()
