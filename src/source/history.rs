//! Backtests: answer the queries of many past evaluation times from a few range queries.
//!
//! A backtest asks the same queries at hundreds of past moments. Asking Prometheus each time
//! would cost one round-trip per query per moment; instead the first time a query is asked,
//! [`History`] fetches it once as a range query over the whole backtest, and every later ask
//! is sliced from memory.
//!
//! This is exact, not an approximation: Prometheus evaluates a range query as one instant
//! query per step, so an instant query at a time on the step grid, or a range query whose
//! window lies on the grid, gets from memory the very numbers Prometheus would have returned.
//! Grids are aligned to the epoch. A query that is off the grid (or whose PromQL returns a
//! range vector, which a range query cannot compute) goes to Prometheus as asked, and is
//! counted in [`HistoryStats::passed_through`].
//!
//! Long ranges are fetched in chunks of at most [`MAX_POINTS`] steps (Prometheus refuses more
//! than 11,000 points per series).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use promql_parser::parser::value::ValueType;
use serde::Serialize;
use tokio::sync::OnceCell;

use super::prometheus::{Answer, PromQuery, Range};
use super::value::{QueryValue, Series};
use super::{Error, Sources};

/// Most steps fetched by one range query.
pub const MAX_POINTS: i64 = 10_000;

/// Timeout of one range-query chunk: these are bigger than the queries they stand for.
const CHUNK_TIMEOUT: Duration = Duration::from_secs(120);

type Fetched = Result<Arc<Vec<Series>>, Error>;

/// What a backtest's history layer did.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct HistoryStats {
    /// Range queries sent to the source (chunks included).
    pub range_queries: usize,
    /// Queries answered from memory.
    pub from_memory: usize,
    /// Queries sent to the source as asked (off the grid, or range-vector PromQL).
    pub passed_through: usize,
}

/// The time span a backtest may ask about, and the fetched series.
#[derive(Debug)]
pub struct History {
    /// Step of the instant-query grid.
    grid: Duration,
    /// First and last instant-grid times.
    first: DateTime<Utc>,
    last: DateTime<Utc>,
    /// How far before `first` a range query may start (the longest window).
    lookback: Duration,
    cells: Mutex<HashMap<String, Arc<OnceCell<Fetched>>>>,
    range_queries: AtomicUsize,
    from_memory: AtomicUsize,
    passed_through: AtomicUsize,
}

fn secs(d: Duration) -> i64 {
    d.as_secs().max(1) as i64
}

/// `t` floored to a multiple of `step` since the epoch.
pub fn align_down(t: DateTime<Utc>, step: Duration) -> DateTime<Utc> {
    let s = secs(step);
    DateTime::from_timestamp(t.timestamp() - t.timestamp().rem_euclid(s), 0).unwrap_or(t)
}

fn on_grid(t: DateTime<Utc>, step: Duration) -> bool {
    t.timestamp_subsec_nanos() == 0 && t.timestamp().rem_euclid(secs(step)) == 0
}

impl History {
    /// Instant queries at multiples of `grid` within `[from, to]`, and range queries reaching
    /// back at most `lookback` before `from`, are answered from memory.
    pub fn new(grid: Duration, from: DateTime<Utc>, to: DateTime<Utc>, lookback: Duration) -> Self {
        let grid = Duration::from_secs(secs(grid) as u64);
        History {
            grid,
            first: align_down(from, grid),
            last: align_down(to, grid),
            lookback,
            cells: Mutex::new(HashMap::new()),
            range_queries: AtomicUsize::new(0),
            from_memory: AtomicUsize::new(0),
            passed_through: AtomicUsize::new(0),
        }
    }

    /// What has happened so far.
    pub fn stats(&self) -> HistoryStats {
        HistoryStats {
            range_queries: self.range_queries.load(Ordering::Relaxed),
            from_memory: self.from_memory.load(Ordering::Relaxed),
            passed_through: self.passed_through.load(Ordering::Relaxed),
        }
    }

    /// Answer `q` from memory (fetching its whole range through `inner` the first time), or
    /// `None` when it must go to the source as asked.
    pub async fn answer(&self, q: &PromQuery, inner: &Sources) -> Option<Result<Answer, Error>> {
        let answer = match &q.range {
            None => self.instant(q, inner).await,
            Some(r) => self.range(q, r, inner).await,
        };
        let counter = if answer.is_some() {
            &self.from_memory
        } else {
            &self.passed_through
        };
        counter.fetch_add(1, Ordering::Relaxed);
        answer
    }

