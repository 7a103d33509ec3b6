//! Folding several PromQL queries into one request.
//!
//! Two shapes are supported:
//!
//! * [`merge_variants`]: a Judge spec renders every metric query once for the canary and once for
//!   the baseline, the two texts differing only in the value of one label matcher. The merged
//!   query selects both values with a regex matcher and keeps that label on every result series,
//!   so the answer splits back into the two original answers.
//! * [`tag_union`]: unrelated instant-vector queries (SLO burn-rate error and total counts over
//!   several windows) sent as one query whose result series are tagged with the part they came
//!   from.
//!
//! Both functions return `None` whenever they cannot prove the combined query answers exactly
//! what the separate queries would have; the caller then sends the queries separately.

use std::collections::HashSet;

use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::token::T_EQL_REGEX;
use promql_parser::parser::value::ValueType;
use promql_parser::parser::{
    self, AggregateExpr, BinaryExpr, Call, Expr, LabelModifier, StringLiteral,
    VectorMatchFillValues, VectorSelector,
};

/// Label name recommended for [`tag_union`].
///
/// Deliberately not `__`-prefixed: Prometheus reserves that namespace for internal labels, and
/// although query results currently keep such labels, proxies and compatible backends may strip
/// or reject them. The name is specific enough not to collide with a label of stored series.
pub const TAG_LABEL: &str = "canary_engine_part";

/// Both variants' queries as one request.
///
/// Every series of the merged query's result carries `label`: the series whose value is
/// `canary` form the canary query's answer and those whose value is `baseline` form the
/// baseline's. Each such series has the labels the original query would have returned, plus
/// `label` where the original aggregated it away; drop it if the exact original label set is
/// needed. Should the merged query fail (e.g. a matching error), send the two originals instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergedVariants {
    /// The merged PromQL text.
    pub query: String,
    /// The label whose value tells the variants apart.
    pub label: String,
    /// Value of `label` on the canary's series.
    pub canary: String,
    /// Value of `label` on the baseline's series.
    pub baseline: String,
}

/// Merges the canary and baseline renderings of one query.
///
/// The two texts must parse to the same expression except for equality matchers on a single
/// label, whose value is one constant in `canary` and another in `baseline`; every selector must
/// carry exactly one such matcher. Every operation on the way to the result must keep that label
/// on the series (aggregations get it added to their grouping, `on (...)` matching gets it added
/// to its list), and only functions known to keep series labels are accepted. Anything else,
/// including queries whose rewritten form would not re-parse to the rewritten expression, yields
/// `None`.
pub fn merge_variants(canary: &str, baseline: &str) -> Option<MergedVariants> {
    let mut expr = parser::parse(canary).ok()?;
    let other = parser::parse(baseline).ok()?;

    let mut differ = Differ::default();
    if !differ.expr(&expr, &other) {
        return None;
    }
    let diff = differ.found?;
    if !is_ordinary_label_name(&diff.label)
        || !is_safe_value(&diff.canary)
        || !is_safe_value(&diff.baseline)
    {
        return None;
    }

    let either = format!(
        "{}|{}",
        escape_regex(&diff.canary),
        escape_regex(&diff.baseline)
    );
    let rewriter = Rewriter {
        label: &diff.label,
        canary: &diff.canary,
        merged: Matcher::new_matcher(T_EQL_REGEX, diff.label.clone(), either).ok()?,
    };
    match rewriter.expr(&mut expr)? {
        Kind::Vector | Kind::Matrix => {}
        Kind::Scalar | Kind::String => return None,
    }

    let query = render_checked(&mut expr)?;
    Some(MergedVariants {
        query,
        label: diff.label,
        canary: diff.canary,
        baseline: diff.baseline,
    })
}

/// Combines instant-vector queries into one whose series are tagged with their part.
///
/// `parts` holds `(tag, query)` pairs; each query's series come back with label `tag_label` set
/// to its tag (`label_replace(<query>, tag_label, tag, "", "")`, the parts joined with `or`).
/// Because every part gets a distinct tag, `or` never drops a series. Use [`TAG_LABEL`] unless
/// there is a reason not to.
///
/// `None` when there are no parts, a part is not an instant-vector expression or already
/// mentions `tag_label`, a tag repeats, or a tag or label name is unsafe: tags must be
/// non-empty without `$` (label_replace would expand it) or control characters, and the label
/// must be a plain label name outside the reserved `__` namespace.
pub fn tag_union(tag_label: &str, parts: &[(&str, &str)]) -> Option<String> {
    if parts.is_empty() || !is_ordinary_label_name(tag_label) {
        return None;
    }
    let mut tags = HashSet::new();
    let mut parsed = Vec::with_capacity(parts.len());
    for &(tag, query) in parts {
        if !is_safe_value(tag) || tag.contains('$') || !tags.insert(tag) {
            return None;
        }
        let mut expr = parser::parse(query).ok()?;
        if expr.value_type() != ValueType::Vector {
            return None;
        }
        let rendered = render_checked(&mut expr)?;
        if query.contains(tag_label) || rendered.contains(tag_label) {
            return None;
        }
        parsed.push((tag, expr, rendered));
    }

    let label_literal = string_literal(tag_label);
    let query = parsed
        .iter()
        .map(|(tag, _, rendered)| {
            format!(
                "label_replace({rendered}, {label_literal}, {}, \"\", \"\")",
                string_literal(tag)
            )
        })
        .collect::<Vec<_>>()
        .join(" or ");

    // The union must parse back into exactly the intended calls, in order.
    let union = parser::parse(&query).ok()?;
    let mut leaves = Vec::with_capacity(parsed.len());
    collect_or_operands(&union, &mut leaves);
    let intact = leaves.len() == parsed.len()
        && leaves
            .iter()
            .zip(&parsed)
            .all(|(leaf, (tag, expr, _))| is_tagging_call(leaf, tag_label, tag, expr));
    intact.then_some(query)
}

