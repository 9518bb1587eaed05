// Package cloud connects the license cloud's rules (packages customer and
// license) to the bus: it handles cloud commands (create customer, add
// license) and answers the device side's requests (activation requested,
// transfer requested) by binding and releasing licenses, each an
// expected-sequence append on the license's subjects, so a license is
// bound to at most one SmartServer however many processes race for it.
package cloud

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/handlers/customer"
	"github.com/licensebus/licensebus/handlers/license"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// CommandsConsumer is the durable consumer of cloud commands. WARNING:
// renaming it makes the new consumer start from the beginning of its
// stream (commands handled again, idempotently, but all of them).
const CommandsConsumer = "cloud-commands"

// RequestsReactor names the reactions to the device side's requests (its
// checkpoint in bus.ReactorsBucket). Like a durable's name, it must not
// change.
const RequestsReactor = "cloud-requests"

// replacedConsumers did the reactor's work in earlier versions: one durable
// per request type, and before them one with both filters.
var replacedConsumers = []string{"cloud-activation-requests", "cloud-transfer-requests", "cloud-reactions"}

// Config holds a Handler's dependencies.
type Config struct {
	JS          jetstream.JetStream // required
	Logger      zerolog.Logger
	Workers     int              // per consumer; default 16
	Batch       int              // messages per pull; default 512
	Now         func() time.Time // default time.Now
	DeadLetters *bus.DeadLetters // default on JS
	// Feed shares one read of the event stream between the components of
	// a process; default a feed of its own.
	Feed *bus.Feed
}

// Handler is the cloud side. It is safe for concurrent use; run it with Run.
type Handler struct {
	js    jetstream.JetStream
	sh    *bus.Shell
	react *bus.Reactor
	now   func() time.Time
	n, b  int

	// The folded state, guarded by the shell.
	customers map[string]aggregate[customer.State]
	licenses  map[string]aggregate[license.State]
}

// aggregate is an aggregate's state and the sequence of its last event,
// the expectation of its next append.
type aggregate[S any] struct {
	state S
	seq   uint64
}

