package metrics

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"
)

// Sources are what a scrape reads besides the instruments: the read
// models, the jobs' positions, the dead letters and the embedded server.
// Each is optional; each is read once per scrape, so it must be cheap (the
// models keep their counts, the rest are a few requests to the server).
type Sources struct {
	// Devices returns the fleet's devices per colour.
	Devices func() Colours
	// Licenses returns the inventory's licenses by kind and state.
	Licenses func() []LicenseCount
	// Lags returns how far each job of this process trails its stream.
	Lags func(ctx context.Context) ([]Lag, error)
	// DeadLetters returns the messages held on the dead-letter stream, by
	// the stream they came from ("commands", "events").
	DeadLetters func(ctx context.Context) (map[string]uint64, error)
	// Server is the embedded NATS server, nil when licensebus joined one
	// (which has its own monitoring endpoint).
	Server *server.Server
}

// Colours are devices per colour (the DMM Devices widget's).
type Colours struct{ Purple, Blue, Green int }

// LicenseCount is how many licenses of a kind are in a state.
type LicenseCount struct {
	Kind, State string
	N           int
}

// Kinds of Lag.
const (
	LagFold        = "fold"        // the handlers' state (the process's feed)
	LagProjections = "projections" // the read models in memory
	LagReactor     = "reactor"     // a reactor's checkpoint; Name is the reactor
	LagAudit       = "audit"       // the audit trail, in source messages of both streams
)

// Lag is how many messages a job of this process has not handled yet.
type Lag struct {
	Kind, Name string
	Messages   uint64
}

// scrapeTimeout bounds the sources' requests of one scrape.
const scrapeTimeout = 5 * time.Second

var (
	descDevices = prometheus.NewDesc(Namespace+"_devices", "DMM devices of the fleet by colour: purple (unlicensed), blue (licensed, not provisioned), green (provisioned), as `fleet status` shows them.",
		[]string{"colour"}, nil)
	descLicenses = prometheus.NewDesc(Namespace+"_licenses", "Licenses of the inventory by kind (capacity, maintenance) and state (cloud, activating, active, transferring).",
		[]string{"kind", "state"}, nil)
	descFoldLag = prometheus.NewDesc(Namespace+"_fold_lag_events", "Events of the event stream the handlers' state (this process's feed) has not folded yet.",
		nil, nil)
	descProjectionLag = prometheus.NewDesc(Namespace+"_projection_lag_events", "Events of the event stream the read models of this process have not applied yet.",
		nil, nil)
	descReactorLag = prometheus.NewDesc(Namespace+"_reactor_lag_events", "Events of the event stream past the point up to which the reactor has handled every reaction.",
		[]string{"reactor"}, nil)
	descAuditLag = prometheus.NewDesc(Namespace+"_audit_lag_messages", "Messages of the command and event streams the audit trail does not record yet.",
		nil, nil)
	descDeadLetters = prometheus.NewDesc(Namespace+"_dead_letters", "Messages held on the dead-letter stream, by the stream they could not be handled on.",
		[]string{"stream"}, nil)
	descSourceUp = prometheus.NewDesc(Namespace+"_scrape_source_up", "1 if the last scrape could read the source (lags, dead_letters, nats), 0 if reading it failed.",
		[]string{"source"}, nil)
)

// Descriptions of the embedded server's figures (the names
// prometheus-nats-exporter gives them, under licensebus_nats_).
var (
	descNATSInMsgs    = prometheus.NewDesc(Namespace+"_nats_in_msgs_total", "Messages the embedded NATS server received.", nil, nil)
	descNATSOutMsgs   = prometheus.NewDesc(Namespace+"_nats_out_msgs_total", "Messages the embedded NATS server sent.", nil, nil)
	descNATSInBytes   = prometheus.NewDesc(Namespace+"_nats_in_bytes_total", "Payload bytes the embedded NATS server received.", nil, nil)
	descNATSOutBytes  = prometheus.NewDesc(Namespace+"_nats_out_bytes_total", "Payload bytes the embedded NATS server sent.", nil, nil)
	descNATSConns     = prometheus.NewDesc(Namespace+"_nats_connections", "Client connections to the embedded NATS server.", nil, nil)
	descNATSSlow      = prometheus.NewDesc(Namespace+"_nats_slow_consumers_total", "Clients the embedded NATS server disconnected as slow consumers.", nil, nil)
	descJSStorage     = prometheus.NewDesc(Namespace+"_nats_jetstream_storage_bytes", "Bytes JetStream stores, by storage type (file, memory).", []string{"storage"}, nil)
	descJSStreamMsgs  = prometheus.NewDesc(Namespace+"_nats_stream_messages", "Messages a JetStream stream holds.", []string{"stream"}, nil)
	descJSStreamBytes = prometheus.NewDesc(Namespace+"_nats_stream_bytes", "Bytes a JetStream stream holds.", []string{"stream"}, nil)
	descJSPending     = prometheus.NewDesc(Namespace+"_nats_consumer_pending_messages", "Messages a durable consumer has not been delivered yet.", []string{"stream", "consumer"}, nil)
	descJSAckPending  = prometheus.NewDesc(Namespace+"_nats_consumer_ack_pending_messages", "Messages a durable consumer was delivered and has not acknowledged yet.", []string{"stream", "consumer"}, nil)
)

