// Package device connects the SmartServer's rules (package smartserver) to
// the bus: it handles SmartServer commands — what a technician does in the
// CMS Manage Licenses dialog and the DMM Devices widget — and records the
// cloud's answers (bound, released) on the SmartServer. Every append is
// expected-last-subject-sequence on the SmartServer's subjects, so two
// processes handling the same SmartServer cannot both act on a stale
// state.
package device

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/events/grant"
	"github.com/licensebus/licensebus/handlers"
	"github.com/licensebus/licensebus/handlers/smartserver"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// CommandsConsumer is the durable consumer of SmartServer commands.
// WARNING: renaming it makes the new consumer start from the beginning of
// its stream (commands handled again, idempotently, but all of them).
const CommandsConsumer = "device-commands"

// AnswersReactor names the reactions to the cloud's answers (its checkpoint
// in bus.ReactorsBucket). Like a durable's name, it must not change.
const AnswersReactor = "device-answers"

// replacedConsumers did the reactor's work in earlier versions: one durable
// per answer type, and before them one with both filters.
var replacedConsumers = []string{"device-license-bound", "device-license-released", "device-reactions"}

// Config holds a Handler's dependencies.
type Config struct {
	JS          jetstream.JetStream // required
	Logger      zerolog.Logger
	Workers     int              // per consumer; default 16
	Batch       int              // messages per pull; default 512
	DeadLetters *bus.DeadLetters // default on JS
	// Feed shares one read of the event stream between the components of
	// a process; default a feed of its own.
	Feed *bus.Feed
	// Horizon is how long a command id is remembered (bus.ShellConfig).
	Horizon time.Duration
	// Keys are the cloud's keys the device side trusts (internal/keyring);
	// required.
	Keys Keys
	// Telemetry observes the handler's steps (metrics, traces).
	Telemetry bus.Telemetry
}

// Keys are the cloud's keys the device side verifies grants with.
type Keys interface {
	// Trusted returns every trusted key by id, a map of the caller's.
	Trusted() grant.Keys
}

// Handler is the device side. It is safe for concurrent use; run it with Run.
type Handler struct {
	js    jetstream.JetStream
	sh    *bus.Shell
	react *bus.Reactor
	n, b  int
	keys  Keys

	// The folded state, guarded by the shell.
	servers   map[string]*server
	customers map[string]bool
	owners    map[string]*server // device id → the SmartServer it is on (half a million at fleet scale: a pointer, not its install code)
	// since is the event stream sequence of the first key the cloud
	// published; revoked the keys revoked since (by revocations that
	// verify).
	since   uint64
	revoked map[string]bool
}

// server is a SmartServer's state and the sequence of its last event, the
// expectation of its next append.
type server struct {
	ic    string
	state smartserver.State
	seq   uint64
}

// New returns a device Handler. The streams must exist.
func New(ctx context.Context, cfg Config) (*Handler, error) {
	if cfg.JS == nil || cfg.Keys == nil {
		return nil, errors.New("device: JS and Keys are required")
	}
	h := &Handler{js: cfg.JS, n: cfg.Workers, b: cfg.Batch, keys: cfg.Keys,
		servers: map[string]*server{}, customers: map[string]bool{}, owners: map[string]*server{}, revoked: map[string]bool{}}
	if cfg.Feed == nil {
		cfg.Feed = bus.NewFeed(cfg.JS, cfg.Logger)
	}
	var err error
	h.sh, err = bus.NewShell(ctx, cfg.JS, bus.ShellConfig{Name: "device", Source: events.DeviceSource, Apply: h.apply,
		Feed: cfg.Feed, DeadLetters: cfg.DeadLetters, Logger: cfg.Logger, Horizon: cfg.Horizon, Telemetry: cfg.Telemetry})
	if err != nil {
		return nil, err
	}
	// Registered after the shell's fold: an answer is in the state before
	// the reaction to it runs.
	h.react = cfg.Feed.React(bus.ReactorConfig{
		Name: AnswersReactor, Match: isAnswer, Key: smartserver.Of, Handle: h.handleAnswer,
		Workers: h.n, Replaces: replacedConsumers, DeadLetters: h.sh.DeadLetters(), Logger: h.sh.Logger(),
	})
	return h, nil
}

