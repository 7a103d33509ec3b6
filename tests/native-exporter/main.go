// Command native-exporter serves Istio-shaped request latencies as Prometheus native
// histograms, for canary-engine's tests: Prometheus (with
// --enable-feature=native-histograms) scrapes it, and the judge reads the native series.
//
//	native-exporter --listen 127.0.0.1:PORT
//
// Two services, each with a canary (rollouts_pod_template_hash="can") and a stable ("stb")
// variant observing `--rate` requests a second each with log-normal latencies (median 40 ms):
// in "same" the canary is like the stable, in "slow" every canary request is 1.5x slower.
// It prints "ready" once listening and exits when its stdin closes.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math"
	"math/rand"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to serve /metrics on")
	rate := flag.Float64("rate", 400, "requests a second per variant")
	flag.Parse()

	reg := prometheus.NewRegistry()
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:                        "istio_request_duration_milliseconds",
		Help:                        "Request latency, as a native histogram.",
		NativeHistogramBucketFactor: 1.1,
	}, []string{"destination_service_name", "rollouts_pod_template_hash"})
	reg.MustRegister(latency)

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "native-exporter:", err)
		os.Exit(1)
	}
	go func() {
		_ = http.Serve(ln, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	}()

	rng := rand.New(rand.NewSource(2026))
	go func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		carry := 0.0
		for range tick.C {
			carry += *rate / 100
			n := int(carry)
			carry -= float64(n)
			for i := 0; i < n; i++ {
				for _, service := range []string{"same", "slow"} {
					for _, hash := range []string{"can", "stb"} {
						v := 40 * math.Exp(0.5*rng.NormFloat64())
						if service == "slow" && hash == "can" {
							v *= 1.5
						}
						latency.WithLabelValues(service, hash).Observe(v)
					}
				}
			}
		}
	}()

	fmt.Printf("ready %s\n", ln.Addr())
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
}
