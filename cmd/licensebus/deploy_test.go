package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
)

// These tests check deploy/ against licensebus itself: every command line
// there is one serve accepts, every port and URL fits the listeners that
// command line opens, every metric a query names is one /metrics serves.
// deploy/deploy_test.go checks the files against their tools' formats.

const deployDir = "../../deploy"

// serveFlags parses args ("serve", flags...) as serve's command line and
// returns the parsed command.
func serveFlags(t *testing.T, args []string) *cobra.Command {
	t.Helper()
	if len(args) == 0 || args[0] != "serve" {
		t.Fatalf("command %q is not serve", args)
	}
	a := &app{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }}
	root := a.rootCmd()
	cmd, rest, err := root.Find(args)
	if err != nil || cmd.Name() != "serve" {
		t.Fatalf("find serve in %q: %v", args, err)
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Fatalf("serve %q: %v", rest, err)
	}
	if err := cmd.ValidateArgs(cmd.Flags().Args()); err != nil {
		t.Fatalf("serve %q: %v", rest, err)
	}
	return cmd
}

// flagValue is the value of a flag serve parsed.
func flagValue(t *testing.T, cmd *cobra.Command, name string) string {
	t.Helper()
	f := cmd.Flags().Lookup(name)
	if f == nil {
		t.Fatalf("serve has no --%s", name)
	}
	return f.Value.String()
}

func port(t *testing.T, hostport string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatalf("%q: %v", hostport, err)
	}
	return p
}

// Ensure the systemd unit runs a serve command line serve accepts, keeps
// its data in its StateDirectory, listens on loopback only, and is
// hardened.
func TestDeploySystemd(t *testing.T) {
	f, err := os.Open(filepath.Join(deployDir, "systemd/licensebus.service"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	unit := map[string][]string{} // "Section.Key" → values
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("line %q is not Key=Value", line)
			}
			unit[section+"."+k] = append(unit[section+"."+k], v)
		}
	}
	exec := strings.Fields(unit["Service.ExecStart"][0])
	if exec[0] != "/usr/local/bin/licensebus" {
		t.Errorf("ExecStart runs %s", exec[0])
	}
	cmd := serveFlags(t, exec[1:])
	state := unit["Service.StateDirectory"]
	if len(state) != 1 || flagValue(t, cmd, "data") != "/var/lib/"+state[0] {
		t.Errorf("--data %s, StateDirectory %v: the data must be in the state directory", flagValue(t, cmd, "data"), state)
	}
	for _, name := range []string{"listen", "http"} {
		if host, _, _ := net.SplitHostPort(flagValue(t, cmd, name)); host != "127.0.0.1" {
			t.Errorf("--%s %s: not loopback", name, flagValue(t, cmd, name))
		}
	}
	for key, want := range map[string]string{
		"DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
		"PrivateDevices": "yes", "CapabilityBoundingSet": "", "RestrictSUIDSGID": "yes", "MemoryDenyWriteExecute": "yes",
	} {
		if got := unit["Service."+key]; len(got) != 1 || got[0] != want {
			t.Errorf("%s=%v, want %q", key, got, want)
		}
	}
}

// dockerfile is a Dockerfile's instructions, continuation lines joined.
func dockerfile(t *testing.T) [][2]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployDir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var out [][2]string
	var cur string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if cur == "" && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur += strings.TrimSuffix(line, "\\") + " "
			continue
		}
		cur += line
		op, arg, _ := strings.Cut(cur, " ")
		out = append(out, [2]string{strings.ToUpper(op), strings.TrimSpace(arg)})
		cur = ""
	}
	return out
}

