//! Query results, kept with labels and timestamps, and their Argo view.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One series of a vector or matrix result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// Label set.
    pub labels: BTreeMap<String, String>,
    /// `(unix seconds, value)` pairs; NaN and ±Inf are kept.
    #[serde(with = "samples")]
    pub samples: Vec<(f64, f64)>,
    /// `(unix seconds, histogram)` samples of a native histogram series.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub histograms: Vec<(f64, NativeHistogram)>,
}

impl Series {
    /// A series of plain samples.
    pub fn of(labels: BTreeMap<String, String>, samples: Vec<(f64, f64)>) -> Series {
        Series {
            labels,
            samples,
            histograms: Vec::new(),
        }
    }
}

/// One sample of a Prometheus native histogram, as its HTTP API returns it: the count and
/// sum of observations so far, and each populated bucket's count (not cumulative).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NativeHistogram {
    /// Observations so far.
    #[serde(with = "float")]
    pub count: f64,
    /// Their sum.
    #[serde(with = "float")]
    pub sum: f64,
    /// `[boundary rule, lower, upper, count]` of each populated bucket, lowest first.
    #[serde(default)]
    pub buckets: Vec<NativeBucket>,
}

/// One bucket of a native histogram sample: Prometheus' `[rule, "lower", "upper", "count"]`
/// (rule 0: open left, closed right — the usual; 3: the zero bucket, closed both sides).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NativeBucket(
    pub u8,
    #[serde(with = "float")] pub f64,
    #[serde(with = "float")] pub f64,
    #[serde(with = "float")] pub f64,
);

impl NativeBucket {
    /// Upper bound.
    pub fn upper(&self) -> f64 {
        self.2
    }

    /// Observations in the bucket.
    pub fn count(&self) -> f64 {
        self.3
    }
}

/// The result of a Prometheus query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum QueryValue {
    /// A single number.
    Scalar {
        /// Unix seconds.
        time: f64,
        /// The number Prometheus returned (NaN and ±Inf kept).
        #[serde(with = "float")]
        value: f64,
    },
    /// One sample per series (an instant query).
    Vector(Vec<Series>),
    /// Many samples per series (a range query).
    Matrix(Vec<Series>),
}

impl QueryValue {
    /// Every sample value in returned order, series after series (Argo's flattening).
    pub fn values(&self) -> Vec<f64> {
        match self {
            QueryValue::Scalar { value, .. } => vec![*value],
            QueryValue::Vector(s) | QueryValue::Matrix(s) => s
                .iter()
                .flat_map(|s| s.samples.iter().map(|(_, v)| *v))
                .collect(),
        }
    }

    /// The `result` Argo's conditions see: a number for a scalar, a list for the rest.
    pub fn argo_result(&self) -> expr::Value {
        match self {
            QueryValue::Scalar { value, .. } => expr::Value::Float(*value),
            _ => crate::condition::from_floats(&self.values()),
        }
    }

    /// The measurement value as Argo prints it: `0.98` or `[0.98,NaN]`.
    pub fn display(&self) -> String {
        match self {
            QueryValue::Scalar { value, .. } => go_float(*value),
            _ => format!(
                "[{}]",
                self.values()
                    .iter()
                    .map(|v| go_float(*v))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        }
    }
}

/// Format a float as Prometheus' Go client does (`NaN`, `+Inf`, shortest round-trip).
pub fn go_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// Parse Prometheus' string form of a sample value.
pub fn parse_float(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

/// Floats as Prometheus writes them (strings), so NaN and ±Inf survive JSON.
mod float {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::go_float(*v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_float(&s).ok_or_else(|| serde::de::Error::custom(format!("bad float {s:?}")))
    }
}

/// `[[time, "value"], …]`, Prometheus' own encoding.
mod samples {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &[(f64, f64)], s: S) -> Result<S::Ok, S::Error> {
        let pairs: Vec<(f64, String)> = v.iter().map(|(t, x)| (*t, super::go_float(*x))).collect();
        pairs.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(f64, f64)>, D::Error> {
        let pairs: Vec<(f64, String)> = Vec::deserialize(d)?;
        pairs
            .into_iter()
            .map(|(t, s)| {
                super::parse_float(&s)
                    .map(|v| (t, v))
                    .ok_or_else(|| serde::de::Error::custom(format!("bad sample value {s:?}")))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattening_and_display_follow_argo() {
        let s = |v: &[f64]| {
            Series::of(
                BTreeMap::new(),
                v.iter().enumerate().map(|(i, x)| (i as f64, *x)).collect(),
            )
        };
        let m = QueryValue::Matrix(vec![s(&[1.0, f64::NAN]), s(&[f64::INFINITY])]);
        assert_eq!(m.display(), "[1,NaN,+Inf]");
        let json = serde_json::to_string(&m).unwrap();
        let back: QueryValue = serde_json::from_str(&json).unwrap();
        assert_eq!(back.display(), "[1,NaN,+Inf]");
        let sc = QueryValue::Scalar {
            time: 1.0,
            value: 0.5,
        };
        assert_eq!(sc.argo_result(), expr::Value::Float(0.5));
        assert_eq!(QueryValue::Vector(vec![]).display(), "[]");
    }
}
