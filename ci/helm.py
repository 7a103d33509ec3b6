#!/usr/bin/env python3
"""Lint and render the Helm chart with a real Helm (v4's library, through helm-sdkpy).

Needs (pip): helm-sdkpy (install with --ignore-requires-python on Python 3.11), PyYAML;
kubernetes-validate for --kube-version only.

    python3 ci/helm.py lint CHART [-f VALUES.yaml]
    python3 ci/helm.py template CHART [-f VALUES.yaml] --out FILE.json [--kube-version 1.33.0]

lint     `helm lint --strict`: runs Helm's linter (Chart.yaml, values against values.schema.json,
         every template rendered) and fails on any warning or error; then renders the chart as
         `template` does, because the linter lets the templates' `fail` and `required` pass. helm-sdkpy's lint takes
         no values file, so with -f the chart is copied to a temporary directory and the file is
         merged into its values.yaml the way Helm merges `-f` (maps deep-merged, other values
         replaced, null deletes a key). helm-sdkpy drops the linter's message texts, so a
         failing lint's cause is read from the render's error.
template renders the chart as release `canary` in namespace `canary-engine` and writes every
         rendered object as a JSON array. helm-sdkpy has no `helm template` / dry-run, so this
         runs Helm's real install action with the in-memory release driver against a minimal
         fake Kubernetes API served on 127.0.0.1 (discovery for the kinds the chart uses,
         404 on reads, echo on creates): values are checked against values.schema.json, `lookup`
         sees an empty cluster, and the manifest is Helm's own output. --kube-version also
         checks the built-in kinds strictly against that Kubernetes version's OpenAPI schemas.

Exit status: 0 clean, 1 lint or render failure, 2 usage or missing dependency.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import shutil
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

try:
    import yaml
except ImportError:  # pragma: no cover
    sys.exit("ci/helm.py needs PyYAML: pip install pyyaml")

# Helm keeps release records in memory, not in the (fake) cluster. The Go library sees only
# the environment the process started with (not later putenv), so re-run with it set.
if os.environ.get("HELM_DRIVER") != "memory" and __name__ == "__main__":
    os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "HELM_DRIVER": "memory"})

RELEASE = "canary"
NAMESPACE = "canary-engine"
KUBE_VERSION = ("1", "33")

# Helm's lint severities (helm.sh/helm/v4/pkg/chart/v2/lint/support).
SEVERITY = {0: "UNKNOWN", 1: "INFO", 2: "WARNING", 3: "ERROR"}

# API resources the fake API server advertises: (group, version) -> [(plural, kind, namespaced)].
RESOURCES = {
    ("", "v1"): [
        ("configmaps", "ConfigMap", True),
        ("secrets", "Secret", True),
        ("services", "Service", True),
        ("serviceaccounts", "ServiceAccount", True),
        ("pods", "Pod", True),
        ("namespaces", "Namespace", False),
    ],
    ("apps", "v1"): [("deployments", "Deployment", True)],
    ("policy", "v1"): [("poddisruptionbudgets", "PodDisruptionBudget", True)],
    ("rbac.authorization.k8s.io", "v1"): [
        ("roles", "Role", True),
        ("rolebindings", "RoleBinding", True),
        ("clusterroles", "ClusterRole", False),
        ("clusterrolebindings", "ClusterRoleBinding", False),
    ],
    ("networking.k8s.io", "v1"): [("networkpolicies", "NetworkPolicy", True)],
    ("monitoring.coreos.com", "v1"): [
        ("servicemonitors", "ServiceMonitor", True),
        ("podmonitors", "PodMonitor", True),
    ],
    ("cert-manager.io", "v1"): [
        ("certificates", "Certificate", True),
        ("issuers", "Issuer", True),
        ("clusterissuers", "ClusterIssuer", False),
    ],
    ("networking.istio.io", "v1beta1"): [
        ("virtualservices", "VirtualService", True),
        ("destinationrules", "DestinationRule", True),
    ],
    ("argoproj.io", "v1alpha1"): [
        ("analysistemplates", "AnalysisTemplate", True),
        ("rollouts", "Rollout", True),
    ],
}
PLURALS = {plural for rs in RESOURCES.values() for plural, _, _ in rs}


def helm():
    try:
        import helm_sdkpy
    except ImportError:
        sys.exit(
            "ci/helm.py needs helm-sdkpy: pip install --ignore-requires-python helm-sdkpy pyyaml"
        )
    return helm_sdkpy


# ---------------------------------------------------------------- values


def merge_values(base, override):
    """Helm's `-f` merge: maps merge key by key, anything else replaces; null deletes."""
    if not isinstance(base, dict) or not isinstance(override, dict):
        return copy.deepcopy(override)
    out = copy.deepcopy(base)
    for k, v in override.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge_values(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def load_values(path: str | None) -> dict:
    if not path:
        return {}
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f)
    if data is None:
        return {}
    if not isinstance(data, dict):
        sys.exit(f"{path}: values must be a YAML map")
    return data


