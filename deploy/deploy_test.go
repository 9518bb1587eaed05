// Package deploy_test checks the install files of deploy/ against the
// formats their tools read: the Kubernetes manifests against the API's Go
// types, the NATS Helm values against the chart's keys, the alert rules
// with Prometheus's own rule-file parser, the Grafana dashboard's shape
// and queries. cmd/licensebus/deploy_test.go checks them against
// licensebus itself (serve's flags, the metrics /metrics serves).
package deploy_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

// documents splits a multi-document YAML file.
func documents(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var docs [][]byte
	for _, d := range bytes.Split(b, []byte("\n---\n")) {
		if len(bytes.TrimSpace(d)) > 0 {
			docs = append(docs, d)
		}
	}
	return docs
}

// Ensure every document of the manifests decodes strictly (no unknown or
// misspelt field) into its API type, and that the pieces fit: probes on
// /healthz and /readyz at the container's HTTP port, the Service's and the
// budget's selectors matching the pods, the budget leaving room to drain,
// a container that cannot gain privileges.
func TestKubernetes(t *testing.T) {
	var dep *appsv1.Deployment
	var svc *corev1.Service
	var pdb *policyv1.PodDisruptionBudget
	for i, doc := range documents(t, "kubernetes/licensebus.yaml") {
		var meta struct{ APIVersion, Kind string }
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		var into any
		switch meta.APIVersion + " " + meta.Kind {
		case "apps/v1 Deployment":
			dep = &appsv1.Deployment{}
			into = dep
		case "v1 Service":
			svc = &corev1.Service{}
			into = svc
		case "policy/v1 PodDisruptionBudget":
			pdb = &policyv1.PodDisruptionBudget{}
			into = pdb
		default:
			t.Fatalf("document %d: unexpected %s %s", i, meta.APIVersion, meta.Kind)
		}
		if err := yaml.UnmarshalStrict(doc, into); err != nil {
			t.Fatalf("document %d (%s): %v", i, meta.Kind, err)
		}
	}
	if dep == nil || svc == nil || pdb == nil {
		t.Fatalf("want a Deployment, a Service and a PodDisruptionBudget")
	}
	pod := dep.Spec.Template
	if !selects(dep.Spec.Selector.MatchLabels, pod.Labels) || !selects(svc.Spec.Selector, pod.Labels) ||
		!selects(pdb.Spec.Selector.MatchLabels, pod.Labels) {
		t.Errorf("selectors %v %v %v do not all select the pods %v", dep.Spec.Selector.MatchLabels, svc.Spec.Selector, pdb.Spec.Selector.MatchLabels, pod.Labels)
	}
	if dep.Spec.Replicas == nil || pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() >= int(*dep.Spec.Replicas) {
		t.Errorf("PodDisruptionBudget minAvailable %v with %v replicas: a node could never be drained", pdb.Spec.MinAvailable, dep.Spec.Replicas)
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	var http *corev1.ContainerPort
	for i := range c.Ports {
		if c.Ports[i].Name == "http" {
			http = &c.Ports[i]
		}
	}
	if http == nil {
		t.Fatal("no container port named http")
	}
	if want := fmt.Sprintf("0.0.0.0:%d", http.ContainerPort); !slices.Contains(c.Args, want) {
		t.Errorf("args %v do not listen on the http port (%s)", c.Args, want)
	}
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"startup", c.StartupProbe, "/healthz"}, {"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("no %s probe over HTTP", p.name)
			continue
		}
		if p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port.String() != "http" {
			t.Errorf("%s probe %s on port %s, want %s on http", p.name, p.probe.HTTPGet.Path, p.probe.HTTPGet.Port.String(), p.path)
		}
	}
	if svc.Spec.Ports[0].TargetPort.String() != "http" {
		t.Errorf("Service targets port %s, want http", svc.Spec.Ports[0].TargetPort.String())
	}
	sc := c.SecurityContext
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("container security context %+v: want no privilege escalation, a read-only root, every capability dropped", sc)
	}
	if psc := pod.Spec.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Errorf("pod does not require a non-root user")
	}
	if a := pod.Annotations; a["prometheus.io/port"] != fmt.Sprint(http.ContainerPort) || a["prometheus.io/path"] != "/metrics" {
		t.Errorf("scrape annotations %v, want port %d path /metrics", a, http.ContainerPort)
	}
	// The NATS URL names the client Service of the Helm release and its port.
	var values map[string]any
	readYAML(t, "kubernetes/nats-values.yaml", &values)
	port := at(values, "config", "nats", "port")
	if want := fmt.Sprintf("nats://nats:%v", port); !slices.Contains(c.Args, want) {
		t.Errorf("args %v do not join %s (release nats, config.nats.port)", c.Args, want)
	}
}

func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// at returns the value at a path of nested maps, nil if absent.
func at(m map[string]any, path ...string) any {
	var v any = m
	for _, k := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[k]
	}
	return v
}