    async fn instant(&self, q: &PromQuery, inner: &Sources) -> Option<Result<Answer, Error>> {
        let t = q.time?;
        if !on_grid(t, self.grid) || t < self.first || t > self.last {
            return None;
        }
        let kind = value_type(&q.query)?;
        let series = match self
            .fetch(q, "instant", self.first, self.last, self.grid, inner)
            .await
        {
            Ok(s) => s,
            Err(e) => return Some(Err(e)),
        };
        let at = t.timestamp() as f64;
        let value = if kind == ValueType::Scalar {
            let v = series
                .first()
                .and_then(|s| s.samples.iter().find(|p| p.0 == at))
                .map_or(f64::NAN, |p| p.1);
            QueryValue::Scalar { time: at, value: v }
        } else {
            QueryValue::Vector(
                series
                    .iter()
                    .filter_map(|s| {
                        let p = s.samples.iter().find(|p| p.0 == at);
                        let h = s.histograms.iter().find(|h| h.0 == at);
                        if p.is_none() && h.is_none() {
                            return None;
                        }
                        Some(Series {
                            labels: s.labels.clone(),
                            samples: p.into_iter().copied().collect(),
                            histograms: h.into_iter().cloned().collect(),
                        })
                    })
                    .collect(),
            )
        };
        Some(Ok(Answer {
            value,
            warnings: Vec::new(),
        }))
    }

    async fn range(
        &self,
        q: &PromQuery,
        r: &Range,
        inner: &Sources,
    ) -> Option<Result<Answer, Error>> {
        let earliest = self.first - chrono::Duration::from_std(self.lookback).ok()?;
        if !on_grid(r.start, r.step)
            || !on_grid(r.end, r.step)
            || r.start < earliest
            || r.end > self.last
            || r.start > r.end
        {
            return None;
        }
        value_type(&q.query)?;
        let step = r.step;
        let series = match self
            .fetch(
                q,
                "range",
                align_down(earliest, step),
                align_down(self.last, step),
                step,
                inner,
            )
            .await
        {
            Ok(s) => s,
            Err(e) => return Some(Err(e)),
        };
        let (lo, hi) = (r.start.timestamp() as f64, r.end.timestamp() as f64);
        let sliced = series
            .iter()
            .filter_map(|s| {
                let samples: Vec<(f64, f64)> = s
                    .samples
                    .iter()
                    .copied()
                    .filter(|p| p.0 >= lo && p.0 <= hi)
                    .collect();
                let histograms: Vec<_> = s
                    .histograms
                    .iter()
                    .filter(|h| h.0 >= lo && h.0 <= hi)
                    .cloned()
                    .collect();
                (!samples.is_empty() || !histograms.is_empty()).then(|| Series {
                    labels: s.labels.clone(),
                    samples,
                    histograms,
                })
            })
            .collect();
        Some(Ok(Answer {
            value: QueryValue::Matrix(sliced),
            warnings: Vec::new(),
        }))
    }

    /// The series of `q` over `[start, end]` at `step`, fetched once however often asked.
    async fn fetch(
        &self,
        q: &PromQuery,
        kind: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step: Duration,
        inner: &Sources,
    ) -> Fetched {
        let key = format!(
            "{kind}\u{0}{}\u{0}{}\u{0}{:?}\u{0}{:?}\u{0}{}",
            q.query,
            step.as_secs(),
            q.address,
            q.headers,
            q.insecure
        );
        let cell = {
            let mut cells = self.cells.lock().unwrap_or_else(|p| p.into_inner());
            cells.entry(key).or_default().clone()
        };
        cell.get_or_init(|| self.fetch_chunks(q, start, end, step, inner))
            .await
            .clone()
    }

