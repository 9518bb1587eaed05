package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/licensebus/licensebus/internal/metrics"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// families is one scrape of /metrics, parsed.
type families map[string]*dto.MetricFamily

// scrape GETs /metrics of h and parses it as Prometheus's text format.
func scrape(tb testing.TB, h http.Handler) families {
	tb.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		tb.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		tb.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// value is the value of the series of family name whose labels include
// labels (name=value pairs); ok is false when there is none.
func (f families) value(name string, labels ...string) (float64, bool) {
	fam := f[name]
	if fam == nil {
		return 0, false
	}
	for _, m := range fam.GetMetric() {
		if !hasLabels(m, labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

func hasLabels(m *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// series counts the series of a family as Prometheus stores them: a
// histogram's buckets, sum and count each count.
func series(fam *dto.MetricFamily) int {
	n := 0
	for _, m := range fam.GetMetric() {
		if h := m.GetHistogram(); h != nil {
			n += len(h.GetBucket()) + 3 // +Inf, _sum, _count
			continue
		}
		if s := m.GetSummary(); s != nil {
			n += len(s.GetQuantile()) + 2
			continue
		}
		n++
	}
	return n
}

// walkthrough runs the manual from the CLI on s (as TestManualWalkthrough
// does) with three devices on the second SmartServer, provisioned once its
// capacity covers two, and ends with a refused activation.
func walkthrough(tb testing.TB, s *Server) {
	tb.Helper()
	url := s.URL()
	cid := mustCLI(tb, url, "customer", "create", "--name", "P2022-0208")
	capID := mustCLI(tb, url, "license", "add", "--customer", cid, "--kind", "capacity", "--devices", "2")
	mntID := mustCLI(tb, url, "license", "add", "--customer", cid, "--kind", "maintenance", "--devices", "2", "--expires", "2099-12-31")
	mustCLI(tb, url, "smartserver", "register", "--install-code", "IC-0001", "--name", "SC-01", "--version", "3.4")
	mustCLI(tb, url, "smartserver", "register", "--install-code", "IC-0002", "--name", "SC-02", "--version", "3.5")
	for _, n := range []string{"AHU-1", "AHU-2", "AHU-3"} {
		mustCLI(tb, url, "device", "add", "IC-0002", "--protocol", "bacnet", "--name", n)
	}
	mustCLI(tb, url, "smartserver", "set-customer-id", "IC-0001", cid)
	mustCLI(tb, url, "smartserver", "download-licenses", "IC-0001")
	mustCLI(tb, url, "smartserver", "activate", "IC-0001", capID, mntID)
	mustCLI(tb, url, "smartserver", "transfer-to-cloud", "IC-0001", "--yes")
	mustCLI(tb, url, "smartserver", "set-customer-id", "IC-0002", cid)
	mustCLI(tb, url, "smartserver", "download-licenses", "IC-0002")
	mustCLI(tb, url, "smartserver", "activate", "IC-0002", capID, mntID)
	mustCLI(tb, url, "device", "provision", "IC-0002", "--all")
	if r := cli(tb, url, "smartserver", "activate", "IC-0001", capID); r.code != exitRefused {
		tb.Fatalf("activate elsewhere: exit %d stderr %q, want a refusal", r.code, r.err)
	}
}

// scrapedAfterWalkthrough runs the walkthrough on a new server and
// returns the scrape of /metrics that followed.
func scrapedAfterWalkthrough(t *testing.T) (families, *Server) {
	t.Helper()
	s := mustServe(t, t.TempDir())
	walkthrough(t, s)
	p := &probes{metrics: s.Metrics()}
	p.server.Store(s)
	return scrape(t, p.routes()), s
}

// Ensure /metrics, scraped after the manual's walkthrough, has every
// family docs/operations.md names, with the values the walkthrough
// implies, and no family near 200 series.
func TestMetricsAfterWalkthrough(t *testing.T) {
	fams, s := scrapedAfterWalkthrough(t)
	url := s.URL()
	const activate = "io.licensebus.smartserver.activate_license"
	var fleet struct {
		Total struct{ Purple, Blue, Green int } `json:"total"`
	}
	mustJSON(t, url, &fleet, "fleet", "status")

	tests := []struct {
		name   string
		family string
		labels []string
		check  func(v float64) bool
		want   string
	}{
		{"activations accepted", "licensebus_commands_total", []string{"type", activate, "outcome", "accepted"}, func(v float64) bool { return v >= 4 }, ">= 4 (two licenses on each SmartServer)"},
		{"the activation refused", "licensebus_commands_total", []string{"type", activate, "outcome", "rejected"}, func(v float64) bool { return v == 1 }, "1"},
		{"customers created", "licensebus_commands_total", []string{"type", "io.licensebus.customer.create", "outcome", "accepted"}, func(v float64) bool { return v == 1 }, "1"},
		{"activation latencies", "licensebus_command_duration_seconds", []string{"type", activate}, func(v float64) bool { return v == 5 }, "5 observations"},
		{"rejections by reason", "licensebus_rejections_total", []string{"reason", "license_already_active", "class", "conflict"}, func(v float64) bool { return v == 1 }, "1"},
		{"licenses activated", "licensebus_events_appended_total", []string{"type", "io.licensebus.smartserver.license_activated"}, func(v float64) bool { return v == 4 }, "4"},
		{"purple devices as fleet status", "licensebus_devices", []string{"colour", "purple"}, func(v float64) bool { return int(v) == fleet.Total.Purple }, "fleet status"},
		{"blue devices as fleet status", "licensebus_devices", []string{"colour", "blue"}, func(v float64) bool { return int(v) == fleet.Total.Blue }, "fleet status"},
		{"green devices as fleet status", "licensebus_devices", []string{"colour", "green"}, func(v float64) bool { return int(v) == fleet.Total.Green && v == 2 }, "fleet status, 2"},
		{"capacity licenses active", "licensebus_licenses", []string{"kind", "capacity", "state", "active"}, func(v float64) bool { return v == 1 }, "1"},
		{"maintenance licenses in the cloud", "licensebus_licenses", []string{"kind", "maintenance", "state", "cloud"}, func(v float64) bool { return v == 0 }, "0"},
		{"no dead letters", "licensebus_dead_letters", []string{"stream", "commands"}, func(v float64) bool { return v == 0 }, "0"},
		{"projections lag", "licensebus_projection_lag_events", nil, func(v float64) bool { return v >= 0 }, "present"},
		{"fold lag", "licensebus_fold_lag_events", nil, func(v float64) bool { return v >= 0 }, "present"},
		{"reactor lag", "licensebus_reactor_lag_events", []string{"reactor", "cloud-requests"}, func(v float64) bool { return v >= 0 }, "present"},
		{"audit lag", "licensebus_audit_lag_messages", nil, func(v float64) bool { return v >= 0 }, "present"},
		{"no permission violations", "licensebus_permission_violations_total", []string{"operation", "publish"}, func(v float64) bool { return v == 0 }, "0"},
		{"this process runs the projections", "licensebus_job_leader", []string{"name", "projections"}, func(v float64) bool { return v == 1 }, "1"},
		{"build info", "licensebus_build_info", nil, func(v float64) bool { return v == 1 }, "1"},
		{"every source read", "licensebus_scrape_source_up", []string{"source", "nats"}, func(v float64) bool { return v == 1 }, "1"},
		{"embedded server's messages", "licensebus_nats_in_msgs_total", nil, func(v float64) bool { return v > 0 }, "> 0"},
		{"event stream's messages", "licensebus_nats_stream_messages", []string{"stream", "LICENSEBUS_EVENTS"}, func(v float64) bool { return v > 0 }, "> 0"},
		{"durables' pending", "licensebus_nats_consumer_pending_messages", []string{"consumer", "device-commands"}, func(v float64) bool { return v == 0 }, "0"},
		{"JetStream's storage", "licensebus_nats_jetstream_storage_bytes", []string{"storage", "file"}, func(v float64) bool { return v > 0 }, "> 0"},
		{"Go collector", "go_goroutines", nil, func(v float64) bool { return v > 0 }, "> 0"},
		{"process collector", "process_resident_memory_bytes", nil, func(v float64) bool { return v > 0 }, "> 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, ok := fams.value(tt.family, tt.labels...)
			if !ok {
				t.Fatalf("%s%v: no such series", tt.family, tt.labels)
			}
			if !tt.check(v) {
				t.Fatalf("%s%v=%v, want %s", tt.family, tt.labels, v, tt.want)
			}
		})
	}
	for name, fam := range fams {
		if n := series(fam); n >= 200 {
			t.Errorf("%s has %d series, want < 200", name, n)
		}
		if strings.HasPrefix(name, "licensebus_") {
			for _, m := range fam.GetMetric() {
				for _, lp := range m.GetLabel() {
					if n := lp.GetName(); n == "install_code" || n == "license_id" || n == "customer_id" {
						t.Errorf("%s has label %s", name, n)
					}
				}
			}
		}
	}
}

// Ensure the histogram stays under 200 series whatever the traffic: one
// series set per command type, each buckets + +Inf + sum + count.
func TestDurationHistogramBounded(t *testing.T) {
	commands := 0
	for _, typ := range events.Types() {
		if info, _ := events.Lookup(typ); info.Command {
			commands++
		}
	}
	if got := commands * (len(metrics.DurationBuckets) + 3); got >= 200 {
		t.Fatalf("command_duration_seconds: %d series with %d command types, want < 200", got, commands)
	}
}

// Ensure /readyz is 503 before the server has started and while its read
// models are behind the event stream, with the reason, and 200 once they
// have caught up; /healthz is 200 throughout.
func TestReadyz(t *testing.T) {
	p := &probes{}
	s := mustServeCfg(t, ServeConfig{DataDir: t.TempDir(), Telemetry: TelemetryConfig{ReadyMaxLag: 1}})
	p.metrics = s.Metrics()
	h := p.routes()
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		b, _ := io.ReadAll(rec.Body)
		return rec.Code, string(b)
	}
	waitReady := func() {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			code, body := get("/readyz")
			if code == http.StatusOK {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("/readyz still %d %q", code, body)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "starting") {
		t.Fatalf("/readyz before the server: %d %q, want 503 starting", code, body)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz before the server: %d, want 200", code)
	}
	p.server.Store(s)
	waitReady()

	// Stop the projections, write events, and the read models are behind.
	stopComponent(t, s, "projections")
	c, js := mustClient(t, s.URL())
	last := func() uint64 {
		n, err := bus.LastSeq(ctxFor(t, 5*time.Second), js, events.EventsStream)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := last()
	for _, ic := range []string{"IC-READY-1", "IC-READY-2"} { // two events: more than the bound of 1
		if _, err := c.Send(ctxFor(t, 10*time.Second), events.RegisterType, &events.Register{InstallCode: ic, Name: "SC", Version: "3.4"},
			client.SendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { return last() >= before+2 })
	code, body := get("/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "projections") || !strings.Contains(body, "events behind") {
		t.Fatalf("/readyz with the projections behind: %d %q, want 503 naming the projections' lag", code, body)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz while behind: %d, want 200", code)
	}

	// Started again, they catch up.
	s.run(s.obs.ctx, "projections", s.runner.Run)
	waitReady()
}

// Ensure the listeners refuse one address for both.
func TestHTTPFlags(t *testing.T) {
	r := cli(t, "", "serve", "--data", t.TempDir(), "--listen", "127.0.0.1:-1", "--http", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0")
	if r.code != exitUsage || !strings.Contains(r.err, "--metrics-listen") {
		t.Fatalf("serve with one address twice: exit %d %q, want a usage error", r.code, r.err)
	}
}

// stopComponent stops one component of s and waits until it has
// returned.
func stopComponent(tb testing.TB, s *Server, name string) {
	tb.Helper()
	s.obs.mu.Lock()
	stop := s.obs.running[name]
	s.obs.mu.Unlock()
	if stop == nil {
		tb.Fatalf("%s is not running", name)
	}
	stop()
	waitFor(tb, func() bool {
		s.obs.mu.Lock()
		defer s.obs.mu.Unlock()
		return s.obs.running[name] == nil
	})
}