// apply folds one event: the SmartServer's own (at most once per
// sequence), the cloud's answers to it, and the customers and device
// owners its commands need.
func (h *Handler) apply(seq uint64, m *events.Message) {
	switch d := m.Data.(type) {
	case *events.CustomerCreated:
		h.customers[d.CustomerID] = true
		return
	case *events.KeyAdded:
		if h.since == 0 || seq < h.since {
			h.since = seq
		}
		return
	case *events.KeyRevoked:
		// Only a revocation signed by a key trusted here counts: a writer
		// on the event subjects without a key cannot revoke one.
		if h.trust().VerifyRevocation(&d.Revocation) == nil {
			h.revoked[d.KeyID] = true
		}
		return
	}
	ic := smartserver.Of(m)
	if ic == "" {
		return
	}
	srv := h.servers[ic]
	own := m.Info.Aggregate == "smartserver"
	switch {
	case own && srv != nil && srv.seq >= seq:
		return // applied already
	case srv == nil:
		if _, ok := m.Data.(*events.Registered); !ok {
			return
		}
		srv = &server{ic: ic}
		h.servers[ic] = srv
	}
	if own {
		srv.seq = seq
	}
	smartserver.Evolve(&srv.state, m)
	switch d := m.Data.(type) {
	case *events.DeviceAdded:
		h.owners[d.DeviceID] = srv
	case *events.DevicesAdded:
		for _, nd := range d.Devices {
			h.owners[nd.DeviceID] = srv
		}
	case *events.DeviceRemoved:
		delete(h.owners, d.DeviceID)
	}
}

// Run folds the event stream, waits until it has caught up, then handles
// SmartServer commands and cloud answers until ctx ends.
func (h *Handler) Run(ctx context.Context) error {
	log := h.sh.Logger()
	log.Info().Msg("device handler starting")
	err := bus.Serve(ctx, h.js, bus.Service{
		Fold: h.sh.Fold(),
		Endpoints: []bus.Endpoint{{
			Stream:   events.CommandsStream,
			Consumer: jetstream.ConsumerConfig{Durable: CommandsConsumer, FilterSubjects: []string{events.DeviceCommands}},
			Pool: bus.PoolConfig{Workers: h.n, Batch: h.b, DeadLetters: h.sh.DeadLetters(), Logger: h.sh.Logger(),
				Key: func(d *bus.Delivery) string {
					if d.Message == nil || d.Message.Data == nil {
						return ""
					}
					return d.Message.Data.Key()
				}},
			Handle: h.handleCommand,
		}},
		Reactors: []*bus.Reactor{h.react},
	})
	if err != nil {
		return fmt.Errorf("device: %w", err)
	}
	return nil
}

// isAnswer picks the cloud's answers from the event stream.
func isAnswer(m *events.Message) bool {
	switch m.Data.(type) {
	case *events.LicenseBound, *events.LicenseReleased:
		return true
	}
	return false
}

// trust is what the device side trusts now: the ring's keys, those
// revoked marked. Call it with the state locked.
func (h *Handler) trust() grant.Keys {
	ks := h.keys.Trusted()
	for id := range h.revoked {
		if k, ok := ks[id]; ok {
			k.Revoked = true
			ks[id] = k
		}
	}
	return ks
}

// state is SmartServer ic's state and sequence; a SmartServer not
// registered has the zero state.
func (h *Handler) state(ic string) (*smartserver.State, uint64) {
	if srv := h.servers[ic]; srv != nil {
		return &srv.state, srv.seq
	}
	return &smartserver.State{}, 0
}

