# Deploy gate on the error budget: `canary promote --policy URL` asks it (OPA's data API at
# /v1/data/canary/deploy) before the first weight change, with the error budgets of the
# promotion's Judge SLOs as input (`canary budget` prints the same shape).
#
# Denies a deploy while any SLO's error budget is exhausted, or while a fast-burn rule (a
# multiwindow rule with factor >= 6: the SRE Workbook's 1h/5m at 14.4x and 6h/30m at 6x)
# trips. A recorded exception — data.exceptions, one per VirtualService with a reason and
# an expiry — allows a denied deploy until it expires; the promotion records it.
package canary.deploy

import rego.v1

# The factor from which a tripping rule is a fast burn.
fast_burn_factor := 6

deny contains msg if {
	some b in input.budgets
	some s in b.slos
	s.exhausted
	msg := sprintf("%s/%s: error budget exhausted (%v%% of the %s budget spent)", [b.judge, s.name, round(s.consumed * 100), s.period])
}

deny contains msg if {
	some b in input.budgets
	some s in b.slos
	some r in s.rules
	r.trips
	r.factor >= fast_burn_factor
	msg := sprintf("%s/%s: burning %vx over %s and %vx over %s (limit %vx)", [b.judge, s.name, round(r.long_burn_rate * 10) / 10, r.long, round(r.short_burn_rate * 10) / 10, r.short, r.factor])
}

# Exceptions for this VirtualService that have not expired.
exceptions := [e |
	some e in data.exceptions
	e.virtual_service == input.virtual_service
	time.parse_rfc3339_ns(e.expires) > time.now_ns()
]

# The exception a denied deploy goes ahead under.
exception := exceptions[0] if {
	count(deny) > 0
	count(exceptions) > 0
}

default allow := false

allow if count(deny) == 0

allow if exception
