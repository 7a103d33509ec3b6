#!/usr/bin/env python3
"""Write the seed corpora of the fuzz targets from the repository's own templates, examples
and test inputs (run from anywhere; writes fuzz/corpus/<target>/seed-*).

The structure-aware targets (args_substitution, traffic_weights) build their inputs with
`arbitrary` and have no seeds. Only these seeds are committed: what a run of ci/fuzz.sh
discovers goes to fuzz/target/corpus/<target>, which is not."""
import glob
import hashlib
import json
import os

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    name = "seed-" + hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def read(path):
    with open(os.path.join(ROOT, path), "rb") as f:
        return f.read()


templates = sorted(glob.glob(os.path.join(ROOT, "analysis-templates", "*.yaml")))
for path in templates:
    text = read(path)
    if b"kind: Judge" in text:
        put("judge_spec", text)
    else:
        put("template_argo", text)
put("judge_spec", read("tests/fixtures/judge-v1-golden-signals.yaml"))
# Small hostile YAML: anchors and aliases, tags, flow collections, duplicate keys.
for y in [
    "a: &a [1, 2]\nb: [*a, *a]\n",
    "kind: AnalysisTemplate\napiVersion: argoproj.io/v1alpha1\nmetadata: {name: x}\nspec: !!map {metrics: []}\n",
    "a: !!python/object:os.system [ls]\n",
    "a: 1\na: 2\n",
    "[[[[[[[[]]]]]]]]\n",
    "---\n---\nkind: Judge\n...\n",
]:
    put("template_argo", y)
    put("judge_spec", y)

for path in sorted(glob.glob(os.path.join(ROOT, "examples", "judge", "*.json"))):
    put("judge_input", read(path))

conditions = [
    ('result == "pass"', 'result == "fail"', '"pass"'),
    ("len(result) > 0 && !isNaN(result[0]) && result[0] >= 0.95",
     "len(result) > 0 && !isNaN(result[0]) && result[0] < 0.95", "[0.99, 0.5]"),
    ("isNaN(result) || result >= 0.95", "", "0.5"),
    ("all(result, {# < 5})", "any(result, {# > 5})", "[1, 2, 7]"),
    ("asInt(result.n) == 1", "isNil(result)", '{"n": "1"}'),
    ("default(result, 0) < 0.05", "isInf(result)", "null"),
    ('result.verdict == "pass"', 'result.verdict == "fail"', '{"verdict": "marginal", "score": 80}'),
    ("asFloat(result) >= 1.1", "", '"1.2"'),
    ('now() - duration("10m")', "", ""),
]
for s, f, r in conditions:
    put("condition", f"{s}\n{f}\n{r}")

bodies = [
    '{"verdict": "pass", "data": {"value": 0.5, "items": [{"name": "m1", "value": 1, "ok": true}, {"name": "m2", "value": 2}], "empty": []}, "list": [1]}',
    "[1, 2, 3]",
    '"text"',
]
paths = ["", "{$}", "{$.verdict}", "{.verdict}", "{$.data.items[0].value}",
         "{$.data.items[*].value}", "{$.data.items[?(@.ok == true)].value}",
         '{$.data.items[?(@.name == "m1")].value}', "{$.list[0:2]}", "{$.list[-1]}",
         "{$.data['value']}", "{..value}", "{$.verdict"]
for i, p in enumerate(paths):
    put("jsonpath", f"{p}\n{bodies[i % len(bodies)]}")

# First byte: status (low 3 bits: 200 204 400 422 500 503 301 404), bit 3 set: not JSON.
answers = [
    (0, '{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"1"},"value":[1700000000,"NaN"]},{"metric":{},"value":[1700000000,"+Inf"]}]},"warnings":["w"]}'),
    (0, '{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"pod":"a"},"values":[[1700000000,"1"],[1700000030,"2.5"]]}]}}'),
    (0, '{"status":"success","data":{"resultType":"scalar","result":[1700000000,"0.995"]}}'),
    (0, '{"status":"success","data":{"resultType":"string","result":[1,"x"]}}'),
    (0, '{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"histogram":[1700000000,{"count":"10","sum":"3.5","buckets":[[0,"0.1","0.2","4"],[3,"-0.001","0.001","6"]]}}]}}'),
    (2, '{"status":"error","errorType":"bad_data","error":"parse error"}'),
    (5, '{"status":"error","errorType":"unavailable","error":"too many queries"}'),
    (4 | 8, "<html>Bad Gateway</html>"),
    (0, "{not json"),
]
for head, body in answers:
    put("prometheus_response", bytes([head]) + body.encode())