/// The one label whose matcher value differs between the variants.
#[derive(Debug)]
struct VariantDiff {
    label: String,
    canary: String,
    baseline: String,
}

/// Walks the canary and baseline expressions side by side, accepting only differences in
/// equality matchers of one label with one pair of values, exactly one per selector.
#[derive(Debug, Default)]
struct Differ {
    found: Option<VariantDiff>,
}

impl Differ {
    fn expr(&mut self, canary: &Expr, baseline: &Expr) -> bool {
        match (canary, baseline) {
            (Expr::Aggregate(c), Expr::Aggregate(b)) => {
                c.op == b.op
                    && c.modifier == b.modifier
                    && match (&c.param, &b.param) {
                        (None, None) => true,
                        (Some(c), Some(b)) => self.expr(c, b),
                        _ => false,
                    }
                    && self.expr(&c.expr, &b.expr)
            }
            (Expr::Unary(c), Expr::Unary(b)) => self.expr(&c.expr, &b.expr),
            (Expr::Binary(c), Expr::Binary(b)) => {
                c.op == b.op
                    && c.modifier == b.modifier
                    && self.expr(&c.lhs, &b.lhs)
                    && self.expr(&c.rhs, &b.rhs)
            }
            (Expr::Paren(c), Expr::Paren(b)) => self.expr(&c.expr, &b.expr),
            (Expr::Subquery(c), Expr::Subquery(b)) => {
                c.offset == b.offset
                    && c.at == b.at
                    && c.range == b.range
                    && c.step == b.step
                    && self.expr(&c.expr, &b.expr)
            }
            (Expr::NumberLiteral(c), Expr::NumberLiteral(b)) => c == b,
            (Expr::StringLiteral(c), Expr::StringLiteral(b)) => c == b,
            (Expr::VectorSelector(c), Expr::VectorSelector(b)) => self.selector(c, b),
            (Expr::MatrixSelector(c), Expr::MatrixSelector(b)) => {
                c.range == b.range && self.selector(&c.vs, &b.vs)
            }
            (Expr::Call(c), Expr::Call(b)) => {
                c.func == b.func
                    && c.args.args.len() == b.args.args.len()
                    && c.args
                        .args
                        .iter()
                        .zip(&b.args.args)
                        .all(|(c, b)| self.expr(c, b))
            }
            _ => false,
        }
    }

    fn selector(&mut self, canary: &VectorSelector, baseline: &VectorSelector) -> bool {
        // `or`-joined matcher groups are a parser extension Prometheus does not have.
        if canary.name != baseline.name
            || canary.offset != baseline.offset
            || canary.at != baseline.at
            || !canary.matchers.or_matchers.is_empty()
            || !baseline.matchers.or_matchers.is_empty()
            || canary.matchers.matchers.len() != baseline.matchers.matchers.len()
        {
            return false;
        }
        let mut differing = 0;
        for (c, b) in canary
            .matchers
            .matchers
            .iter()
            .zip(&baseline.matchers.matchers)
        {
            if c == b {
                continue;
            }
            if !self.record(c, b) {
                return false;
            }
            differing += 1;
        }
        differing == 1
    }

    fn record(&mut self, canary: &Matcher, baseline: &Matcher) -> bool {
        let both_equality = canary.op == MatchOp::Equal && baseline.op == MatchOp::Equal;
        if !both_equality || canary.name != baseline.name || canary.value == baseline.value {
            return false;
        }
        match &self.found {
            Some(found) => {
                found.label == canary.name
                    && found.canary == canary.value
                    && found.baseline == baseline.value
            }
            None => {
                self.found = Some(VariantDiff {
                    label: canary.name.clone(),
                    canary: canary.value.clone(),
                    baseline: baseline.value.clone(),
                });
                true
            }
        }
    }
}

/// What an expression evaluates to. Vectors and matrices always carry the variant label;
/// scalars and strings never involve a selector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Scalar,
    String,
    Vector,
    Matrix,
}

/// Aggregation operators accepted, all of which group by their `by`/`without` clause.
const AGGREGATIONS: &[&str] = &[
    "sum",
    "avg",
    "count",
    "min",
    "max",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "limitk",
    "limit_ratio",
];

/// Functions whose output series keep every label of their input series except possibly the
/// metric name. `label_replace` and `label_join` are handled separately.
const LABEL_KEEPING_FUNCTIONS: &[&str] = &[
    // Range-vector functions.
    "rate",
    "irate",
    "increase",
    "delta",
    "idelta",
    "deriv",
    "predict_linear",
    "resets",
    "changes",
    "avg_over_time",
    "min_over_time",
    "max_over_time",
    "sum_over_time",
    "count_over_time",
    "quantile_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "last_over_time",
    "first_over_time",
    "present_over_time",
    "mad_over_time",
    "ts_of_first_over_time",
    "ts_of_last_over_time",
    "ts_of_max_over_time",
    "ts_of_min_over_time",
    // Histogram functions (classic buckets are grouped by all labels but `le`).
    "histogram_quantile",
    "histogram_count",
    "histogram_sum",
    "histogram_fraction",
    "histogram_avg",
    "histogram_stddev",
    "histogram_stdvar",
    // Per-sample math.
    "abs",
    "ceil",
    "floor",
    "round",
    "clamp",
    "clamp_min",
    "clamp_max",
    "exp",
    "ln",
    "log2",
    "log10",
    "sqrt",
    "sgn",
    "timestamp",
    // Ordering only.
    "sort",
    "sort_desc",
    "sort_by_label",
    "sort_by_label_desc",
];

