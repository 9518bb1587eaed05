// Package metrics is licensebus's Prometheus instrumentation: one registry
// per process with the Go and process collectors, licensebus_build_info,
// what the handlers do (commands and their outcomes, rejections, events
// appended), what the read models hold (devices by colour, licenses by
// state), how far each job trails the event stream, the dead letters, and
// the embedded NATS server's own figures. Names follow Prometheus's
// conventions: the licensebus_ prefix, base units, _total on counters, and
// labels from closed sets only (types, reasons, colours, states, job
// names), never an install code or a license id, so no family grows with
// the fleet. docs/operations.md says what each one means.
package metrics

import (
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every licensebus metric.
const Namespace = "licensebus"

// Outcomes of a command, the values of the outcome label.
const (
	OutcomeAccepted = "accepted" // its chain ended in an event that is not a rejection
	OutcomeRejected = "rejected" // it was refused, here or further down its chain
	OutcomeRepeated = "repeated" // handled before: its first outcome stands
)

// UnknownType is the type label of a message that is no licensebus type.
const UnknownType = "unknown"

// DurationBuckets are the command-to-outcome histogram's bounds, in
// seconds: a factor of about 4-5 from 5 ms to 10 s, so that the family
// stays under 200 series with every command type (9 series each).
var DurationBuckets = []float64{0.005, 0.025, 0.1, 0.5, 2.5, 10}

// Config configures Metrics.
type Config struct {
	// Version is reported by licensebus_build_info; default the module's.
	Version string
	// Sources are read at each scrape; nil ones are not reported. They
	// can be given later, with SetSources.
	Sources Sources
	// Now is the clock of the outcome latencies; default time.Now.
	Now func() time.Time
}

// Metrics holds a process's registry and its instruments. Its methods are
// safe for concurrent use, and a nil *Metrics records nothing, so the
// components it observes need no check.
type Metrics struct {
	reg *prometheus.Registry
	now func() time.Time

	commands   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	rejections *prometheus.CounterVec
	appended   *prometheus.CounterVec
	violations *prometheus.CounterVec
	leader     *prometheus.GaugeVec
	reasons    map[events.Reason]string // reason → class, the closed set

	outcomes pendingOutcomes
	scrape   *scrape
}

// New returns Metrics with a registry of its own (never the global one,
// so that tests and two servers in one process do not collide).
func New(cfg Config) *Metrics {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Version == "" {
		cfg.Version = moduleVersion()
	}
	reg := prometheus.NewRegistry()
	m := &Metrics{reg: reg, now: cfg.Now, reasons: map[events.Reason]string{}, scrape: &scrape{}}
	m.scrape.src.Store(&cfg.Sources)
	for _, r := range events.Reasons() {
		m.reasons[r] = string(r.Class())
	}
	m.commands = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "commands_total",
		Help: "Commands handled by this process, by CloudEvent type and outcome (accepted, rejected, repeated); counted when the outcome is known."},
		[]string{"type", "outcome"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "command_duration_seconds",
		Help:    "Time from a command's CloudEvent time (set by its sender) to the event that ends it (its outcome), by command type.",
		Buckets: DurationBuckets}, []string{"type"})
	m.rejections = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "rejections_total",
		Help: "Rejection events this process appended, by reason code and its class."}, []string{"reason", "class"})
	m.appended = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "events_appended_total",
		Help: "Events (rejections included) this process appended to the event stream, by CloudEvent type; repeats JetStream recognised are not counted."},
		[]string{"type"})
	m.violations = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "permission_violations_total",
		Help: "NATS permission violations this process saw, by operation (publish, subscribe)."}, []string{"operation"})
	m.leader = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "job_leader",
		Help: "1 while this process runs the named job (holds its leadership), 0 while it stands by or the job stopped."}, []string{"name"})
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "build_info",
		Help: "Always 1; its labels say which licensebus and Go built this process."}, []string{"version", "goversion"})
	buildInfo.WithLabelValues(cfg.Version, goVersion()).Set(1)
	for _, op := range []string{"publish", "subscribe"} {
		m.violations.WithLabelValues(op) // present at 0, so rate() sees the first one
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo, m.commands, m.duration, m.rejections, m.appended, m.violations, m.leader,
		m.scrape)
	m.outcomes.init()
	return m
}

// SetSources replaces what scrapes read besides the instruments: a
// process serves /metrics while it starts, and has its read models only
// once started.
func (m *Metrics) SetSources(src Sources) { m.scrape.src.Store(&src) }

// Registry is the process's registry, for collectors of its own.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in Prometheus's text (or OpenMetrics) format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, EnableOpenMetrics: true, MaxRequestsInFlight: 4,
		Timeout: 10 * time.Second})
}