# ---------------------------------------------------------------- lint


def lint(chart: str, values_file: str | None) -> int:
    h = helm()
    chart_dir = Path(chart).resolve()
    label = f"{chart}" + (f" with {values_file}" if values_file else "")
    with tempfile.TemporaryDirectory(prefix="helm-lint-") as tmp:
        target = chart_dir
        if values_file:
            # Lint a copy whose values.yaml carries the override, as `helm lint -f` would see it.
            target = Path(tmp) / chart_dir.name
            shutil.copytree(chart_dir, target)
            with open(chart_dir / "values.yaml", encoding="utf-8") as f:
                defaults = yaml.safe_load(f) or {}
            merged = merge_values(defaults, load_values(values_file))
            with open(target / "values.yaml", "w", encoding="utf-8") as f:
                yaml.safe_dump(merged, f, sort_keys=False)
        config = h.Configuration(namespace=NAMESPACE, kubeconfig=None)
        try:
            result = asyncio.run(h.Lint(config).run(str(target)))
        except h.HelmError as e:
            print(f"==> helm lint {label}: {e}")
            return 1

    messages = result.get("Messages") or []
    failing = [m for m in messages if m.get("Severity", 0) >= 2]
    print(f"==> helm lint --strict {label} (helm-sdkpy {h.__version__}, {h.get_version()})")
    for m in messages:
        sev = SEVERITY.get(m.get("Severity", 0), str(m.get("Severity")))
        text = m.get("Err")
        text = text if isinstance(text, str) and text else "(helm-sdkpy does not pass the message text)"
        print(f"[{sev}] {m.get('Path', '')}: {text}")
    linted = result.get("TotalChartsLinted", 0)
    print(f"{linted} chart(s) linted, {1 if failing else 0} chart(s) failed")
    # Helm's linter lets `fail` and `required` pass (lint mode); a render does not, and it
    # also names the problem when the linter failed (helm-sdkpy drops the linter's texts).
    status = 0
    if failing or not result.get("TotalChartsLinted"):
        status = 1
    try:
        objects = render(chart, values_file)
        print(f"render: ok, {len(objects)} objects")
    except RenderError as e:
        print(f"render: FAILED\n{e}")
        status = 1
    return status


# ---------------------------------------------------------------- template


class RenderError(Exception):
    pass


class FakeKubeAPI(BaseHTTPRequestHandler):
    """Just enough of the Kubernetes API for Helm's install: discovery, 404 reads, echo writes."""

    created: list = []

    def log_message(self, *args):  # quiet
        pass

    def _send(self, code: int, obj: dict):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _not_found(self):
        self._send(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                         "reason": "NotFound", "code": 404, "message": "not found"})

    def do_GET(self):
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "/version":
            major, minor = KUBE_VERSION
            return self._send(200, {"major": major, "minor": minor,
                                    "gitVersion": f"v{major}.{minor}.0", "platform": "linux/amd64"})
        if path == "/api":
            return self._send(200, {"kind": "APIVersions", "versions": ["v1"]})
        if path == "/apis":
            groups = [
                {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v}],
                 "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v}}
                for (g, v) in RESOURCES if g
            ]
            return self._send(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
        for (g, v), resources in RESOURCES.items():
            if path == (f"/apis/{g}/{v}" if g else f"/api/{v}"):
                return self._send(200, {
                    "kind": "APIResourceList", "apiVersion": "v1",
                    "groupVersion": f"{g}/{v}" if g else v,
                    "resources": [
                        {"name": p, "singularName": k.lower(), "namespaced": ns, "kind": k,
                         "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]}
                        for p, k, ns in resources
                    ],
                })
        if path.split("/")[-1] in PLURALS:  # a list: the cluster is empty
            return self._send(200, {"kind": "List", "apiVersion": "v1",
                                    "metadata": {"resourceVersion": "1"}, "items": []})
        return self._not_found()

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            obj = json.loads(raw or b"{}")
        except (ValueError, UnicodeDecodeError):
            return self._send(415, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                    "code": 415, "message": "fake API server speaks JSON only"})
        FakeKubeAPI.created.append(obj)
        obj.setdefault("metadata", {}).update({"uid": f"uid-{len(FakeKubeAPI.created)}",
                                               "resourceVersion": "1"})
        return self._send(201, obj)

    do_PUT = do_POST
    do_PATCH = do_POST

    def do_DELETE(self):
        self._send(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})