/// Functions that write the label named by their second argument.
const LABEL_WRITING_FUNCTIONS: &[&str] = &["label_replace", "label_join"];

/// Rewrites the canary expression in place into the merged one, checking that the variant
/// label survives every step.
struct Rewriter<'a> {
    label: &'a str,
    canary: &'a str,
    /// Matcher selecting both variants, replacing the canary's equality matcher.
    merged: Matcher,
}

impl Rewriter<'_> {
    fn expr(&self, expr: &mut Expr) -> Option<Kind> {
        match expr {
            Expr::NumberLiteral(_) => Some(Kind::Scalar),
            Expr::StringLiteral(_) => Some(Kind::String),
            Expr::Paren(paren) => self.expr(&mut paren.expr),
            Expr::Unary(unary) => match self.expr(&mut unary.expr)? {
                kind @ (Kind::Scalar | Kind::Vector) => Some(kind),
                Kind::String | Kind::Matrix => None,
            },
            Expr::VectorSelector(selector) => {
                self.selector(selector)?;
                Some(Kind::Vector)
            }
            Expr::MatrixSelector(matrix) => {
                self.selector(&mut matrix.vs)?;
                Some(Kind::Matrix)
            }
            Expr::Subquery(subquery) => match self.expr(&mut subquery.expr)? {
                Kind::Vector => Some(Kind::Matrix),
                _ => None,
            },
            Expr::Call(call) => self.call(call),
            Expr::Aggregate(aggregate) => self.aggregate(aggregate),
            Expr::Binary(binary) => self.binary(binary),
            Expr::Extension(_) => None,
        }
    }

    fn selector(&self, selector: &mut VectorSelector) -> Option<()> {
        let mut ours = selector
            .matchers
            .matchers
            .iter_mut()
            .filter(|m| m.name == self.label);
        let matcher = ours.next()?;
        if matcher.op != MatchOp::Equal || matcher.value != self.canary {
            return None;
        }
        *matcher = self.merged.clone();
        ours.next().is_none().then_some(())
    }

    fn call(&self, call: &mut Call) -> Option<Kind> {
        let name = call.func.name;
        if LABEL_WRITING_FUNCTIONS.contains(&name) {
            match call.args.args.get(1).map(AsRef::as_ref) {
                Some(Expr::StringLiteral(destination)) if destination.val != self.label => {}
                _ => return None,
            }
        } else if !LABEL_KEEPING_FUNCTIONS.contains(&name) {
            return None;
        }
        if call.func.return_type != ValueType::Vector {
            return None;
        }
        // Exactly one argument supplies the series; the rest are constant parameters.
        let mut series_args = 0;
        for arg in &mut call.args.args {
            match self.expr(arg)? {
                Kind::Vector | Kind::Matrix => series_args += 1,
                Kind::Scalar | Kind::String => {}
            }
        }
        (series_args == 1).then_some(Kind::Vector)
    }

    fn aggregate(&self, aggregate: &mut AggregateExpr) -> Option<Kind> {
        let op = aggregate.op.to_string();
        if !AGGREGATIONS.contains(&op.as_str()) {
            return None;
        }
        if let Some(param) = &mut aggregate.param {
            match self.expr(param)? {
                Kind::Scalar => {}
                // count_values writes the label its parameter names.
                Kind::String => match param.as_ref() {
                    Expr::StringLiteral(written) if written.val != self.label => {}
                    _ => return None,
                },
                Kind::Vector | Kind::Matrix => return None,
            }
        }
        if self.expr(&mut aggregate.expr)? != Kind::Vector {
            return None;
        }
        // Group by the variant label too, so the variants are aggregated (or ranked) apart.
        match &mut aggregate.modifier {
            None => aggregate.modifier = Some(LabelModifier::include(vec![self.label])),
            Some(LabelModifier::Include(by)) => self.add_label(&mut by.labels),
            Some(LabelModifier::Exclude(without)) if self.listed(&without.labels) => return None,
            Some(LabelModifier::Exclude(_)) => {}
        }
        Some(Kind::Vector)
    }

    fn binary(&self, binary: &mut BinaryExpr) -> Option<Kind> {
        let lhs = self.expr(&mut binary.lhs)?;
        let rhs = self.expr(&mut binary.rhs)?;
        let has_matching = binary
            .modifier
            .as_ref()
            .is_some_and(|m| m.matching.is_some());
        match (lhs, rhs) {
            (Kind::Scalar, Kind::Scalar) if !has_matching => Some(Kind::Scalar),
            (Kind::Vector, Kind::Scalar) | (Kind::Scalar, Kind::Vector) if !has_matching => {
                Some(Kind::Vector)
            }
            (Kind::Vector, Kind::Vector) => {
                self.vector_matching(binary)?;
                Some(Kind::Vector)
            }
            _ => None,
        }
    }

    /// Both operands carry the label, so it must take part in the matching: it does by default
    /// and under `ignoring`, and is added to an `on` list.
    fn vector_matching(&self, binary: &mut BinaryExpr) -> Option<()> {
        let Some(modifier) = &mut binary.modifier else {
            return Some(());
        };
        if modifier.fill_values != VectorMatchFillValues::default() {
            return None;
        }
        // group_left/group_right copying the label from the "one" side.
        if modifier
            .card
            .labels()
            .is_some_and(|copied| self.listed(&copied.labels))
        {
            return None;
        }
        match &mut modifier.matching {
            Some(LabelModifier::Include(on)) => self.add_label(&mut on.labels),
            Some(LabelModifier::Exclude(ignoring)) if self.listed(&ignoring.labels) => return None,
            Some(LabelModifier::Exclude(_)) | None => {}
        }
        Some(())
    }

    fn listed(&self, labels: &[String]) -> bool {
        labels.iter().any(|l| l == self.label)
    }

    fn add_label(&self, labels: &mut Vec<String>) {
        if !self.listed(labels) {
            labels.push(self.label.to_owned());
        }
    }
}