// Command is told that a command is being decided in this process: its
// outcome (the first terminal event of its correlation) is on its way,
// and Fold counts it when it comes.
func (m *Metrics) Command(cmd *events.Message) {
	if m == nil || cmd == nil {
		return
	}
	sent := cmd.Event.Time()
	if sent.IsZero() {
		sent = m.now()
	}
	m.outcomes.add(cmd.CorrelationID(), typeLabel(cmd), sent)
}

// Repeated is told that a command was handled before: its first outcome
// stands and nothing is appended.
func (m *Metrics) Repeated(cmd *events.Message) {
	if m == nil {
		return
	}
	m.commands.WithLabelValues(typeLabel(cmd), OutcomeRepeated).Inc()
	if cmd != nil {
		m.outcomes.remove(cmd.CorrelationID())
	}
}

// Appended is told that this process stored ev on the event stream (not a
// repeat of an earlier append).
func (m *Metrics) Appended(ev *events.Message) {
	if m == nil || ev == nil {
		return
	}
	m.appended.WithLabelValues(typeLabel(ev)).Inc()
	if r, ok := ev.Data.(*events.Rejected); ok {
		reason, class := string(r.Reason), m.reasons[r.Reason]
		if class == "" {
			reason, class = "other", string(events.Internal) // a foreign reason: no label from outside
		}
		m.rejections.WithLabelValues(reason, class).Inc()
	}
}

// Unparsed is told that a message that is no CloudEvent was refused: it
// has no correlation for an outcome to come on.
func (m *Metrics) Unparsed() {
	if m == nil {
		return
	}
	m.commands.WithLabelValues(UnknownType, OutcomeRejected).Inc()
}

// Fold sees every event of the stream in order (register it on the
// process's feed): the first terminal event of a command this process
// decided is the command's outcome.
func (m *Metrics) Fold(_ uint64, ev *events.Message) {
	if m == nil || ev == nil || !ev.Info.Terminal {
		return
	}
	p, ok := m.outcomes.take(ev.CorrelationID())
	if !ok {
		return
	}
	outcome := OutcomeAccepted
	if _, rejected := ev.Data.(*events.Rejected); rejected {
		outcome = OutcomeRejected
	}
	m.commands.WithLabelValues(p.typ, outcome).Inc()
	at := ev.Event.Time()
	if at.IsZero() {
		at = m.now()
	}
	m.duration.WithLabelValues(p.typ).Observe(max(0, at.Sub(p.sent).Seconds()))
}

// PermissionViolation counts a NATS permission violation (operation is
// "publish" or "subscribe"): the hook the identities' error handler calls.
func (m *Metrics) PermissionViolation(operation string) {
	if m == nil {
		return
	}
	if operation != "publish" && operation != "subscribe" {
		operation = "other"
	}
	m.violations.WithLabelValues(operation).Inc()
}

// SetLeader says whether this process runs job name now: the hook of the
// jobs' leader election. Until jobs are elected, every process runs every
// job and reports 1, and 0 for a job that stopped with an error.
func (m *Metrics) SetLeader(name string, leader bool) {
	if m == nil {
		return
	}
	v := 0.0
	if leader {
		v = 1
	}
	m.leader.WithLabelValues(name).Set(v)
}

// typeLabel is the type label of m: its CloudEvent type when licensebus
// defines it, "unknown" otherwise (a label never comes from outside).
func typeLabel(m *events.Message) string {
	if m == nil || m.Info.Type == "" {
		return UnknownType
	}
	return string(m.Info.Type)
}

// pendingOutcomes are the commands decided here whose outcome has not come
// yet, by correlation id: two generations of at most maxPending each, so
// commands whose outcome never comes (a crash elsewhere) age out.
type pendingOutcomes struct {
	mu       sync.Mutex
	cur, old map[string]pending
}

type pending struct {
	typ  string
	sent time.Time
}

const maxPending = 1 << 16

func (p *pendingOutcomes) init() { p.cur, p.old = map[string]pending{}, map[string]pending{} }

func (p *pendingOutcomes) add(corr, typ string, sent time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.cur[corr]; ok {
		return
	}
	if _, ok := p.old[corr]; ok {
		return
	}
	if len(p.cur) >= maxPending {
		p.old, p.cur = p.cur, make(map[string]pending, maxPending/4)
	}
	p.cur[corr] = pending{typ: typ, sent: sent}
}

func (p *pendingOutcomes) take(corr string) (pending, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if v, ok := p.cur[corr]; ok {
		delete(p.cur, corr)
		return v, true
	}
	if v, ok := p.old[corr]; ok {
		delete(p.old, corr)
		return v, true
	}
	return pending{}, false
}

func (p *pendingOutcomes) remove(corr string) { p.take(corr) }

// moduleVersion is the main module's version as the build recorded it.
func moduleVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

func goVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.GoVersion
	}
	return "unknown"
}
