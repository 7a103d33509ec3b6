//! The hash chain of the PostgreSQL ledger: each row's hash covers its content and the
//! hashes of the row before it in the whole ledger and in its promotion, so changing or
//! removing a row breaks the chain at that row or the next one.

use chrono::SecondsFormat;
use sha2::{Digest, Sha256};

use super::Entry;

/// A stored row: the entry and its chain links.
#[derive(Debug, Clone)]
pub struct Row {
    /// The entry (with its `seq`).
    pub entry: Entry,
    /// The body exactly as stored.
    pub body: String,
    /// Hash of the row before it in the ledger (empty for the first).
    pub prev_hash: String,
    /// Hash of the row before it in its promotion (empty for the first).
    pub prev_promotion_hash: String,
    /// This row's hash.
    pub hash: String,
}

/// The hash of a row with these links and this content, as lowercase hex.
pub fn hash(prev: &str, prev_promotion: &str, e: &Entry, body: &str) -> String {
    let mut h = Sha256::new();
    for part in [
        prev,
        prev_promotion,
        &e.time.to_rfc3339_opts(SecondsFormat::Micros, true),
        &e.promotion,
        &e.event,
        body,
    ] {
        h.update(part.as_bytes());
        h.update([0x1f]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The first row whose chain is broken, and how; `None` when every row checks out.
pub fn verify(rows: &[Row]) -> Option<(i64, String)> {
    let mut last = String::new();
    let mut last_of: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    for r in rows {
        let seq = r.entry.seq.unwrap_or(-1);
        let what = format!(
            "row {seq} ({} {} at {})",
            r.entry.promotion,
            r.entry.event,
            r.entry.time.to_rfc3339_opts(SecondsFormat::Micros, true)
        );
        if r.prev_hash != last {
            return Some((
                seq,
                format!("{what}: the row before it in the ledger is missing or was changed"),
            ));
        }
        let prev_p = last_of
            .get(r.entry.promotion.as_str())
            .copied()
            .unwrap_or("");
        if r.prev_promotion_hash != prev_p {
            return Some((
                seq,
                format!("{what}: the row before it in its promotion is missing or was changed"),
            ));
        }
        if hash(&r.prev_hash, &r.prev_promotion_hash, &r.entry, &r.body) != r.hash {
            return Some((seq, format!("{what}: its content was changed")));
        }
        last = r.hash.clone();
        last_of.insert(&r.entry.promotion, &r.hash);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<Row> {
        let mut out: Vec<Row> = Vec::new();
        let mut last = String::new();
        let mut last_of = std::collections::HashMap::<String, String>::new();
        for (i, p) in ["a", "b", "a", "a", "b"].iter().enumerate() {
            let mut e = Entry::new(
                p,
                serde_json::json!({"event": "deployment.step", "index": i}),
            );
            e.seq = Some(i as i64 + 1);
            let body = e.body.to_string();
            let prev_p = last_of.get(*p).cloned().unwrap_or_default();
            let h = hash(&last, &prev_p, &e, &body);
            out.push(Row {
                entry: e,
                body,
                prev_hash: last.clone(),
                prev_promotion_hash: prev_p,
                hash: h.clone(),
            });
            last = h.clone();
            last_of.insert(p.to_string(), h);
        }
        out
    }

    #[test]
    fn an_intact_ledger_verifies() {
        assert_eq!(verify(&rows()), None);
    }

    #[test]
    fn a_changed_row_is_named() {
        let mut r = rows();
        r[2].body = r[2].body.replace("\"index\":2", "\"index\":9");
        let (seq, why) = verify(&r).expect("broken");
        assert_eq!(seq, 3);
        assert!(why.contains("content was changed"), "{why}");
    }

    #[test]
    fn a_removed_row_breaks_the_next() {
        let mut r = rows();
        r.remove(1);
        let (seq, why) = verify(&r).expect("broken");
        assert_eq!(seq, 3);
        assert!(why.contains("missing or was changed"), "{why}");
    }

    #[test]
    fn the_started_event_takes_the_platforms_name() {
        let e = Entry::new("p", serde_json::json!({"event": "deployment.started"}));
        assert_eq!(e.event, "deployment.created");
        assert_eq!(e.body["event"], "deployment.created");
        assert_eq!(e.body["promotion"], "p");
    }
}