/// Renders `expr` as PromQL text, provided the text parses back to the same expression.
///
/// The renderer lists each selector's matchers sorted, so `expr` is put in that order first; the
/// order of matchers has no meaning.
fn render_checked(expr: &mut Expr) -> Option<String> {
    sort_matchers(expr);
    let text = expr.to_string();
    (parser::parse(&text).ok()? == *expr).then_some(text)
}

fn sort_matchers(expr: &mut Expr) {
    let sort = |selector: &mut VectorSelector| {
        selector
            .matchers
            .matchers
            .sort_by_cached_key(ToString::to_string);
    };
    match expr {
        Expr::VectorSelector(selector) => sort(selector),
        Expr::MatrixSelector(matrix) => sort(&mut matrix.vs),
        Expr::Aggregate(aggregate) => {
            if let Some(param) = &mut aggregate.param {
                sort_matchers(param);
            }
            sort_matchers(&mut aggregate.expr);
        }
        Expr::Unary(unary) => sort_matchers(&mut unary.expr),
        Expr::Binary(binary) => {
            sort_matchers(&mut binary.lhs);
            sort_matchers(&mut binary.rhs);
        }
        Expr::Paren(paren) => sort_matchers(&mut paren.expr),
        Expr::Subquery(subquery) => sort_matchers(&mut subquery.expr),
        Expr::Call(call) => call.args.args.iter_mut().for_each(|arg| sort_matchers(arg)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

/// Whether `name` is a label name every Prometheus version accepts unquoted, outside the `__`
/// namespace reserved for internal labels such as `__name__`.
fn is_ordinary_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

/// Whether a label value can be put in a merged query: non-empty (an empty value would also
/// select series lacking the label) and free of control characters, whose escaping differs
/// between PromQL implementations.
fn is_safe_value(value: &str) -> bool {
    !value.is_empty() && !value.chars().any(char::is_control)
}

/// Escapes the characters RE2 and Rust's regex syntax treat specially, so the value matches
/// only itself.
fn escape_regex(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        if r"\.+*?()|[]{}^$".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// A PromQL double-quoted string literal holding `value`.
fn string_literal(value: &str) -> String {
    StringLiteral {
        val: value.to_owned(),
    }
    .to_string()
}

/// Collects the operands of a chain of plain `or` operations, left to right.
fn collect_or_operands<'e>(expr: &'e Expr, out: &mut Vec<&'e Expr>) {
    match expr {
        Expr::Binary(binary)
            if binary.op.to_string() == "or"
                && binary
                    .modifier
                    .as_ref()
                    .is_none_or(|m| m.matching.is_none()) =>
        {
            collect_or_operands(&binary.lhs, out);
            collect_or_operands(&binary.rhs, out);
        }
        other => out.push(other),
    }
}

/// Whether `expr` is `label_replace(part, label, tag, "", "")`.
fn is_tagging_call(expr: &Expr, label: &str, tag: &str, part: &Expr) -> bool {
    let Expr::Call(call) = expr else {
        return false;
    };
    let string_is = |index: usize, expected: &str| matches!(call.args.args.get(index).map(AsRef::as_ref), Some(Expr::StringLiteral(s)) if s.val == expected);
    call.func.name == "label_replace"
        && call.args.args.len() == 5
        && call.args.args[0].as_ref() == part
        && string_is(1, label)
        && string_is(2, tag)
        && string_is(3, "")
        && string_is(4, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "rollouts_pod_template_hash";

    /// Renders a query template for both variants.
    fn variants(template: &str, canary: &str, baseline: &str) -> (String, String) {
        (
            template.replace("{V}", canary),
            template.replace("{V}", baseline),
        )
    }

    fn merge(template: &str, canary: &str, baseline: &str) -> Option<MergedVariants> {
        let (c, b) = variants(template, canary, baseline);
        merge_variants(&c, &b)
    }

    fn parsed(query: &str) -> Expr {
        parser::parse(query).unwrap_or_else(|e| panic!("{query}: {e}"))
    }

    /// Asserts the merge of `template` succeeds and means the same as `expected`.
    fn assert_merges(template: &str, label: &str, canary: &str, baseline: &str, expected: &str) {
        let merged = merge(template, canary, baseline)
            .unwrap_or_else(|| panic!("expected {template} to merge"));
        assert_eq!(merged.label, label);
        assert_eq!(merged.canary, canary);
        assert_eq!(merged.baseline, baseline);
        assert_eq!(
            parsed(&merged.query),
            parsed(expected),
            "merged: {}",
            merged.query
        );
    }

    fn assert_rejected(template: &str, canary: &str, baseline: &str) {
        let result = merge(template, canary, baseline);
        assert!(result.is_none(), "expected None, got {result:?}");
    }

    #[test]
    fn raw_selector_gets_regex_matcher() {
        let template = r#"istio_requests_total{reporter="destination", destination_service_name="svc", rollouts_pod_template_hash="{V}", response_code=~"5.."}"#;
        let merged = merge(template, "aaa", "bbb").expect("merges");
        assert_eq!(
            merged.query,
            r#"istio_requests_total{destination_service_name="svc",reporter="destination",response_code=~"5..",rollouts_pod_template_hash=~"aaa|bbb"}"#
        );
        assert_eq!(
            merged,
            MergedVariants {
                query: merged.query.clone(),
                label: H.into(),
                canary: "aaa".into(),
                baseline: "bbb".into(),
            }
        );
    }

    #[test]
    fn by_list_gains_the_label() {
        let merged = merge(
            r#"sum by (le, pod) (istio_request_duration_milliseconds_bucket{reporter="destination", rollouts_pod_template_hash="{V}"})"#,
            "aaa",
            "bbb",
        )
        .expect("merges");
        assert_eq!(
            merged.query,
            r#"sum by (le, pod, rollouts_pod_template_hash) (istio_request_duration_milliseconds_bucket{reporter="destination",rollouts_pod_template_hash=~"aaa|bbb"})"#
        );
    }

    #[test]
    fn ungrouped_aggregation_becomes_by_label() {
        let merged = merge("sum(increase(req{h=\"{V}\"}[30s]))", "aaa", "bbb").expect("merges");
        assert_eq!(
            merged.query,
            r#"sum by (h) (increase(req{h=~"aaa|bbb"}[30s]))"#
        );
    }

    #[test]
    fn trailing_by_clause_and_empty_by() {
        assert_merges(
            "sum(x{h=\"{V}\"}) by (pod)",
            "h",
            "a",
            "b",
            r#"sum by (pod, h) (x{h=~"a|b"})"#,
        );
        assert_merges(
            "sum by () (x{h=\"{V}\"})",
            "h",
            "a",
            "b",
            r#"sum by (h) (x{h=~"a|b"})"#,
        );
        assert_merges(
            "sum by (h) (x{h=\"{V}\"})",
            "h",
            "a",
            "b",
            r#"sum by (h) (x{h=~"a|b"})"#,
        );
    }

    #[test]
    fn histogram_quantile_over_summed_buckets() {
        assert_merges(
            "histogram_quantile(0.99, sum by (le) (rate(x_bucket{h=\"{V}\"}[1m])))",
            "h",
            "a",
            "b",
            r#"histogram_quantile(0.99, sum by (le, h) (rate(x_bucket{h=~"a|b"}[1m])))"#,
        );
    }

    #[test]
    fn ratio_of_sums() {
        assert_merges(
            "sum(rate(err{h=\"{V}\"}[1m])) / sum(rate(req{h=\"{V}\"}[1m]))",
            "h",
            "a",
            "b",
            r#"sum by (h) (rate(err{h=~"a|b"}[1m])) / sum by (h) (rate(req{h=~"a|b"}[1m]))"#,
        );
    }

    #[test]
    fn on_list_gains_the_label() {
        assert_merges(
            "sum by (pod) (rate(err{h=\"{V}\"}[1m])) / on (pod) group_left sum by (pod) (rate(req{h=\"{V}\"}[1m]))",
            "h",
            "a",
            "b",
            r#"sum by (pod, h) (rate(err{h=~"a|b"}[1m])) / on (pod, h) group_left () sum by (pod, h) (rate(req{h=~"a|b"}[1m]))"#,
        );
        assert_merges(
            "x{h=\"{V}\"} / on() group_left y{h=\"{V}\"}",
            "h",
            "a",
            "b",
            r#"x{h=~"a|b"} / on (h) group_left () y{h=~"a|b"}"#,
        );
        assert_merges(
            "x{h=\"{V}\"} and on(pod) y{h=\"{V}\"}",
            "h",
            "a",
            "b",
            r#"x{h=~"a|b"} and on (pod, h) y{h=~"a|b"}"#,
        );
    }

    #[test]
    fn ignoring_keeps_the_label_unless_listed() {
        assert_merges(
            "x{h=\"{V}\"} / ignoring(code) group_left y{h=\"{V}\"}",
            "h",
            "a",
            "b",
            r#"x{h=~"a|b"} / ignoring (code) group_left () y{h=~"a|b"}"#,
        );
        assert_rejected("x{h=\"{V}\"} / ignoring(h) y{h=\"{V}\"}", "a", "b");
        assert_rejected(
            "x{h=\"{V}\"} / on(pod) group_left(h) y{h=\"{V}\"}",
            "a",
            "b",
        );
    }

    #[test]
    fn set_operators() {
        assert_merges(
            "x{h=\"{V}\"} or y{h=\"{V}\"}",
            "h",
            "a",
            "b",
            r#"x{h=~"a|b"} or y{h=~"a|b"}"#,
        );
        assert_merges(
            "x{h=\"{V}\"} unless y{h=\"{V}\"}",
            "h",
            "a",
            "b",
            r#"x{h=~"a|b"} unless y{h=~"a|b"}"#,
        );
        assert_rejected("x{h=\"{V}\"} or ignoring(h) y{h=\"{V}\"}", "a", "b");
    }

    #[test]
    fn without_keeps_the_label_unless_listed() {
        assert_merges(
            "sum without (pod) (x{h=\"{V}\"})",
            "h",
            "a",
            "b",
            r#"sum without (pod) (x{h=~"a|b"})"#,
        );
        assert_rejected("sum without (h, pod) (x{h=\"{V}\"})", "a", "b");
    }

    #[test]
    fn ranking_and_parameterised_aggregations_group_by_the_label() {
        assert_merges(
            "topk(3, rate(x{h=\"{V}\"}[5m]))",
            "h",
            "a",
            "b",
            r#"topk by (h) (3, rate(x{h=~"a|b"}[5m]))"#,
        );
        assert_merges(
            "bottomk by (pod) (1, x{h=\"{V}\"})",
            "h",
            "a",
            "b",
            r#"bottomk by (pod, h) (1, x{h=~"a|b"})"#,
        );
        assert_merges(
            "quantile(0.9, x{h=\"{V}\"})",
            "h",
            "a",
            "b",
            r#"quantile by (h) (0.9, x{h=~"a|b"})"#,
        );
        assert_merges(
            "count_values(\"code\", x{h=\"{V}\"})",
            "h",
            "a",
            "b",
            r#"count_values by (h) ("code", x{h=~"a|b"})"#,
        );
        assert_rejected("count_values(\"h\", x{h=\"{V}\"})", "a", "b");
        // A parameter must not depend on the variant.
        assert_rejected("topk(scalar(n{h=\"{V}\"}), x{h=\"{V}\"})", "a", "b");
    }

    #[test]
    fn every_aggregation_operator_is_grouped() {
        for op in ["avg", "count", "min", "max", "group", "stddev", "stdvar"] {
            assert_merges(
                &format!("{op}(x{{h=\"{{V}}\"}})"),
                "h",
                "a",
                "b",
                &format!("{op} by (h) (x{{h=~\"a|b\"}})"),
            );
        }
    }

    #[test]
    fn label_keeping_functions() {
        for template in [
            "abs(x{h=\"{V}\"})",
            "clamp(x{h=\"{V}\"}, 0, 1)",
            "round(x{h=\"{V}\"}, 0.1)",
            "predict_linear(x{h=\"{V}\"}[1h], 3600)",
            "quantile_over_time(0.5, x{h=\"{V}\"}[10m])",
            "count_over_time(x{h=\"{V}\"}[10m])",
            "histogram_fraction(0, 0.25, rate(x{h=\"{V}\"}[5m]))",
            "sort_desc(x{h=\"{V}\"})",
            "timestamp(x{h=\"{V}\"})",
            "label_replace(x{h=\"{V}\"}, \"svc\", \"$1\", \"pod\", \"(.*)-.*\")",
            "label_join(x{h=\"{V}\"}, \"id\", \"-\", \"pod\", \"h\")",
        ] {
            let merged =
                merge(template, "a", "b").unwrap_or_else(|| panic!("expected {template} to merge"));
            assert!(merged.query.contains(r#"h=~"a|b""#), "{}", merged.query);
        }
    }

    #[test]
    fn functions_that_lose_or_forge_series_are_rejected() {
        for template in [
            "sum(x{h=\"{V}\"}) or vector(0)",
            "scalar(sum(x{h=\"{V}\"}))",
            "x{h=\"{V}\"} * scalar(y{h=\"{V}\"})",
            "absent(x{h=\"{V}\"})",
            "absent_over_time(x{h=\"{V}\"}[5m])",
            "x{h=\"{V}\"} - time()",
            "label_replace(x{h=\"{V}\"}, \"h\", \"z\", \"\", \"\")",
            "label_join(x{h=\"{V}\"}, \"h\", \"-\", \"pod\")",
            "day_of_week(x{h=\"{V}\"})",
            "histogram_quantiles(x{h=\"{V}\"}, \"q\", 0.5, 0.9)",
        ] {
            assert_rejected(template, "a", "b");
        }
    }

    #[test]
    fn subqueries_offsets_and_at_are_kept() {
        assert_merges(
            "max_over_time(sum(rate(x{h=\"{V}\"}[1m]))[10m:30s] offset 5m)",
            "h",
            "a",
            "b",
            r#"max_over_time(sum by (h) (rate(x{h=~"a|b"}[1m]))[10m:30s] offset 5m)"#,
        );
        assert_merges(
            "rate(x{h=\"{V}\"}[90s] @ 1700000000 offset 1h30m)",
            "h",
            "a",
            "b",
            r#"rate(x{h=~"a|b"}[1m30s] @ 1700000000 offset 90m)"#,
        );
        assert_merges(
            "x{h=\"{V}\"} @ start()",
            "h",
            "a",
            "b",
            r#"x{h=~"a|b"} @ start()"#,
        );
    }

    #[test]
    fn scalar_arithmetic_and_comparisons() {
        assert_merges(
            "100 * (1 - sum(rate(ok{h=\"{V}\"}[5m])) / sum(rate(all{h=\"{V}\"}[5m])))",
            "h",
            "a",
            "b",
            r#"100 * (1 - sum by (h) (rate(ok{h=~"a|b"}[5m])) / sum by (h) (rate(all{h=~"a|b"}[5m])))"#,
        );
        assert_merges(
            "-x{h=\"{V}\"} > bool 2 ^ 3",
            "h",
            "a",
            "b",
            r#"-x{h=~"a|b"} > bool 2 ^ 3"#,
        );
    }

    #[test]
    fn regex_metacharacters_in_values_are_escaped() {
        let merged = merge("x{h=\"{V}\"}", "a.b", "a|b").expect("merges");
        assert_eq!(merged.query, r#"x{h=~"a\\.b|a\\|b"}"#);
        assert_eq!(merged.canary, "a.b");
        assert_eq!(merged.baseline, "a|b");

        let merged = merge(r#"x{h="{V}"}"#, r#"a\"b"#, r#"c\\d"#).expect("merges");
        assert_eq!(merged.canary, "a\"b");
        assert_eq!(merged.baseline, r"c\d");
        assert_eq!(merged.query, r#"x{h=~"a\"b|c\\\\d"}"#);

        let merged = merge("x{h=\"{V}\"}", "(x)+[y]{2}^$?*", "b").expect("merges");
        assert_eq!(
            merged.query,
            r#"x{h=~"\\(x\\)\\+\\[y\\]\\{2\\}\\^\\$\\?\\*|b"}"#
        );
    }

    #[test]
    fn escaped_regex_matches_exactly_the_two_values() {
        for (a, b) in [
            ("a.b", "a|b"),
            ("a\"b", "c\\d"),
            ("x+y", "x*y"),
            ("{1}", "[a-z]"),
        ] {
            let merged = merge_variants(
                &format!("x{{h={}}}", string_literal(a)),
                &format!("x{{h={}}}", string_literal(b)),
            )
            .expect("merges");
            let Expr::VectorSelector(selector) = parsed(&merged.query) else {
                panic!("not a selector: {}", merged.query);
            };
            let matcher = &selector.matchers.matchers[0];
            for probe in [a, b] {
                assert!(matcher.is_match(probe), "{probe} vs {}", merged.query);
            }
            for probe in ["", "ab", "a", "b", "axb", "xxy", "c\\\\d", "1", "a.b|a|b"] {
                if probe != a && probe != b {
                    assert!(!matcher.is_match(probe), "{probe} vs {}", merged.query);
                }
            }
        }
    }

    #[test]
    fn identical_values_are_rejected() {
        assert_rejected("x{h=\"{V}\"}", "a", "a");
    }

    #[test]
    fn two_differing_labels_are_rejected() {
        assert!(merge_variants(r#"x{h="a", pod="p1"}"#, r#"x{h="b", pod="p2"}"#).is_none());
        assert!(merge_variants(r#"x{h="a"} / y{g="a"}"#, r#"x{h="b"} / y{g="b"}"#).is_none());
    }

    #[test]
    fn different_value_pairs_are_rejected() {
        assert!(merge_variants(r#"x{h="a"} / y{h="a"}"#, r#"x{h="b"} / y{h="c"}"#).is_none());
        assert!(merge_variants(r#"x{h="a"} / y{h="c"}"#, r#"x{h="b"} / y{h="b"}"#).is_none());
    }

    #[test]
    fn structural_differences_are_rejected() {
        assert!(merge_variants(r#"x{h="a"}"#, r#"y{h="b"}"#).is_none());
        assert!(merge_variants(r#"rate(x{h="a"}[1m])"#, r#"rate(x{h="b"}[2m])"#).is_none());
        assert!(merge_variants(r#"sum(x{h="a"})"#, r#"avg(x{h="b"})"#).is_none());
        assert!(merge_variants(r#"x{h="a"} * 2"#, r#"x{h="b"} * 3"#).is_none());
        assert!(merge_variants(r#"x{h="a"}"#, r#"x{h!="b"}"#).is_none());
        assert!(merge_variants(r#"x{h=~"a"}"#, r#"x{h=~"b"}"#).is_none());
        assert!(merge_variants(r#"x{h="a",p="1"}"#, r#"x{p="1",h="b"}"#).is_none());
        assert!(merge_variants(r#"x{h="a"}"#, r#"x{h="b"} offset 1m"#).is_none());
        assert!(merge_variants(r#"{__name__="x"}"#, r#"{__name__="y"}"#).is_none());
        assert!(merge_variants(
            r#"label_replace(x{h="a"}, "v", "a", "", "")"#,
            r#"label_replace(x{h="b"}, "v", "b", "", "")"#
        )
        .is_none());
    }

    #[test]
    fn every_selector_must_carry_the_variant_matcher() {
        assert_rejected(
            "sum(rate(err{h=\"{V}\"}[1m])) / on() group_left sum(rate(req[1m]))",
            "a",
            "b",
        );
        assert_rejected(
            "sum(rate(err{h=\"{V}\"}[1m])) / sum(rate(req{h=\"z\"}[1m]))",
            "a",
            "b",
        );
        // A second matcher on the same label would make the rewrite ambiguous.
        assert_rejected("x{h=\"{V}\", h!=\"c\"}", "a", "b");
        assert_rejected("x{h=\"{V}\", h=\"{V}\"}", "a", "b");
    }

    #[test]
    fn queries_without_series_or_unparsable_are_rejected() {
        assert!(merge_variants("1", "2").is_none());
        assert!(merge_variants("x{h=\"a\"", "x{h=\"b\"").is_none());
        assert!(merge_variants("", "").is_none());
        assert!(merge_variants(r#"x{h="a"}"#, r#"x{h="a"}"#).is_none());
        // Parser extension absent from Prometheus.
        assert!(merge_variants(r#"x{h="a" or p="1"}"#, r#"x{h="b" or p="1"}"#).is_none());
    }

    #[test]
    fn unsafe_values_are_rejected() {
        assert_rejected("x{h=\"{V}\"}", "", "b");
        assert_rejected("x{h=\"{V}\"}", "a\\nb", "b");
        assert_rejected("x{h=\"{V}\"}", "a\\tb", "b");
    }

    #[test]
    fn range_result_is_allowed() {
        assert_merges("x{h=\"{V}\"}[5m]", "h", "a", "b", r#"x{h=~"a|b"}[5m]"#);
    }

    #[test]
    fn merged_queries_round_trip() {
        for template in [
            "sum by (le, pod) (rate(istio_request_duration_milliseconds_bucket{reporter=\"destination\",rollouts_pod_template_hash=\"{V}\"}[1m]))",
            "sum(increase(istio_requests_total{rollouts_pod_template_hash=\"{V}\",response_code=~\"5..\"}[30s]))",
            "histogram_quantile(0.95, sum by (le) (rate(x_bucket{rollouts_pod_template_hash=\"{V}\"}[1m] offset 30s)))",
            "sum(rate(e{rollouts_pod_template_hash=\"{V}\"}[1m])) / sum(rate(t{rollouts_pod_template_hash=\"{V}\"}[1m]))",
        ] {
            let merged = merge(template, "6f9c7b8d4", "5d8b9c7f6").expect("merges");
            assert_eq!(merged.label, H);
            let again = parsed(&merged.query).to_string();
            assert_eq!(again, merged.query);
        }
    }

    #[test]
    fn tag_union_joins_tagged_parts() {
        let query = tag_union(
            TAG_LABEL,
            &[
                ("error_3600", "sum(increase(e[3600s]))"),
                ("total_3600", "sum(increase(t[3600s]))"),
            ],
        )
        .expect("unions");
        assert_eq!(
            query,
            r#"label_replace(sum(increase(e[1h])), "canary_engine_part", "error_3600", "", "") or label_replace(sum(increase(t[1h])), "canary_engine_part", "total_3600", "", "")"#
        );
        parsed(&query);
    }

    #[test]
    fn tag_union_single_part_and_escaping() {
        let query = tag_union(TAG_LABEL, &[("a\"b", "x")]).expect("unions");
        assert_eq!(
            query,
            r#"label_replace(x, "canary_engine_part", "a\"b", "", "")"#
        );
        let query = tag_union(
            "part",
            &[
                ("e", "sum(rate(e[5m])) by (code)"),
                ("t", "x / y"),
                ("u", "-x"),
            ],
        )
        .expect("unions");
        assert_eq!(
            parsed(&query),
            parsed(
                r#"label_replace(sum by (code) (rate(e[5m])), "part", "e", "", "") or label_replace(x / y, "part", "t", "", "") or label_replace(-x, "part", "u", "", "")"#
            )
        );
    }

    #[test]
    fn tag_union_keeps_multi_matcher_parts() {
        let query = tag_union(
            TAG_LABEL,
            &[(
                "error_300",
                r#"sum(increase(req{hash="aaa",code=~"5..",a="1"}[300s]))"#,
            )],
        )
        .expect("unions");
        assert_eq!(
            query,
            r#"label_replace(sum(increase(req{a="1",code=~"5..",hash="aaa"}[5m])), "canary_engine_part", "error_300", "", "")"#
        );
    }

    #[test]
    fn tag_union_rejects_non_vectors() {
        assert!(tag_union(TAG_LABEL, &[("a", "x"), ("b", "scalar(x)")]).is_none());
        assert!(tag_union(TAG_LABEL, &[("a", "1")]).is_none());
        assert!(tag_union(TAG_LABEL, &[("a", "\"s\"")]).is_none());
        assert!(tag_union(TAG_LABEL, &[("a", "x[5m]")]).is_none());
        assert!(tag_union(TAG_LABEL, &[("a", "sum(x")]).is_none());
        assert!(tag_union(TAG_LABEL, &[]).is_none());
    }

    #[test]
    fn tag_union_rejects_label_already_used() {
        assert!(tag_union(
            TAG_LABEL,
            &[("a", "sum by (canary_engine_part) (x)"), ("b", "y")]
        )
        .is_none());
        assert!(tag_union("part", &[("a", "x{part=\"z\"}")]).is_none());
    }

    #[test]
    fn tag_union_rejects_bad_tags_and_labels() {
        assert!(tag_union(TAG_LABEL, &[("a", "x"), ("a", "y")]).is_none());
        assert!(tag_union(TAG_LABEL, &[("", "x")]).is_none());
        assert!(tag_union(TAG_LABEL, &[("$1", "x")]).is_none());
        assert!(tag_union(TAG_LABEL, &[("a\nb", "x")]).is_none());
        assert!(tag_union("__canary_part", &[("a", "x")]).is_none());
        assert!(tag_union("__name__", &[("a", "x")]).is_none());
        assert!(tag_union("bad-label", &[("a", "x")]).is_none());
        assert!(tag_union("", &[("a", "x")]).is_none());
    }
}