// New returns a cloud Handler. The streams must exist.
func New(ctx context.Context, cfg Config) (*Handler, error) {
	if cfg.JS == nil {
		return nil, errors.New("cloud: JS is required")
	}
	h := &Handler{js: cfg.JS, now: cfg.Now, n: cfg.Workers, b: cfg.Batch,
		customers: map[string]aggregate[customer.State]{}, licenses: map[string]aggregate[license.State]{}}
	if h.now == nil {
		h.now = time.Now
	}
	if cfg.Feed == nil {
		cfg.Feed = bus.NewFeed(cfg.JS, cfg.Logger)
	}
	var err error
	h.sh, err = bus.NewShell(ctx, cfg.JS, bus.ShellConfig{Name: "cloud", Source: events.CloudSource, Apply: h.apply,
		Feed: cfg.Feed, DeadLetters: cfg.DeadLetters, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	// Registered after the shell's fold: a request is in the state before
	// the reaction to it runs.
	h.react = cfg.Feed.React(bus.ReactorConfig{
		Name: RequestsReactor, Match: isRequest, Key: requestKey, Handle: h.handleRequest,
		Workers: h.n, Replaces: replacedConsumers, DeadLetters: h.sh.DeadLetters(), Logger: h.sh.Logger(),
	})
	return h, nil
}

// apply folds one event; an event at or below an aggregate's last
// sequence was applied already.
func (h *Handler) apply(seq uint64, m *events.Message) {
	switch d := m.Data.(type) {
	case *events.CustomerCreated:
		if a := h.customers[d.CustomerID]; a.seq < seq {
			h.customers[d.CustomerID] = aggregate[customer.State]{customer.Evolve(a.state, d), seq}
		}
	case *events.LicenseAdded, *events.LicenseBound, *events.LicenseReleased:
		lid := m.Data.Key()
		if a := h.licenses[lid]; a.seq < seq {
			h.licenses[lid] = aggregate[license.State]{license.Evolve(a.state, d, m.CausationID()), seq}
		}
	}
}

// Run folds the event stream, waits until it has caught up, then handles
// commands and device requests until ctx ends.
func (h *Handler) Run(ctx context.Context) error {
	log := h.sh.Logger()
	log.Info().Msg("cloud handler starting")
	err := bus.Serve(ctx, h.js, bus.Service{
		Fold: h.sh.Fold(),
		Endpoints: []bus.Endpoint{{
			Stream:   events.CommandsStream,
			Consumer: jetstream.ConsumerConfig{Durable: CommandsConsumer, FilterSubjects: []string{events.CloudCommands}},
			Pool: bus.PoolConfig{Workers: h.n, Batch: h.b, Key: commandKey, DeadLetters: h.sh.DeadLetters(), Logger: h.sh.Logger()},
			Handle: h.handleCommand,
		}},
		Reactors: []*bus.Reactor{h.react},
	})
	if err != nil {
		return fmt.Errorf("cloud: %w", err)
	}
	return nil
}

// isRequest picks the device side's requests from the event stream.
func isRequest(m *events.Message) bool {
	switch m.Data.(type) {
	case *events.ActivationRequested, *events.TransferRequested:
		return true
	}
	return false
}

func commandKey(d *bus.Delivery) string {
	if d.Message != nil && d.Message.Data != nil {
		if k := d.Message.Data.Key(); k != "" {
			return k
		}
		return d.Message.ID()
	}
	return ""
}

// requestKey partitions requests: an activation by its license, a transfer
// by its SmartServer.
func requestKey(m *events.Message) string {
	if r, ok := m.Data.(*events.ActivationRequested); ok {
		return r.LicenseID
	}
	return m.Data.Key()
}

// clock is the cloud's clock, truncated so dates in events are stable.
func (h *Handler) clock() time.Time { return h.now().UTC().Truncate(time.Millisecond) }

func (h *Handler) handleCommand(ctx context.Context, d *bus.Delivery) error {
	ok, err := h.sh.Screen(ctx, d, func(i events.Info) bool { return i.Command && i.Side == events.CloudSide })
	if !ok || err != nil {
		return err
	}
	m := d.Message
	now := h.clock()
	switch c := m.Data.(type) {
	case *events.CreateCustomer:
		id := customer.ID(m.ID(), c)
		return h.sh.Handle(ctx, bus.Step{Cause: m, Once: true, Source: events.CloudSource, Actor: m.Actor(), Aggregate: "customer", ID: id,
			Decide: func() bus.Decided {
				a := h.customers[id]
				return bus.Decided{Decision: customer.Create(a.state, m.ID(), c), Filter: events.AggregateFilter("customer", id), Expect: a.seq}
			}})
	case *events.AddLicense:
		id := license.ID(m.ID(), c)
		return h.sh.Handle(ctx, bus.Step{Cause: m, Once: true, Source: events.CloudSource, Actor: m.Actor(), Aggregate: "license", ID: id,
			Decide: func() bus.Decided {
				a := h.licenses[id]
				known := h.customers[c.CustomerID].state.Exists
				return bus.Decided{Decision: license.Add(a.state, m.ID(), c, known, now), Filter: events.AggregateFilter("license", id), Expect: a.seq}
			}})
	}
	return nil
}

// handleRequest answers the device side's requests, as the reactor hands
// them over (decoded: what does not decode is no request).
func (h *Handler) handleRequest(ctx context.Context, d *bus.Delivery) error {
	m := d.Message
	// The request must be in the fold before deciding on it, or the
	// handled set could miss our own answer.
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := h.sh.Fold().WaitFor(wctx, d.Seq); err != nil {
		return err
	}
	now := h.clock()
	switch r := m.Data.(type) {
	case *events.ActivationRequested:
		return h.sh.Handle(ctx, h.licenseStep(m, r.LicenseID, true, func(s license.State) bus.Decided {
			return bus.Decided{Decision: license.Bind(s, m.ID(), r, now)}
		}))
	case *events.TransferRequested:
		for _, lid := range r.LicenseIDs {
			if err := h.sh.Handle(ctx, h.licenseStep(m, lid, false, func(s license.State) bus.Decided {
				return bus.Decided{Decision: license.Release(s, m.ID(), r.InstallCode, lid, now)}
			})); err != nil {
				return err
			}
		}
	}
	return nil
}

// licenseStep is a reaction decided on license lid's state.
func (h *Handler) licenseStep(m *events.Message, lid string, once bool, decide func(license.State) bus.Decided) bus.Step {
	return bus.Step{Cause: m, Once: once, Source: events.CloudSource, Actor: events.CloudSource, Aggregate: "license", ID: lid,
		Decide: func() bus.Decided {
			a := h.licenses[lid]
			d := decide(a.state)
			d.Filter, d.Expect = events.AggregateFilter("license", lid), a.seq
			return d
		}}
}
