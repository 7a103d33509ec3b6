//! Scenario data for `canary serve`: Istio metrics of one service per scenario, with a
//! canary (`rollouts_pod_template_hash="c0ffee"`) and a baseline (`"5tab1e"`) variant,
//! 75 minutes of history and 20 minutes ahead, one sample per 15 s.
//!
//! | service   | canary vs baseline                                  | service SLO          |
//! |-----------|-----------------------------------------------------|----------------------|
//! | `healthy` | identical traffic, 0.2 % errors, same latency       | within budget        |
//! | `errors`  | canary 5 % errors                                   | burning (2.6 %)      |
//! | `tail`    | canary p99 ~3× (3 % of requests at 0.5–1 s), p50 same | within budget      |
//! | `quiet`   | one request per 5 minutes per variant               | too few events       |
//! | `burning` | identical, but both 20 % errors for the last hour   | burning (200×)       |
//! | `silent`  | no series at all                                    | no events            |
//! | `busy`    | identical, 40× the traffic, 0.05 % errors, 2 % over 500 ms | within budget  |

/// Canary pod-template hash.
pub const CANARY: &str = "c0ffee";
/// Baseline pod-template hash.
pub const BASELINE: &str = "5tab1e";

struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Per-step counts: requests, errors, and requests per latency bucket
/// (le 10, 50, 100, 250, 500, 1000, 2500).
fn step(service: &str, canary: bool, t: i64, now: i64, rng: &mut Lcg) -> (u64, u64, [u64; 7]) {
    if service == "quiet" {
        let one = u64::from(t.rem_euclid(300) == 0);
        return (one, 0, [0, one, 0, 0, 0, 0, 0]);
    }
    let busy = service == "busy";
    let requests = if busy { 20000 } else { 500 } + rng.next(100);
    let mut errors = if busy {
        requests / 2000 + rng.next(3)
    } else {
        rng.next(3)
    };
    if service == "errors" && canary {
        errors = requests / 20;
    }
    if service == "burning" && t > now - 3600 {
        errors = requests / 5;
    }
    let j1 = rng.next(20);
    let j2 = rng.next(6);
    let f = |x: f64| (requests as f64 * x) as u64;
    let mut b = [
        f(0.30) + j1,
        f(0.40) - j1,
        f(0.25) - j2,
        f(0.04) + j2,
        0,
        0,
        0,
    ];
    let assigned: u64 = b.iter().sum();
    b[4] = requests - assigned;
    if busy {
        let slow = f(0.02);
        b[1] -= slow;
        b[5] += slow;
    }
    if service == "tail" && canary {
        let moved = f(0.03);
        b[1] -= moved;
        b[5] += moved;
    }
    (requests, errors, b)
}

/// The OpenMetrics text for every scenario around `now` (unix seconds).
pub fn judge_openmetrics(now: i64) -> String {
    let start = now - 75 * 60;
    let end = now + 20 * 60;
    let bounds = ["10", "50", "100", "250", "500", "1000", "2500", "+Inf"];
    let mut requests = String::new();
    let mut histogram = String::new();
    for service in ["healthy", "errors", "tail", "quiet", "burning", "busy"] {
        for (hash, canary) in [(CANARY, true), (BASELINE, false)] {
            let labels = format!(
                r#"reporter="destination",destination_service_name="{service}",destination_service_namespace="prod",rollouts_pod_template_hash="{hash}""#
            );
            // The same seed for both variants: they differ only where the scenario says so.
            let mut rng = Lcg(service.bytes().map(u64::from).sum::<u64>());
            let (mut ok, mut bad) = (0u64, 0u64);
            let mut le = [0u64; 8];
            let mut ok_lines = String::new();
            let mut bad_lines = String::new();
            let mut le_lines: Vec<String> = vec![String::new(); 9];
            let mut t = start;
            while t <= end {
                let (req, errs, b) = step(service, canary, t, now, &mut rng);
                ok += req - errs;
                bad += errs;
                ok_lines.push_str(&format!(
                    "istio_requests_total{{{labels},response_code=\"200\"}} {ok} {t}\n"
                ));
                bad_lines.push_str(&format!(
                    "istio_requests_total{{{labels},response_code=\"503\"}} {bad} {t}\n"
                ));
                let mut below = 0;
                for i in 0..8 {
                    below += if i < 7 { b[i] } else { 0 };
                    le[i] += if i == 7 { req } else { below };
                    le_lines[i].push_str(&format!(
                        "istio_request_duration_milliseconds_bucket{{{labels},le=\"{}\"}} {} {t}\n",
                        bounds[i], le[i]
                    ));
                }
                le_lines[8].push_str(&format!(
                    "istio_request_duration_milliseconds_count{{{labels}}} {} {t}\n",
                    le[7]
                ));
                t += 15;
            }
            requests.push_str(&ok_lines);
            requests.push_str(&bad_lines);
            for l in le_lines {
                histogram.push_str(&l);
            }
        }
    }
    format!(
        "# TYPE istio_requests counter\n{requests}# TYPE istio_request_duration_milliseconds histogram\n{histogram}# EOF\n"
    )
}

/// A real Prometheus loaded with [`judge_openmetrics`] around `now` (whole minutes, so that
/// backtest and calibration moments fall where a test expects).
pub struct Scenarios {
    /// The server.
    pub prometheus: super::prom::Prometheus,
    /// Unix seconds the data is generated around.
    pub now: i64,
}

impl Scenarios {
    /// Generate the data around the current minute and start Prometheus on it.
    pub fn start() -> Scenarios {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let now = now - now % 60;
        Scenarios {
            prometheus: super::prom::Prometheus::start(&judge_openmetrics(now)),
            now,
        }
    }

    /// `now` plus `minutes` (negative: the past), as RFC 3339.
    pub fn at(&self, minutes: i64) -> String {
        chrono::DateTime::from_timestamp(self.now + minutes * 60, 0)
            .unwrap()
            .to_rfc3339()
    }
}

/// One real Prometheus per test binary, loaded with the judge scenarios ending now.
pub fn shared_prometheus() -> &'static super::prom::Prometheus {
    static P: std::sync::OnceLock<super::prom::Prometheus> = std::sync::OnceLock::new();
    P.get_or_init(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        super::prom::Prometheus::start(&judge_openmetrics(now))
    })
}
