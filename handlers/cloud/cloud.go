// Package cloud connects the license cloud's rules (packages customer,
// license and signing) to the bus: it handles cloud commands (create
// customer, add license, fulfil, rotate and revoke keys) and answers the
// device side's requests (activation requested, transfer requested) by
// binding and releasing licenses, each an expected-sequence append on the
// license's subjects, so a license is bound to at most one SmartServer
// however many processes race for it, online or offline. Every binding
// carries its grant, signed with the ring's current key.
package cloud

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/events/grant"
	"github.com/licensebus/licensebus/handlers"
	"github.com/licensebus/licensebus/handlers/customer"
	"github.com/licensebus/licensebus/handlers/license"
	"github.com/licensebus/licensebus/handlers/signing"
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
	// Horizon is how long a command id is remembered (bus.ShellConfig).
	Horizon time.Duration
	// Keys are the cloud's signing keys (internal/keyring); required.
	Keys Keys
	// Telemetry observes the handler's steps (metrics, traces).
	Telemetry bus.Telemetry
}

// Keys are the cloud's signing keys: the one that signs, and new ones.
type Keys interface {
	Current() grant.Key
	// Fixed says the key that signs was given to serve and a command
	// cannot rotate it.
	Fixed() bool
	Created(id string) time.Time
	// Rotate makes the key that signs from now on, once per command.
	Rotate(commandID string, now time.Time) (grant.Key, error)
}

// Handler is the cloud side. It is safe for concurrent use; run it with Run.
type Handler struct {
	js    jetstream.JetStream
	sh    *bus.Shell
	react *bus.Reactor
	now   func() time.Time
	n, b  int
	keys  Keys

	// The folded state, guarded by the shell.
	customers map[string]aggregate[customer.State]
	licenses  map[string]aggregate[license.State]
	signing   signing.State
	// ended are the fulfils that have an outcome (fulfilled or refused).
	ended map[string]bool
}

// aggregate is an aggregate's state and the sequence of its last event,
// the expectation of its next append.
type aggregate[S any] struct {
	state S
	seq   uint64
}

// New returns a cloud Handler. The streams must exist.
func New(ctx context.Context, cfg Config) (*Handler, error) {
	if cfg.JS == nil || cfg.Keys == nil {
		return nil, errors.New("cloud: JS and Keys are required")
	}
	h := &Handler{js: cfg.JS, now: cfg.Now, n: cfg.Workers, b: cfg.Batch, keys: cfg.Keys,
		customers: map[string]aggregate[customer.State]{}, licenses: map[string]aggregate[license.State]{}, ended: map[string]bool{}}
	if h.now == nil {
		h.now = time.Now
	}
	if cfg.Feed == nil {
		cfg.Feed = bus.NewFeed(cfg.JS, cfg.Logger)
	}
	var err error
	h.sh, err = bus.NewShell(ctx, cfg.JS, bus.ShellConfig{Name: "cloud", Source: events.CloudSource, Apply: h.apply,
		Feed: cfg.Feed, DeadLetters: cfg.DeadLetters, Logger: cfg.Logger, Horizon: cfg.Horizon, Telemetry: cfg.Telemetry})
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
	case *events.KeyAdded, *events.KeyRevoked:
		signing.Evolve(&h.signing, d)
	case *events.Fulfilled:
		h.ended[m.CausationID()] = true
	case *events.Rejected:
		if d.CommandType == string(events.FulfilType) {
			h.ended[d.CommandID] = true
		}
	}
}