// Ensure the Dockerfile builds a static binary in a Go stage of go.mod's
// version, ships only that binary on a static base as a non-root user,
// runs a serve command line serve accepts, and exposes what it listens on.
func TestDeployDockerfile(t *testing.T) {
	gomod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(gomod)[1]
	var froms, runs, copies []string
	last := map[string]string{}
	for _, in := range dockerfile(t) {
		switch in[0] {
		case "FROM":
			froms = append(froms, in[1])
		case "RUN":
			runs = append(runs, in[1])
		case "COPY":
			if len(froms) > 1 {
				copies = append(copies, in[1])
			}
		}
		last[in[0]] = in[1]
	}
	if len(froms) != 2 {
		t.Fatalf("stages %q, want a build stage and the image", froms)
	}
	if want := fmt.Sprintf("golang:%s-bookworm AS build", goVersion); froms[0] != want {
		t.Errorf("build stage FROM %s, want %s (go.mod says go %s)", froms[0], want, goVersion)
	}
	if !strings.HasPrefix(froms[1], "gcr.io/distroless/static") || !strings.HasSuffix(froms[1], ":nonroot") {
		t.Errorf("image FROM %s, want distroless static, nonroot", froms[1])
	}
	build := runs[len(runs)-1]
	for _, want := range []string{"CGO_ENABLED=0 ", "go build ", "-o /out/licensebus", "./cmd/licensebus"} {
		if !strings.Contains(build, want) {
			t.Errorf("build %q lacks %q", build, want)
		}
	}
	if !slices.Equal(copies, []string{"--from=build /out/licensebus /licensebus"}) {
		t.Errorf("image copies %q, want only the binary", copies)
	}
	if u := last["USER"]; !strings.HasPrefix(u, "nonroot") {
		t.Errorf("USER %q, want nonroot", u)
	}
	var entry, args []string
	if err := json.Unmarshal([]byte(last["ENTRYPOINT"]), &entry); err != nil || !slices.Equal(entry, []string{"/licensebus"}) {
		t.Errorf("ENTRYPOINT %s, want [\"/licensebus\"]", last["ENTRYPOINT"])
	}
	if err := json.Unmarshal([]byte(last["CMD"]), &args); err != nil {
		t.Fatalf("CMD %s: %v", last["CMD"], err)
	}
	cmd := serveFlags(t, args)
	exposed := strings.Fields(last["EXPOSE"])
	want := []string{port(t, flagValue(t, cmd, "listen")), port(t, flagValue(t, cmd, "http"))}
	if !slices.Equal(exposed, want) {
		t.Errorf("EXPOSE %v, want the ports CMD listens on %v", exposed, want)
	}
	if last["VOLUME"] != flagValue(t, cmd, "data") {
		t.Errorf("VOLUME %s, --data %s", last["VOLUME"], flagValue(t, cmd, "data"))
	}
}

// compose is what TestDeployCompose reads of compose.yaml.
type compose struct {
	Services map[string]struct {
		Image   string
		Build   *struct{ Context, Dockerfile string }
		Command []string
		Ports   []string
		Volumes []string
	}
}

