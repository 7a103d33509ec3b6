// Command kube-apiserver runs a real Kubernetes API server for canary-engine's tests:
// k8s.io/apiextensions-apiserver (custom resources, structural-schema validation,
// resourceVersion conflicts, server-side apply, watch) on an embedded etcd, both on free
// loopback ports, serving TLS with a self-signed certificate.
//
// It writes a kubeconfig whose credential is authorised for everything, prints one line
// "ready <kubeconfig path>" on stdout, and runs until its standard input closes (the test
// process that started it holds the other end, so the server ends with it) or it gets
// SIGTERM/SIGINT. It serves custom resources only: there is no /api/v1.
package main

import (
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	servertesting "k8s.io/apiextensions-apiserver/pkg/cmd/server/testing"
	"k8s.io/klog/v2"
)

// logger satisfies servertesting.Logger, writing to stderr.
type logger struct{ verbose bool }

func (l logger) Errorf(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "error: "+format+"\n", args...)
}

func (l logger) Fatalf(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "fatal: "+format+"\n", args...)
	os.Exit(1)
}

func (l logger) Logf(format string, args ...interface{}) {
	if l.verbose {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startEtcd(dir string) (*embed.Etcd, string, error) {
	cfg := embed.NewConfig()
	cfg.Dir = filepath.Join(dir, "etcd")
	cfg.LogLevel = "error"
	clientPort, err := freePort()
	if err != nil {
		return nil, "", err
	}
	peerPort, err := freePort()
	if err != nil {
		return nil, "", err
	}
	client, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", clientPort))
	peer, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", peerPort))
	cfg.ListenClientUrls = []url.URL{*client}
	cfg.AdvertiseClientUrls = []url.URL{*client}
	cfg.ListenPeerUrls = []url.URL{*peer}
	cfg.AdvertisePeerUrls = []url.URL{*peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, "", err
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, "", fmt.Errorf("etcd did not become ready within 60 s")
	}
	return e, client.String(), nil
}

// An authorisation/authentication kubeconfig the server insists on but, with the loopback
// credential below, never uses.
const unusedKubeconfig = `apiVersion: v1
kind: Config
clusters:
- cluster: {server: "http://127.1.2.3:12345"}
  name: unused
contexts:
- context: {cluster: unused, user: unused}
  name: unused
current-context: unused
users:
- name: unused
  user: {username: unused, password: unused}
`

func writeKubeconfig(path, server string, ca []byte, token string) error {
	body := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: canary-tests
  cluster:
    server: %q
    certificate-authority-data: %s
contexts:
- name: canary-tests
  context: {cluster: canary-tests, user: canary-tests, namespace: default}
current-context: canary-tests
users:
- name: canary-tests
  user:
    token: %q
`, server, base64.StdEncoding.EncodeToString(ca), token)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func run() error {
	kubeconfig := flag.String("kubeconfig", "", "where to write the kubeconfig (required)")
	verbose := flag.Bool("v", false, "log the server's start-up")
	flag.Parse()
	if *kubeconfig == "" {
		return fmt.Errorf("--kubeconfig is required")
	}
	if !*verbose {
		klog.SetOutput(io.Discard)
		klog.LogToStderr(false)
	}
	dir, err := os.MkdirTemp("", "canary-kube-apiserver")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	etcd, etcdURL, err := startEtcd(dir)
	if err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	defer etcd.Close()

	unused := filepath.Join(dir, "unused-kubeconfig")
	if err := os.WriteFile(unused, []byte(unusedKubeconfig), 0o600); err != nil {
		return err
	}
	server, err := servertesting.StartTestServer(logger{*verbose}, nil, []string{
		"--etcd-servers", etcdURL,
		"--etcd-prefix", "/canary-tests",
		"--authentication-skip-lookup",
		"--authentication-kubeconfig", unused,
		"--authorization-kubeconfig", unused,
		"--kubeconfig", unused,
		"--enable-priority-and-fairness=false",
		"--disable-admission-plugins", "NamespaceLifecycle,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ValidatingAdmissionPolicy,MutatingAdmissionPolicy",
	}, nil)
	if err != nil {
		return fmt.Errorf("apiextensions-apiserver: %w", err)
	}
	defer server.TearDownFn()

	// The loopback credential is in system:masters, which every authoriser allows. The
	// server presents the fixture certificate (CN localhost, SAN 127.0.0.1) on its port;
	// the file holds the serving certificate and the CA that signed it.
	opts := server.ServerOpts.RecommendedOptions.SecureServing
	certFile := opts.ServerCert.CertKey.CertFile
	if certFile == "" {
		certFile = filepath.Join(opts.ServerCert.FixtureDirectory, "localhost_127.0.0.1_localhost.crt")
	}
	ca, err := os.ReadFile(certFile)
	if err != nil {
		return fmt.Errorf("serving certificate: %w", err)
	}
	addr := fmt.Sprintf("https://127.0.0.1:%d", opts.BindPort)
	if err := writeKubeconfig(*kubeconfig, addr, ca, server.ClientConfig.BearerToken); err != nil {
		return err
	}
	fmt.Printf("ready %s\n", *kubeconfig)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	stdinClosed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stdinClosed)
	}()
	select {
	case <-stop:
	case <-stdinClosed:
	}
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "kube-apiserver: %v\n", err)
		os.Exit(1)
	}
}