// scrape is the collector of the Sources.
type scrape struct{ src atomic.Pointer[Sources] }

func (s *scrape) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDevices, descLicenses, descFoldLag, descProjectionLag, descReactorLag, descAuditLag,
		descDeadLetters, descSourceUp, descNATSInMsgs, descNATSOutMsgs, descNATSInBytes, descNATSOutBytes, descNATSConns, descNATSSlow,
		descJSStorage, descJSStreamMsgs, descJSStreamBytes, descJSPending, descJSAckPending} {
		ch <- d
	}
}

func (s *scrape) Collect(ch chan<- prometheus.Metric) {
	src := s.src.Load()
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	up := func(source string, err error) {
		v := 1.0
		if err != nil {
			v = 0
		}
		gauge(descSourceUp, v, source)
	}
	if f := src.Devices; f != nil {
		c := f()
		gauge(descDevices, float64(c.Purple), "purple")
		gauge(descDevices, float64(c.Blue), "blue")
		gauge(descDevices, float64(c.Green), "green")
	}
	if f := src.Licenses; f != nil {
		for _, l := range f() {
			gauge(descLicenses, float64(l.N), l.Kind, l.State)
		}
	}
	if f := src.Lags; f != nil {
		lags, err := f(ctx)
		up("lags", err)
		for _, l := range lags {
			switch l.Kind {
			case LagFold:
				gauge(descFoldLag, float64(l.Messages))
			case LagProjections:
				gauge(descProjectionLag, float64(l.Messages))
			case LagReactor:
				gauge(descReactorLag, float64(l.Messages), l.Name)
			case LagAudit:
				gauge(descAuditLag, float64(l.Messages))
			}
		}
	}
	if f := src.DeadLetters; f != nil {
		dl, err := f(ctx)
		up("dead_letters", err)
		for stream, n := range dl {
			gauge(descDeadLetters, float64(n), stream)
		}
	}
	if ns := src.Server; ns != nil {
		err := collectServer(ns, gauge, counter)
		up("nats", err)
	}
}

// collectServer reads the embedded server's monitoring structs in process
// (what its /varz and /jsz would answer).
func collectServer(ns *server.Server, gauge, counter func(*prometheus.Desc, float64, ...string)) error {
	v, err := ns.Varz(nil)
	if err != nil {
		return err
	}
	counter(descNATSInMsgs, float64(v.InMsgs))
	counter(descNATSOutMsgs, float64(v.OutMsgs))
	counter(descNATSInBytes, float64(v.InBytes))
	counter(descNATSOutBytes, float64(v.OutBytes))
	gauge(descNATSConns, float64(v.Connections))
	counter(descNATSSlow, float64(v.SlowConsumers))
	js, err := ns.Jsz(&server.JSzOptions{Accounts: true, Streams: true, Consumer: true, Config: true})
	if err != nil {
		return err
	}
	gauge(descJSStorage, float64(js.Store), "file")
	gauge(descJSStorage, float64(js.Memory), "memory")
	seen := map[string]bool{} // a stream name in two accounts is reported once
	for _, acc := range js.AccountDetails {
		for _, st := range acc.Streams {
			if seen[st.Name] {
				continue
			}
			seen[st.Name] = true
			gauge(descJSStreamMsgs, float64(st.State.Msgs), st.Name)
			gauge(descJSStreamBytes, float64(st.State.Bytes), st.Name)
			for _, c := range st.Consumer {
				// Durables only: ordered consumers and KV watchers come
				// and go under generated names.
				if c == nil || c.Config == nil || c.Config.Durable == "" {
					continue
				}
				gauge(descJSPending, float64(c.NumPending), st.Name, c.Name)
				gauge(descJSAckPending, float64(c.NumAckPending), st.Name, c.Name)
			}
		}
	}
	return nil
}