// Ensure compose.yaml's NATS commands are a 3-server JetStream cluster by
// nats-server's own flag parser, its licensebus commands are command
// lines serve accepts joining that cluster, and Prometheus scrapes exactly
// the licensebus nodes' HTTP ports with the alert rules mounted.
func TestDeployCompose(t *testing.T) {
	dir := filepath.Join(deployDir, "compose")
	b, err := os.ReadFile(filepath.Join(dir, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	natsPort := map[string]int{} // service → client port
	var lbHTTP []string          // licensebus-N:port, what Prometheus must scrape
	joins := map[string]string{} // licensebus service → its --nats
	for name, svc := range c.Services {
		switch {
		case strings.HasPrefix(name, "nats-"):
			fs := flag.NewFlagSet(name, flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			opts, err := server.ConfigureOptions(fs, svc.Command, nil, nil, nil)
			if err != nil {
				t.Fatalf("%s: nats-server %q: %v", name, svc.Command, err)
			}
			if !opts.JetStream || opts.ServerName != name || opts.Cluster.Name != "licensebus" || opts.StoreDir == "" {
				t.Errorf("%s: jetstream %v, name %q, cluster %q, store %q", name, opts.JetStream, opts.ServerName, opts.Cluster.Name, opts.StoreDir)
			}
			cl, err := url.Parse(opts.Cluster.ListenStr)
			if err != nil {
				t.Fatalf("%s: --cluster %q: %v", name, opts.Cluster.ListenStr, err)
			}
			var peers []string
			for _, r := range server.RoutesFromStr(opts.RoutesStr) {
				if r.Port() != cl.Port() {
					t.Errorf("%s: route %s, cluster port %s", name, r, cl.Port())
				}
				peers = append(peers, r.Hostname())
			}
			slices.Sort(peers)
			var others []string
			for other := range c.Services {
				if strings.HasPrefix(other, "nats-") && other != name {
					others = append(others, other)
				}
			}
			slices.Sort(others)
			if !slices.Equal(peers, others) {
				t.Errorf("%s routes to %v, want the other servers %v", name, peers, others)
			}
			natsPort[name] = opts.Port
			if opts.Port == 0 {
				natsPort[name] = server.DEFAULT_PORT
			}
		case strings.HasPrefix(name, "licensebus-"):
			if svc.Build == nil || svc.Build.Dockerfile != "deploy/Dockerfile" {
				t.Errorf("%s: build %+v, want deploy/Dockerfile", name, svc.Build)
			} else if _, err := os.Stat(filepath.Join(dir, svc.Build.Context, svc.Build.Dockerfile)); err != nil {
				t.Errorf("%s: %v", name, err)
			}
			cmd := serveFlags(t, svc.Command)
			http := port(t, flagValue(t, cmd, "http"))
			lbHTTP = append(lbHTTP, name+":"+http)
			if len(svc.Ports) != 1 || !strings.HasPrefix(svc.Ports[0], "127.0.0.1:") || !strings.HasSuffix(svc.Ports[0], ":"+http) {
				t.Errorf("%s: ports %v, want the HTTP port %s on the host's loopback", name, svc.Ports, http)
			}
			joins[name] = flagValue(t, cmd, "nats")
		}
	}
	if len(natsPort) != 3 || len(lbHTTP) != 2 {
		t.Fatalf("%d NATS servers and %d licensebus nodes, want 3 and 2", len(natsPort), len(lbHTTP))
	}
	for name, urls := range joins {
		var hosts []string
		for _, u := range strings.Split(urls, ",") {
			pu, err := url.Parse(u)
			if err != nil || pu.Scheme != "nats" {
				t.Errorf("%s: --nats %q", name, u)
				continue
			}
			if p, ok := natsPort[pu.Hostname()]; !ok || pu.Port() != fmt.Sprint(p) {
				t.Errorf("%s: --nats %s is no NATS server's client port", name, u)
			}
			hosts = append(hosts, pu.Hostname())
		}
		if len(hosts) != len(natsPort) {
			t.Errorf("%s joins %v, want every server of the cluster", name, hosts)
		}
	}

	prom := c.Services["prometheus"]
	mounts := map[string]string{} // container path → host file
	for _, v := range prom.Volumes {
		parts := strings.Split(v, ":")
		if strings.HasPrefix(parts[0], ".") {
			if _, err := os.Stat(filepath.Join(dir, parts[0])); err != nil {
				t.Errorf("prometheus mounts %s: %v", parts[0], err)
			}
			mounts[parts[1]] = parts[0]
		}
	}
	var cfg struct {
		Global struct {
			ScrapeInterval     string `yaml:"scrape_interval"`
			EvaluationInterval string `yaml:"evaluation_interval"`
		}
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			StaticConfigs []struct {
				Targets []string
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	pb, err := os.ReadFile(filepath.Join(dir, "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(pb))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatalf("prometheus.yml: %v", err)
	}
	if mounts["/etc/prometheus/prometheus.yml"] != "./prometheus.yml" {
		t.Errorf("prometheus.yml is not mounted where --config.file reads it: %v", mounts)
	}
	for _, rf := range cfg.RuleFiles {
		if mounts[rf] != "../prometheus/alerts.yaml" {
			t.Errorf("rule file %s is not deploy/prometheus/alerts.yaml: %v", rf, mounts)
		}
	}
	if len(cfg.ScrapeConfigs) != 1 || cfg.ScrapeConfigs[0].JobName != "licensebus" || cfg.ScrapeConfigs[0].MetricsPath != "/metrics" {
		t.Fatalf("scrape configs %+v, want job licensebus on /metrics (the alerts' job label)", cfg.ScrapeConfigs)
	}
	var targets []string
	for _, sc := range cfg.ScrapeConfigs[0].StaticConfigs {
		targets = append(targets, sc.Targets...)
	}
	slices.Sort(targets)
	slices.Sort(lbHTTP)
	if !slices.Equal(targets, lbHTTP) {
		t.Errorf("Prometheus scrapes %v, want the licensebus nodes %v", targets, lbHTTP)
	}
}

// Ensure the Kubernetes Deployment's container runs a command line serve
// accepts, on the port its probes use.
func TestDeployKubernetesArgs(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(deployDir, "kubernetes/licensebus.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	found := false
	for {
		var doc struct {
			Kind string
			Spec struct {
				Template struct {
					Spec struct {
						Containers []struct {
							Args  []string
							Ports []struct {
								Name          string
								ContainerPort int `yaml:"containerPort"`
							}
						}
					}
				}
			}
		}
		if err := dec.Decode(&doc); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if doc.Kind != "Deployment" {
			continue
		}
		for _, c := range doc.Spec.Template.Spec.Containers {
			found = true
			cmd := serveFlags(t, c.Args)
			if flagValue(t, cmd, "nats") == "" {
				t.Error("the Deployment does not join the NATS cluster (--nats)")
			}
			http := port(t, flagValue(t, cmd, "http"))
			if len(c.Ports) != 1 || fmt.Sprint(c.Ports[0].ContainerPort) != http {
				t.Errorf("container ports %+v, --http port %s", c.Ports, http)
			}
		}
	}
	if !found {
		t.Fatal("no Deployment container")
	}
}

// queries are the PromQL expressions of the alert rules and the dashboard.
func queries(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	var rules struct {
		Groups []struct {
			Rules []struct{ Alert, Expr string }
		}
	}
	b, err := os.ReadFile(filepath.Join(deployDir, "prometheus/alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatal(err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			out["alert "+r.Alert] = r.Expr
		}
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct {
				RefID string `json:"refId"`
				Expr  string
			}
		}
	}
	if b, err = os.ReadFile(filepath.Join(deployDir, "grafana/licensebus.json")); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	grafana := strings.NewReplacer("$__rate_interval", "1m", "$instance", ".*")
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			out["panel "+p.Title+" "+tg.RefID] = grafana.Replace(tg.Expr)
		}
	}
	return out
}

// Ensure every metric the alert rules and the dashboard query is one
// /metrics serves after the manual's walkthrough (or Prometheus's own up).
func TestDeployQueries(t *testing.T) {
	fams, _ := scrapedAfterWalkthrough(t)
	served := map[string]bool{"up": true}
	for name, fam := range fams {
		served[name] = true
		if fam.GetType().String() == "HISTOGRAM" {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				served[name+suffix] = true
			}
		}
	}
	p := parser.NewParser(parser.Options{})
	for where, q := range queries(t) {
		expr, err := p.ParseExpr(q)
		if err != nil {
			t.Errorf("%s: %v", where, err)
			continue
		}
		parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
			if vs, ok := n.(*parser.VectorSelector); ok && !served[vs.Name] {
				t.Errorf("%s queries %s, which /metrics does not serve", where, vs.Name)
			}
			return nil
		})
	}
}

// Ensure what the NATS Helm values merge into the servers' configuration
// is configuration nats-server reads (its own parser), and lets through
// the payloads licensebus's embedded server takes.
func TestDeployNATSValuesMerge(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(deployDir, "kubernetes/nats-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		Config struct {
			Merge map[string]any
		}
	}
	if err := yaml.Unmarshal(b, &values); err != nil {
		t.Fatal(err)
	}
	conf, err := json.Marshal(values.Config.Merge) // nats-server's format reads JSON
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(path, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("merge %s: %v", conf, err)
	}
	if opts.MaxPayload != 8<<20 {
		t.Fatalf("max_payload %d, want %d as the embedded server's", opts.MaxPayload, 8<<20)
	}
}
