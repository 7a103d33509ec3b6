# Unit tests of deploy-gate.rego: `opa test policies/` (CI runs them with OPA built from its
# Go module, tests/opa).
package canary.deploy_test

import rego.v1

import data.canary.deploy

slo(consumed, rules) := {
	"name": "availability",
	"period": "30d",
	"consumed": consumed,
	"remaining": 1 - consumed,
	"exhausted": consumed >= 1,
	"rules": rules,
}

rule(long, short, factor, burn) := {
	"long": long,
	"short": short,
	"factor": factor,
	"long_burn_rate": burn,
	"short_burn_rate": burn,
	"trips": burn > factor,
}

input_with(s) := {
	"promotion": "shop/checkout",
	"virtual_service": "shop/checkout",
	"budgets": [{"judge": "istio-golden-signals", "slos": [s]}],
}

quiet := [rule("1h", "5m", 14.4, 0.2), rule("6h", "30m", 6, 0.3)]

test_a_healthy_budget_is_allowed if {
	deploy.allow with input as input_with(slo(0.2, quiet))
	count(deploy.deny) == 0 with input as input_with(slo(0.2, quiet))
}

test_no_budgets_at_all_is_allowed if {
	deploy.allow with input as {"virtual_service": "shop/checkout", "budgets": []}
}

test_an_exhausted_budget_is_denied if {
	not deploy.allow with input as input_with(slo(1.2, quiet))
	deploy.deny == {"istio-golden-signals/availability: error budget exhausted (120% of the 30d budget spent)"} with input as input_with(slo(1.2, quiet))
}

test_a_fast_burn_is_denied if {
	fast := [rule("1h", "5m", 14.4, 20), rule("6h", "30m", 6, 0.3)]
	not deploy.allow with input as input_with(slo(0.3, fast))
	count(deploy.deny) == 1 with input as input_with(slo(0.3, fast))
}

test_a_slow_burn_alone_is_allowed if {
	slow := [rule("3d", "6h", 1, 1.5)]
	deploy.allow with input as input_with(slo(0.5, slow))
}

future := "2200-01-01T00:00:00Z"

past := "2000-01-01T00:00:00Z"

test_a_recorded_exception_allows_a_denied_deploy if {
	excs := [{"virtual_service": "shop/checkout", "reason": "INC-42 fix", "expires": future}]
	deploy.allow with input as input_with(slo(1.2, quiet)) with data.exceptions as excs
	deploy.exception.reason == "INC-42 fix" with input as input_with(slo(1.2, quiet)) with data.exceptions as excs
}

test_an_expired_exception_does_not if {
	excs := [{"virtual_service": "shop/checkout", "reason": "old", "expires": past}]
	not deploy.allow with input as input_with(slo(1.2, quiet)) with data.exceptions as excs
}

test_another_services_exception_does_not if {
	excs := [{"virtual_service": "shop/cart", "reason": "other", "expires": future}]
	not deploy.allow with input as input_with(slo(1.2, quiet)) with data.exceptions as excs
}

test_no_exception_is_named_when_none_is_needed if {
	excs := [{"virtual_service": "shop/checkout", "reason": "spare", "expires": future}]
	not deploy.exception with input as input_with(slo(0.2, quiet)) with data.exceptions as excs
}