// Run folds the event stream, waits until it has caught up, then handles
// commands and device requests until ctx ends.
func (h *Handler) Run(ctx context.Context) error {
	log := h.sh.Logger()
	log.Info().Msg("cloud handler starting")
	if err := h.publishKey(ctx); err != nil {
		return fmt.Errorf("cloud: %w", err)
	}
	err := bus.Serve(ctx, h.js, bus.Service{
		Fold: h.sh.Fold(),
		Endpoints: []bus.Endpoint{{
			Stream:   events.CommandsStream,
			Consumer: jetstream.ConsumerConfig{Durable: CommandsConsumer, FilterSubjects: []string{events.CloudCommands}},
			Pool:     bus.PoolConfig{Workers: h.n, Batch: h.b, Key: commandKey, DeadLetters: h.sh.DeadLetters(), Logger: h.sh.Logger()},
			Handle:   h.handleCommand,
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
	case *events.Fulfil:
		return h.fulfil(ctx, m, c, now)
	case *events.RotateKey:
		return h.rotate(ctx, m, now)
	case *events.RevokeKey:
		return h.sh.Handle(ctx, bus.Step{Cause: m, Once: true, Source: events.CloudSource, Actor: m.Actor(), Aggregate: "signing", ID: c.KeyID,
			Decide: func() bus.Decided {
				return bus.Decided{Decision: signing.Revoke(&h.signing, m.ID(), c.KeyID, h.keys.Current(), now)}
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
		// Signed before the rule runs under the state's lock, so the fold
		// never waits for a signature: the rule's signing is a lookup.
		key := h.keys.Current().Remembering()
		var s license.State
		h.sh.Read(func() { s = h.licenses[r.LicenseID].state })
		license.Bind(s, m.ID(), r, now, key)
		return h.sh.Handle(ctx, h.licenseStep(m, r.LicenseID, true, func(s license.State) bus.Decided {
			return bus.Decided{Decision: license.Bind(s, m.ID(), r, now, key)}
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
	st := h.licenseCommandStep(m, lid, decide)
	st.Once, st.Actor = once, events.CloudSource
	return st
}

// licenseCommandStep is a step of a command decided on license lid's
// state, more than once (a command that binds several licenses relies on
// its rule to tell what it did).
func (h *Handler) licenseCommandStep(m *events.Message, lid string, decide func(license.State) bus.Decided) bus.Step {
	return bus.Step{Cause: m, Source: events.CloudSource, Actor: m.Actor(), Aggregate: "license", ID: lid,
		Decide: func() bus.Decided {
			a := h.licenses[lid]
			d := decide(a.state)
			d.Filter, d.Expect = events.AggregateFilter("license", lid), a.seq
			return d
		}}
}

// publishKey publishes the key that signs, unless the event stream has it:
// before anything is bound with it, so the first key on the stream marks
// where bindings start to carry grants.
func (h *Handler) publishKey(ctx context.Context) error {
	k := h.keys.Current()
	str, err := h.js.Stream(ctx, events.EventsStream)
	if err != nil {
		return err
	}
	info, _ := events.Lookup(events.KeyAddedType)
	_, err = str.GetLastMsgForSubject(ctx, events.EventSubject(info, &events.KeyAdded{KeyID: k.ID}))
	if err == nil {
		return nil
	}
	if !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("signing key %s: %w", k.ID, err)
	}
	d := signing.Publish(&signing.State{}, k.Public(), h.keys.Created(k.ID))
	m, err := events.New(d.Event.Type, d.Event.Data, events.Meta{ID: d.Event.ID, Source: events.CloudSource, Actor: events.CloudSource})
	if err != nil {
		return err
	}
	if err := h.sh.Append(ctx, m); err != nil {
		return fmt.Errorf("publish signing key %s: %w", k.ID, err)
	}
	log := h.sh.Logger()
	log.Info().Str("key_id", k.ID).Msg("signing key published")
	return nil
}

// rotate makes a new signing key (once per command) and publishes it.
func (h *Handler) rotate(ctx context.Context, m *events.Message, now time.Time) error {
	var next grant.PublicKey
	if !h.keys.Fixed() {
		k, err := h.keys.Rotate(m.ID(), now)
		if err != nil {
			return err
		}
		next = k.Public()
	}
	return h.sh.Handle(ctx, bus.Step{Cause: m, Once: true, Source: events.CloudSource, Actor: m.Actor(), Aggregate: "signing", ID: next.ID,
		Decide: func() bus.Decided {
			return bus.Decided{Decision: signing.Rotate(&h.signing, m.ID(), next, h.keys.Fixed(), h.keys.Created(next.ID))}
		}})
}

// fulfil binds the licenses of a fulfil one by one, each with the
// expectation online activation binds with, and completes it with their
// grants. It binds all of them or none: a license that cannot be bound is
// decided first, and one lost to a race on the way takes back what the
// fulfil bound before the refusal is recorded.
func (h *Handler) fulfil(ctx context.Context, m *events.Message, c *events.Fulfil, now time.Time) error {
	ended := false
	h.sh.Read(func() { ended = h.ended[m.ID()] })
	if ended {
		// Its first outcome stands (and another command under its id is
		// id_reused): the shell knows it handled it.
		return h.sh.Handle(ctx, bus.Step{Cause: m, Once: true, Source: events.CloudSource, Actor: m.Actor(), Aggregate: "license", ID: c.LicenseIDs[0],
			Decide: func() bus.Decided { return bus.Decided{} }})
	}
	key := h.keys.Current().Remembering()
	var customer string
	order := c.LicenseIDs
	h.sh.Read(func() {
		customer = license.FulfilCustomer(c, h.licenses[c.LicenseIDs[0]].state)
		for i, lid := range c.LicenseIDs {
			if license.CanFulfil(h.licenses[lid].state, m.ID(), c, lid, customer) != nil {
				order = append([]string{lid}, append(append([]string{}, c.LicenseIDs[:i]...), c.LicenseIDs[i+1:]...)...)
				break
			}
		}
	})
	for _, lid := range order {
		var s license.State
		h.sh.Read(func() { s = h.licenses[lid].state })
		license.Fulfil(s, m.ID(), c, lid, customer, now, key) // signed before the lock, as a binding online
		var last handlers.Decision
		st := h.licenseCommandStep(m, lid, func(s license.State) bus.Decided {
			last = license.Fulfil(s, m.ID(), c, lid, customer, now, key)
			return bus.Decided{Decision: last}
		})
		st.Undo = func(ctx context.Context) error { return h.unbind(ctx, m, c, now) }
		if err := h.sh.Handle(ctx, st); err != nil {
			return err
		}
		if last.Refuse != nil {
			return nil
		}
	}
	return h.sh.Handle(ctx, bus.Step{Cause: m, Source: events.CloudSource, Actor: m.Actor(), Aggregate: "fulfilment", ID: c.InstallCode,
		Decide: func() bus.Decided {
			states := make([]license.State, len(c.LicenseIDs))
			for i, lid := range c.LicenseIDs {
				states[i] = h.licenses[lid].state
			}
			return bus.Decided{Decision: license.Fulfilled(m.ID(), c, states, now)}
		}})
}

// unbind takes back every binding a refused fulfil made.
func (h *Handler) unbind(ctx context.Context, m *events.Message, c *events.Fulfil, now time.Time) error {
	for _, lid := range c.LicenseIDs {
		if err := h.sh.Handle(ctx, h.licenseCommandStep(m, lid, func(s license.State) bus.Decided {
			return bus.Decided{Decision: license.Unbind(s, m.ID(), lid, now)}
		})); err != nil {
			return err
		}
	}
	return nil
}
