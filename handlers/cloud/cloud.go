// Package cloud is the license cloud's side of licensebus: the Partner
// Portal's customer accounts and license inventory, and the one place that
// binds a license to a SmartServer and releases it again.
//
// It consumes cloud commands (create customer, add license) and the device
// side's requests (activation requested, transfer requested), decides on
// state folded from the event stream, and appends events with
// expected-last-subject-sequence on the license's subjects, so a license is
// bound to at most one SmartServer however many processes race for it.
package cloud

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/licensebus/licensebus/events"
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
	app   *bus.Appender
	dl    *bus.DeadLetters
	fold  *bus.Fold
	react *bus.Reactor
	log   zerolog.Logger
	now   func() time.Time
	n     int
	b     int

	mu sync.RWMutex
	st *state
}

// New returns a cloud Handler. The streams must exist.
func New(ctx context.Context, cfg Config) (*Handler, error) {
	if cfg.JS == nil {
		return nil, errors.New("cloud: JS is required")
	}
	app, err := bus.NewAppender(ctx, cfg.JS)
	if err != nil {
		return nil, fmt.Errorf("cloud: %w", err)
	}
	h := &Handler{js: cfg.JS, app: app, dl: cfg.DeadLetters, log: cfg.Logger.With().Str("side", "cloud").Logger(), now: cfg.Now, n: cfg.Workers, b: cfg.Batch, st: newState()}
	if h.now == nil {
		h.now = time.Now
	}
	if h.dl == nil {
		h.dl = bus.NewDeadLetters(cfg.JS)
	}
	if cfg.Feed == nil {
		cfg.Feed = bus.NewFeed(cfg.JS, h.log)
	}
	h.fold = cfg.Feed.Fold(h.apply)
	// Registered after the fold: a request is in the state before the
	// reaction to it runs.
	h.react = cfg.Feed.React(bus.ReactorConfig{
		Name: RequestsReactor, Match: isRequest, Key: requestKey, Handle: h.handleReaction,
		Workers: h.n, Replaces: replacedConsumers, DeadLetters: h.dl, Logger: h.log,
	})
	return h, nil
}

func (h *Handler) apply(seq uint64, m *events.Message) {
	if m == nil {
		return
	}
	h.mu.Lock()
	h.st.apply(seq, m)
	h.mu.Unlock()
}

// Run folds the event stream, waits until it has caught up, then handles
// commands and device requests until ctx ends.
func (h *Handler) Run(ctx context.Context) error {
	h.log.Info().Msg("cloud handler starting")
	err := bus.Serve(ctx, h.js, bus.Service{
		Fold: h.fold,
		Endpoints: []bus.Endpoint{{
			Stream:   events.CommandsStream,
			Consumer: jetstream.ConsumerConfig{Durable: CommandsConsumer, FilterSubjects: []string{events.CloudCommands}},
			Pool:     bus.PoolConfig{Workers: h.n, Batch: h.b, Key: commandKey, DeadLetters: h.dl, Logger: h.log},
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

func (h *Handler) handleCommand(ctx context.Context, d *bus.Delivery) error {
	ok, err := bus.Screen(ctx, h.app, h.dl, d, func(i events.Info) bool { return i.Command && i.Side == events.CloudSide }, events.CloudSource)
	if !ok || err != nil {
		return err
	}
	m := d.Message
	if h.handled(m.ID()) {
		return nil
	}
	var seq uint64
	var out *events.Message
	switch c := m.Data.(type) {
	case *events.CreateCustomer:
		seq, out, err = h.createCustomer(ctx, m, c)
	case *events.AddLicense:
		seq, out, err = h.addLicense(ctx, m, c)
	}
	return h.finish(ctx, m, seq, out, err)
}

// finish logs the outcome and turns a rejection into a Rejected event.
func (h *Handler) finish(ctx context.Context, m *events.Message, seq uint64, out *events.Message, err error) error {
	if rej := events.AsRejection(err); rej != nil {
		agg, id := m.Info.Aggregate, ""
		if m.Data != nil {
			id = m.Data.Key()
		}
		if r, ok := m.Data.(*events.ActivationRequested); ok {
			agg, id = "license", r.LicenseID
		}
		rseq, rm, rerr := h.app.Reject(ctx, m, "", rej, events.CloudSource, agg, id)
		if rerr != nil {
			return rerr
		}
		h.apply(rseq, rm)
		bus.LogMsg(h.log.Info(), m).Str("reason", string(rej.Reason)).Str("why", rej.Message).Msg("rejected")
		return nil
	}
	if err != nil {
		return err
	}
	if out != nil {
		h.apply(seq, out)
		// One line per event only at debug: the audit trail records
		// every event; at fleet rates an info line each is a firehose.
		bus.LogMsg(h.log.Debug(), m).Str("event", string(out.Type())).Uint64("event_seq", seq).Msg("appended")
	}
	return nil
}

func (h *Handler) handled(id string) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.st.handled.Has(id)
}

// ensureKnown catches up with the stream before a "not found" answer, so a
// fact appended a moment ago by another process is not missed.
func (h *Handler) ensureKnown(ctx context.Context, known func() bool) {
	if known() {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_ = h.fold.CatchUp(cctx)
}