def render(chart: str, values_file: str | None) -> list[dict]:
    """Helm's install action against the fake API; returns the rendered objects in order."""
    h = helm()
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeKubeAPI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        kubeconfig = yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": f"http://127.0.0.1:{server.server_address[1]}"}}],
            "users": [{"name": "fake", "user": {"token": "fake"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": NAMESPACE}}],
            "current-context": "fake",
        })
        config = h.Configuration(namespace=NAMESPACE, kubeconfig=kubeconfig)
        values = load_values(values_file) or None
        try:
            release = asyncio.run(h.Install(config).run(
                RELEASE, str(Path(chart).resolve()), values=values, wait=False, timeout=60))
        except h.HelmError as e:
            raise RenderError(str(e)) from None
    finally:
        server.shutdown()
        server.server_close()
    objects = [d for d in yaml.safe_load_all(release.get("manifest") or "") if d]
    if not objects:
        raise RenderError("the chart rendered no objects")
    return objects


def kube_validate(objects: list[dict], version: str) -> list[str]:
    """Check built-in kinds against Kubernetes' OpenAPI schemas (strict: no unknown fields)."""
    try:
        import kubernetes_validate as kv
    except ImportError:
        sys.exit("--kube-version needs kubernetes-validate: pip install kubernetes-validate")
    problems = []
    for o in objects:
        name = f"{o.get('kind')}/{o.get('metadata', {}).get('name')}"
        try:
            kv.validate(o, version, strict=True)
        except kv.SchemaNotFoundError:
            print(f"  (no schema for {o.get('apiVersion')} {o.get('kind')}: not checked)")
        except kv.ValidationError as e:
            problems.append(f"{name}: {'.'.join(str(p) for p in e.path)}: {e.message}")
    return problems


def template(chart: str, values_file: str | None, out: str, kube_version: str | None = None) -> int:
    label = f"{chart}" + (f" with {values_file}" if values_file else "")
    try:
        objects = render(chart, values_file)
    except RenderError as e:
        print(f"==> helm template {label}: FAILED\n{e}")
        return 1
    if kube_version:
        problems = kube_validate(objects, kube_version)
        if problems:
            print(f"==> helm template {label}: invalid for Kubernetes {kube_version}")
            print("\n".join(problems))
            return 1
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(objects, f, indent=2, sort_keys=False)
        f.write("\n")
    kinds = ", ".join(f"{o.get('kind')}/{o.get('metadata', {}).get('name')}" for o in objects)
    print(f"==> helm template {label}: {len(objects)} objects → {out}\n{kinds}")
    return 0


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    pl = sub.add_parser("lint", help="helm lint --strict")
    pl.add_argument("chart")
    pl.add_argument("-f", "--values", help="values file merged over the chart's values.yaml")
    pt = sub.add_parser("template", help="render to a JSON array of objects")
    pt.add_argument("chart")
    pt.add_argument("-f", "--values", help="values file")
    pt.add_argument("--out", required=True, help="JSON file to write")
    pt.add_argument("--kube-version", help="also validate built-in kinds strictly against this "
                    "Kubernetes version's schemas (needs kubernetes-validate), e.g. 1.33.0")
    a = p.parse_args(argv)
    if a.cmd == "lint":
        return lint(a.chart, a.values)
    return template(a.chart, a.values, a.out, a.kube_version)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