// chartKeys are the keys of the nats chart's values.yaml (nats-io/k8s,
// helm/charts/nats, 2.x) that nats-values.yaml may set; under "merge" the
// keys are nats-server's configuration, checked by the server's parser in
// cmd/licensebus/deploy_test.go.
var chartKeys = []string{
	"config.cluster.enabled", "config.cluster.replicas", "config.cluster.port", "config.cluster.noAdvertise",
	"config.jetstream.enabled", "config.jetstream.fileStore.enabled", "config.jetstream.fileStore.dir",
	"config.jetstream.fileStore.pvc.enabled", "config.jetstream.fileStore.pvc.size", "config.jetstream.fileStore.pvc.storageClassName",
	"config.jetstream.fileStore.maxSize", "config.jetstream.memoryStore.enabled", "config.jetstream.memoryStore.maxSize",
	"config.nats.port", "config.monitor.enabled", "config.monitor.port", "config.merge",
	"container.image.tag", "container.image.repository", "container.resources",
	"promExporter.enabled", "promExporter.port", "podDisruptionBudget.enabled",
}

// Ensure the NATS values set only keys the chart has, and ask for a
// 3-server cluster with JetStream on files.
func TestNATSValues(t *testing.T) {
	var values map[string]any
	readYAML(t, "kubernetes/nats-values.yaml", &values)
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if slices.Contains(chartKeys, prefix) {
			return // a leaf of the chart, or merge's server configuration
		}
		m, ok := v.(map[string]any)
		if !ok {
			t.Errorf("%s: not a key of the nats chart", prefix)
			return
		}
		for k, sub := range m {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			walk(p, sub)
		}
	}
	walk("", values)
	for path, want := range map[string]any{
		"config.cluster.enabled": true, "config.cluster.replicas": 3.0, "config.jetstream.enabled": true,
		"podDisruptionBudget.enabled": true,
	} {
		if got := at(values, strings.Split(path, ".")...); got != want {
			t.Errorf("%s=%v, want %v", path, got, want)
		}
	}
}

// Ensure the alert rules pass Prometheus's rule-file parser and checks
// (what `promtool check rules` runs: the YAML shape, each expression's
// PromQL, the templates of labels and annotations), and that every alert
// says how severe it is and what it means.
func TestAlertRules(t *testing.T) {
	groups, errs := rulefmt.ParseFile("prometheus/alerts.yaml", false, model.UTF8Validation, parser.NewParser(parser.Options{}), nil)
	for _, err := range errs {
		t.Error(err)
	}
	if groups == nil {
		t.FailNow()
	}
	n := 0
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			n++
			if r.Alert == "" {
				t.Errorf("rule %q is not an alert", r.Record)
			}
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %s lacks a severity, summary or description", r.Alert)
			}
		}
	}
	if n == 0 {
		t.Fatal("no rules")
	}
}

// Ensure the dashboard is one Grafana imports: unique panel ids, every
// panel on the Prometheus data source variable, every query valid PromQL
// once Grafana's variables are in.
func TestDashboard(t *testing.T) {
	b, err := os.ReadFile("grafana/licensebus.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID, Title    string
		SchemaVersion int `json:"schemaVersion"`
		Templating    struct {
			List []struct{ Name, Type string }
		}
		Panels []struct {
			ID         int
			Type       string
			Title      string
			Datasource *struct{ Type, UID string }
			Targets    []struct {
				RefID string `json:"refId"`
				Expr  string
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&d); err != nil {
		t.Fatal(err)
	}
	if d.UID == "" || d.Title == "" || d.SchemaVersion < 36 {
		t.Errorf("uid %q title %q schemaVersion %d", d.UID, d.Title, d.SchemaVersion)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	if vars["datasource"] != "datasource" || vars["instance"] != "query" {
		t.Errorf("variables %v, want datasource and instance", vars)
	}
	ids := map[int]bool{}
	p := parser.NewParser(parser.Options{})
	queries := 0
	for _, panel := range d.Panels {
		if ids[panel.ID] {
			t.Errorf("panel id %d twice", panel.ID)
		}
		ids[panel.ID] = true
		if panel.Type == "row" {
			continue
		}
		if panel.Datasource == nil || panel.Datasource.Type != "prometheus" || panel.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: data source %+v, want the ${datasource} variable", panel.Title, panel.Datasource)
		}
		if len(panel.Targets) == 0 {
			t.Errorf("panel %q has no query", panel.Title)
		}
		for _, tg := range panel.Targets {
			queries++
			if _, err := p.ParseExpr(Expand(tg.Expr)); err != nil {
				t.Errorf("panel %q query %s: %v", panel.Title, tg.RefID, err)
			}
		}
	}
	if queries == 0 {
		t.Fatal("no queries")
	}
}

// Expand replaces the Grafana variables the dashboard's queries use with
// values, as Grafana does before sending them.
func Expand(expr string) string {
	return strings.NewReplacer("$__rate_interval", "1m", "$instance", ".*").Replace(expr)
}