    async fn fetch_chunks(
        &self,
        q: &PromQuery,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step: Duration,
        inner: &Sources,
    ) -> Fetched {
        let s = secs(step);
        type Samples = (Vec<(f64, f64)>, Vec<(f64, crate::source::NativeHistogram)>);
        let mut merged: BTreeMap<BTreeMap<String, String>, Samples> = BTreeMap::new();
        let mut chunk_start = start;
        while chunk_start <= end {
            let chunk_end =
                (chunk_start + chrono::Duration::seconds(s * (MAX_POINTS - 1))).min(end);
            let mut chunk = q.clone();
            chunk.time = None;
            chunk.timeout = q.timeout.max(CHUNK_TIMEOUT);
            chunk.range = Some(Range {
                start: chunk_start,
                end: chunk_end,
                step,
            });
            self.range_queries.fetch_add(1, Ordering::Relaxed);
            let answer = inner.direct(&chunk).await?;
            match answer.value {
                QueryValue::Matrix(series) | QueryValue::Vector(series) => {
                    for s in series {
                        let e = merged.entry(s.labels).or_default();
                        e.0.extend(s.samples);
                        e.1.extend(s.histograms);
                    }
                }
                QueryValue::Scalar { time, value } => {
                    merged
                        .entry(BTreeMap::new())
                        .or_default()
                        .0
                        .push((time, value));
                }
            }
            chunk_start = chunk_end + chrono::Duration::seconds(s);
        }
        Ok(Arc::new(
            merged
                .into_iter()
                .map(|(labels, (samples, histograms))| Series {
                    labels,
                    samples,
                    histograms,
                })
                .collect(),
        ))
    }
}

/// What an instant query of `query` returns, when a range query can compute it too
/// (`None` for range-vector or string expressions, and for PromQL that does not parse —
/// Prometheus' own error is then the clearest answer).
fn value_type(query: &str) -> Option<ValueType> {
    let kind = promql_parser::parser::parse(query).ok()?.value_type();
    matches!(kind, ValueType::Vector | ValueType::Scalar).then_some(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(s, 0).unwrap()
    }

    #[test]
    fn grids_are_aligned_to_the_epoch() {
        assert_eq!(
            align_down(t(1_000_017), Duration::from_secs(30)),
            t(999_990)
        );
        assert!(on_grid(t(999_990), Duration::from_secs(30)));
        assert!(!on_grid(t(1_000_017), Duration::from_secs(30)));
    }

    /// A range longer than 10,000 steps is fetched in chunks and merged: answers come from
    /// either chunk, each chunk is asked once, and an off-grid time goes to the source.
    #[tokio::test]
    async fn long_ranges_are_fetched_in_chunks() {
        use crate::source::snapshot::Recorder;
        let from = t(1_000_000);
        let to = from + chrono::Duration::seconds(15_000);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("snap.jsonl");
        let rec = Recorder::create(&file).unwrap();
        let series = |at: i64, v: f64| {
            QueryValue::Matrix(vec![Series::of(
                [("job".to_string(), "a".to_string())].into(),
                vec![(at as f64, v)],
            )])
        };
        let chunk = |start: DateTime<Utc>, end: DateTime<Utc>| {
            let mut q = PromQuery::instant("sum(up)");
            q.range = Some(Range {
                start,
                end,
                step: Duration::from_secs(1),
            });
            q
        };
        let split = from + chrono::Duration::seconds(MAX_POINTS - 1);
        for (q, v) in [
            (chunk(from, split), series(from.timestamp() + 5, 1.0)),
            (
                chunk(split + chrono::Duration::seconds(1), to),
                series(from.timestamp() + 12_000, 2.0),
            ),
        ] {
            let answer = Answer {
                value: v,
                warnings: Vec::new(),
            };
            rec.prometheus(&q, &Ok(answer)).unwrap();
        }
        let sources = Sources::replay(&file).unwrap();
        let h = History::new(Duration::from_secs(1), from, to, Duration::ZERO);
        let ask = |secs: i64| {
            let mut q = PromQuery::instant("sum(up)");
            q.time = Some(from + chrono::Duration::seconds(secs));
            q
        };
        for (at, want) in [(12_000, 2.0), (5, 1.0)] {
            let a = h.answer(&ask(at), &sources).await.unwrap().unwrap();
            assert_eq!(a.value.values(), vec![want], "at +{at}s");
        }
        let empty = h.answer(&ask(6), &sources).await.unwrap().unwrap();
        assert_eq!(empty.value, QueryValue::Vector(Vec::new()));
        let mut off = ask(7);
        off.time = off.time.map(|t| t + chrono::Duration::milliseconds(500));
        assert!(h.answer(&off, &sources).await.is_none());
        assert_eq!(
            h.stats(),
            HistoryStats {
                range_queries: 2,
                from_memory: 3,
                passed_through: 1
            }
        );
    }

    #[test]
    fn only_vector_and_scalar_expressions_are_sliced() {
        assert_eq!(value_type("sum(rate(x[5m]))"), Some(ValueType::Vector));
        assert_eq!(value_type("scalar(sum(x))"), Some(ValueType::Scalar));
        assert_eq!(value_type("x[5m]"), None);
        assert_eq!(value_type("sum(("), None);
    }
}