func (h *Handler) handleCommand(ctx context.Context, d *bus.Delivery) error {
	ok, err := h.sh.Screen(ctx, d, func(i events.Info) bool { return i.Command && i.Side == events.DeviceSide })
	if !ok || err != nil {
		return err
	}
	m := d.Message
	ic := m.Data.Key()
	named := smartserver.Named(m.ID(), m.Data)
	var keys *grant.Memo
	if imp, ok := m.Data.(*events.ImportLicenses); ok {
		// Verified before the rule runs under the state's lock (see
		// handleAnswer).
		h.sh.Read(func() { keys = grant.NewMemo(h.trust()) })
		if f, err := imp.File(); err == nil {
			for i := range f.Grants {
				_ = keys.Verify(&f.Grants[i])
			}
		}
	}
	return h.sh.Handle(ctx, bus.Step{Cause: m, Once: true, Source: events.DeviceSource + "/" + ic, Actor: m.Actor(),
		Aggregate: "smartserver", ID: ic,
		Decide: func() bus.Decided {
			s, seq := h.state(ic)
			c := smartserver.Command{ID: m.ID(), Data: m.Data}
			switch d := m.Data.(type) {
			case *events.SetCustomerID:
				c.CustomerExists = h.customers[d.CustomerID]
			case *events.ImportLicenses:
				c.Keys = keys
			}
			for _, id := range named {
				if owner := h.owners[id]; owner != nil {
					if c.Owners == nil {
						c.Owners = map[string]string{}
					}
					c.Owners[id] = owner.ic
				}
			}
			return bus.Decided{Decision: smartserver.Decide(s, ic, c), Filter: events.AggregateFilter("smartserver", ic), Expect: seq}
		}})
}

// handleAnswer records the cloud's answers on the SmartServer, as the
// reactor hands them over (decoded: what does not decode is no answer).
func (h *Handler) handleAnswer(ctx context.Context, d *bus.Delivery) error {
	m := d.Message
	if err := h.sh.Folded(ctx, d.Seq); err != nil {
		return err
	}
	ic := smartserver.Of(m)
	known := false
	h.sh.Read(func() { known = h.servers[ic] != nil })
	if !known {
		log := h.sh.Logger()
		bus.LogMsg(log.Warn(), m).Str("install_code", ic).Msg("cloud answered for an unknown SmartServer; ignored")
		return nil
	}
	source := events.DeviceSource + "/" + ic
	// The signature is checked before the rule runs under the state's
	// lock, so the fold never waits for it: the rule's check is a lookup.
	var keys *grant.Memo
	h.sh.Read(func() { keys = grant.NewMemo(h.trust()) })
	if b, ok := m.Data.(*events.LicenseBound); ok && b.Grant != nil {
		_ = keys.Verify(b.Grant)
	}
	var last handlers.Decision
	err := h.sh.Handle(ctx, bus.Step{Cause: m, Source: source, Actor: source, Aggregate: "smartserver", ID: ic,
		Decide: func() bus.Decided {
			s, seq := h.state(ic)
			last = smartserver.Answer(s, ic, m, d.Seq, smartserver.Trust{Keys: keys, Since: h.since})
			return bus.Decided{Decision: last, Filter: events.AggregateFilter("smartserver", ic), Expect: seq}
		}})
	if err != nil || last.Refuse == nil {
		return err
	}
	// A binding refused here is forged or damaged (its grant does not
	// verify, or is spent): besides the rejection, it goes to the dead
	// letters, as any message that must not be acted on.
	log := h.sh.Logger()
	bus.LogMsg(log.Error(), m).Str("install_code", ic).Str("reason", string(last.Refuse.Reason)).Str("why", last.Refuse.Message).
		Msg("cloud binding refused; dead-lettered")
	return h.sh.DeadLetters().PutEvent(ctx, d.Seq, m, last.Refuse)
}
