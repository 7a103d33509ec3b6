//! Istio-shaped data for `n` services, for the load harnesses: per service (`svc{i}`,
//! namespace `fleet`) a canary (pod-template hash `c{i}`, 10 % of requests) and a stable
//! (`s{i}`), Istio's request counter (200 and 503, 0.3 % errors) and duration histogram.

use std::fmt::Write as _;

const BUCKETS: [&str; 5] = ["25", "100", "500", "1000", "+Inf"];

/// OpenMetrics text (ending in `# EOF`) with a sample every 30 s from `from` to `to` (Unix
/// seconds), ready for `promtool tsdb create-blocks-from openmetrics`.
pub fn openmetrics(n: usize, from: i64, to: i64) -> String {
    let mut requests = String::new();
    let mut buckets = String::new();
    let steps = (to - from) / 30;
    for i in 0..n {
        for (hash, rps) in [(format!("c{i}"), 2.0), (format!("s{i}"), 18.0)] {
            let labels = format!(
                "reporter=\"destination\",destination_service_name=\"svc{i}\",\
                 destination_service_namespace=\"fleet\",rollouts_pod_template_hash=\"{hash}\",\
                 pod=\"{hash}-0\""
            );
            for k in 0..=steps {
                let t = from + 30 * k;
                let total = rps * 30.0 * k as f64;
                let errors = (total * 0.003).floor();
                let _ = writeln!(
                    requests,
                    "istio_requests_total{{{labels},response_code=\"200\"}} {} {t}",
                    total - errors
                );
                let _ = writeln!(
                    requests,
                    "istio_requests_total{{{labels},response_code=\"503\"}} {errors} {t}"
                );
                for (b, share) in BUCKETS.iter().zip([0.30, 0.80, 0.97, 0.995, 1.0]) {
                    let _ = writeln!(
                        buckets,
                        "istio_request_duration_milliseconds_bucket{{{labels},le=\"{b}\"}} {} {t}",
                        (total * share).floor()
                    );
                }
            }
        }
    }
    format!(
        "# TYPE istio_requests counter\n{requests}\
         # TYPE istio_request_duration_milliseconds histogram\n{buckets}# EOF\n"
    )
}
