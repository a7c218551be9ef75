//! Summaries of repeated measurements.

use std::time::Duration;

/// Median, 95th percentile and extremes of a sample (of durations, or of byte counts), by the
/// nearest-rank method: every figure is one that was measured, never an interpolation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary<T = Duration> {
    pub count: usize,
    pub min: T,
    pub median: T,
    pub p95: T,
    pub max: T,
}

impl<T: Ord + Copy> Summary<T> {
    /// `None` for an empty sample.
    pub fn of(sample: &[T]) -> Option<Summary<T>> {
        let mut sorted = sample.to_vec();
        sorted.sort();
        let rank = |p: f64| {
            let rank = (p * sorted.len() as f64).ceil() as usize;
            sorted[rank.clamp(1, sorted.len()) - 1]
        };
        Some(Summary {
            count: sorted.len(),
            min: *sorted.first()?,
            median: rank(0.5),
            p95: rank(0.95),
            max: *sorted.last()?,
        })
    }
}

/// Milliseconds with one decimal, for tables.
pub fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn millis(values: impl IntoIterator<Item = u64>) -> Vec<Duration> {
        values.into_iter().map(Duration::from_millis).collect()
    }

    #[test]
    fn nearest_rank_percentiles() {
        // 1..=20 ms, shuffled: the median is the 10th value, p95 the 19th.
        let sample = millis((1..=20).rev());
        let summary = Summary::of(&sample).unwrap();
        assert_eq!(summary.count, 20);
        assert_eq!(summary.min, Duration::from_millis(1));
        assert_eq!(summary.median, Duration::from_millis(10));
        assert_eq!(summary.p95, Duration::from_millis(19));
        assert_eq!(summary.max, Duration::from_millis(20));
    }

    #[test]
    fn one_value_is_every_percentile() {
        let summary = Summary::of(&millis([7])).unwrap();
        assert_eq!(
            (summary.median, summary.p95),
            (Duration::from_millis(7), Duration::from_millis(7))
        );
        assert_eq!(Summary::<Duration>::of(&[]), None);
    }

    #[test]
    fn byte_counts_too() {
        let summary = Summary::of(&[0_u64, 8192, 0, 24_576, 0]).unwrap();
        assert_eq!(
            (summary.median, summary.p95, summary.max),
            (0, 24_576, 24_576)
        );
    }

    #[test]
    fn milliseconds_for_tables() {
        assert_eq!(ms(Duration::from_micros(12_345)), "12.3 ms");
    }
}
