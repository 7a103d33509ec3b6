// Command argo-rollouts runs Argo Rollouts' own code for canary-engine's tests: its web
// metric provider as the client of `canary serve`, and its condition evaluator and jsonPath
// extraction as the oracle that `canary analyze` must agree with.
//
//	argo-rollouts web --template T.yaml --arg k=v ... [--timeout-seconds N] [--metric NAME]
//	    Run the template's web metric exactly as the controller does
//	    (NewWebMetricHttpClient, NewWebMetricJsonParser, NewWebMetricProvider(...).Run) and
//	    print the measurement as JSON: {"phase", "value", "message"}.
//	argo-rollouts conditions < cases.jsonl
//	    For each {"result": R, "success": S, "failure": F} print {"phase", "message"} from
//	    evaluate.EvaluateResult. R is {"nil": true}, {"float": F}, {"floats": [F...]} (a
//	    Prometheus result: float64 / []float64, F a number or "NaN", "+Inf", "-Inf") or
//	    {"json": V} (a decoded web response).
//	argo-rollouts jsonpath < cases.jsonl
//	    For each {"body": "<raw response>", "path": "{...}"} serve the body over HTTP and run
//	    the web provider against it with that jsonPath; print {"phase", "value", "message"}.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/argoproj/argo-rollouts/metricproviders/webmetric"
	"github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"github.com/argoproj/argo-rollouts/utils/evaluate"
	log "github.com/sirupsen/logrus"
	"sigs.k8s.io/yaml"
)

type measurement struct {
	Phase   string `json:"phase"`
	Value   string `json:"value"`
	Message string `json:"message"`
}

func logger() log.Entry {
	l := log.New()
	l.SetOutput(os.Stderr)
	l.SetLevel(log.WarnLevel)
	return *log.NewEntry(l)
}

func run(metric v1alpha1.Metric) measurement {
	client, err := webmetric.NewWebMetricHttpClient(metric)
	if err != nil {
		return measurement{Phase: "Error", Message: err.Error()}
	}
	parser, err := webmetric.NewWebMetricJsonParser(metric)
	if err != nil {
		return measurement{Phase: "Error", Message: err.Error()}
	}
	m := webmetric.NewWebMetricProvider(logger(), client, parser).Run(&v1alpha1.AnalysisRun{}, metric)
	return measurement{Phase: string(m.Phase), Value: m.Value, Message: m.Message}
}

type argList []string

func (a *argList) String() string     { return strings.Join(*a, ",") }
func (a *argList) Set(v string) error { *a = append(*a, v); return nil }

func web(argv []string) error {
	fs := flag.NewFlagSet("web", flag.ExitOnError)
	template := fs.String("template", "", "AnalysisTemplate file")
	name := fs.String("metric", "", "metric name (default: the first web metric)")
	timeout := fs.Int64("timeout-seconds", 0, "override the metric's timeoutSeconds")
	var args argList
	fs.Var(&args, "arg", "template argument name=value (repeatable)")
	if err := fs.Parse(argv); err != nil {
		return err
	}
	text, err := os.ReadFile(*template)
	if err != nil {
		return err
	}
	var t v1alpha1.AnalysisTemplate
	if err := yaml.Unmarshal(text, &t); err != nil {
		return fmt.Errorf("%s: %w", *template, err)
	}
	values := map[string]string{}
	for _, a := range t.Spec.Args {
		if a.Value != nil {
			values[a.Name] = *a.Value
		}
	}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return fmt.Errorf("--arg %q is not name=value", a)
		}
		values[k] = v
	}
	for _, m := range t.Spec.Metrics {
		if m.Provider.Web == nil || (*name != "" && m.Name != *name) {
			continue
		}
		// Argo substitutes {{args.x}} in the metric's JSON form; so do we.
		raw, err := json.Marshal(m)
		if err != nil {
			return err
		}
		s := string(raw)
		for k, v := range values {
			quoted, _ := json.Marshal(v)
			s = strings.ReplaceAll(s, "{{args."+k+"}}", string(quoted[1:len(quoted)-1]))
		}
		var metric v1alpha1.Metric
		if err := json.Unmarshal([]byte(s), &metric); err != nil {
			return err
		}
		if *timeout > 0 {
			metric.Provider.Web.TimeoutSeconds = *timeout
		}
		return json.NewEncoder(os.Stdout).Encode(run(metric))
	}
	return fmt.Errorf("%s: no web metric", *template)
}

func float(v any) (float64, error) {
	switch x := v.(type) {
	case float64:
		return x, nil
	case string:
		switch x {
		case "NaN":
			return math.NaN(), nil
		case "+Inf":
			return math.Inf(1), nil
		case "-Inf":
			return math.Inf(-1), nil
		}
	}
	return 0, fmt.Errorf("not a float: %v", v)
}

func decodeResult(r map[string]any) (any, error) {
	if v, ok := r["float"]; ok {
		return float(v)
	}
	if v, ok := r["floats"]; ok {
		list, _ := v.([]any)
		out := make([]float64, 0, len(list))
		for _, x := range list {
			f, err := float(x)
			if err != nil {
				return nil, err
			}
			out = append(out, f)
		}
		return out, nil
	}
	if v, ok := r["json"]; ok {
		return v, nil
	}
	return nil, nil
}

func evaluateCase(c map[string]any) (m measurement) {
	defer func() {
		if p := recover(); p != nil {
			m = measurement{Phase: "Error", Message: fmt.Sprint("panic: ", p)}
		}
	}()
	r, _ := c["result"].(map[string]any)
	result, err := decodeResult(r)
	if err != nil {
		return measurement{Phase: "Error", Message: err.Error()}
	}
	metric := v1alpha1.Metric{}
	metric.SuccessCondition, _ = c["success"].(string)
	metric.FailureCondition, _ = c["failure"].(string)
	phase, err := evaluate.EvaluateResult(result, metric, logger())
	if err != nil {
		return measurement{Phase: string(phase), Message: err.Error()}
	}
	return measurement{Phase: string(phase)}
}

func jsonPathCase(c map[string]any) measurement {
	body, _ := c["body"].(string)
	path, _ := c["path"].(string)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}))
	defer srv.Close()
	metric := v1alpha1.Metric{Provider: v1alpha1.MetricProvider{Web: &v1alpha1.WebMetric{
		URL: srv.URL, JSONPath: path,
	}}}
	return run(metric)
}

func eachLine(f func(map[string]any) measurement) error {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<24)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var c map[string]any
		if err := json.Unmarshal(in.Bytes(), &c); err != nil {
			return fmt.Errorf("case %q: %w", in.Text(), err)
		}
		if err := out.Encode(f(c)); err != nil {
			return err
		}
	}
	return in.Err()
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: argo-rollouts web|conditions|jsonpath ...")
		os.Exit(64)
	}
	var err error
	switch os.Args[1] {
	case "web":
		err = web(os.Args[2:])
	case "conditions":
		err = eachLine(evaluateCase)
	case "jsonpath":
		err = eachLine(jsonPathCase)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "argo-rollouts:", err)
		os.Exit(1)
	}
}
