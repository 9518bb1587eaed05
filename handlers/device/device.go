// Package device is the SmartServer's side of licensebus: what a technician
// does in the CMS Manage Licenses dialog. It owns each SmartServer's Customer
// ID setting, its downloads and its active licenses, asks the cloud to bind
// or release licenses, and records the outcome when the cloud answers.
//
// Every append is expected-last-subject-sequence on the SmartServer's
// subjects, so two processes handling the same SmartServer cannot both act
// on a stale state.
package device

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
	Now         func() time.Time // default time.Now
	DeadLetters *bus.DeadLetters // default on JS
	// Feed shares one read of the event stream between the components of
	// a process; default a feed of its own.
	Feed *bus.Feed
}

// Handler is the device side. It is safe for concurrent use; run it with Run.
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

// New returns a device Handler. The streams must exist.
func New(ctx context.Context, cfg Config) (*Handler, error) {
	if cfg.JS == nil {
		return nil, errors.New("device: JS is required")
	}
	app, err := bus.NewAppender(ctx, cfg.JS)
	if err != nil {
		return nil, fmt.Errorf("device: %w", err)
	}
	h := &Handler{js: cfg.JS, app: app, dl: cfg.DeadLetters, log: cfg.Logger.With().Str("side", "device").Logger(), now: cfg.Now, n: cfg.Workers, b: cfg.Batch, st: newState()}
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
	// Registered after the fold: an answer is in the state before the
	// reaction to it runs.
	h.react = cfg.Feed.React(bus.ReactorConfig{
		Name: AnswersReactor, Match: isAnswer, Key: func(m *events.Message) string { return key(m) }, Handle: h.handleReaction,
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
// SmartServer commands and cloud answers until ctx ends.
func (h *Handler) Run(ctx context.Context) error {
	h.log.Info().Msg("device handler starting")
	err := bus.Serve(ctx, h.js, bus.Service{
		Fold: h.fold,
		Endpoints: []bus.Endpoint{{
			Stream:   events.CommandsStream,
			Consumer: jetstream.ConsumerConfig{Durable: CommandsConsumer, FilterSubjects: []string{events.DeviceCommands}},
			Pool: bus.PoolConfig{Workers: h.n, Batch: h.b, DeadLetters: h.dl, Logger: h.log,
				Key: func(d *bus.Delivery) string { return key(d.Message) }},
			Handle: h.handleCommand,
		}},
		Reactors: []*bus.Reactor{h.react},
	})
	if err != nil {
		return fmt.Errorf("device: %w", err)
	}
	return nil
}

// key partitions commands and answers by SmartServer.
func key(m *events.Message) string {
	if m == nil || m.Data == nil {
		return ""
	}
	switch e := m.Data.(type) {
	case *events.LicenseBound:
		return e.InstallCode
	case *events.LicenseReleased:
		return e.InstallCode
	}
	return m.Data.Key()
}

// isAnswer picks the cloud's answers from the event stream.
func isAnswer(m *events.Message) bool {
	switch m.Data.(type) {
	case *events.LicenseBound, *events.LicenseReleased:
		return true
	}
	return false
}

func (h *Handler) handled(id string) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.st.handled.Has(id)
}

// server returns a copy of a SmartServer's state, catching up with the
// stream first if it is not known yet.
func (h *Handler) server(ctx context.Context, ic string) (smartserver, bool) {
	get := func() (smartserver, bool) {
		h.mu.RLock()
		defer h.mu.RUnlock()
		ss := h.st.servers[ic]
		if ss == nil {
			return smartserver{}, false
		}
		return ss.clone(), true
	}
	if ss, ok := get(); ok {
		return ss, true
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_ = h.fold.CatchUp(cctx)
	return get()
}

func (h *Handler) customerKnown(ctx context.Context, cid string) bool {
	get := func() bool {
		h.mu.RLock()
		defer h.mu.RUnlock()
		return h.st.customers[cid]
	}
	if get() {
		return true
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_ = h.fold.CatchUp(cctx)
	return get()
}

// finish logs the outcome and turns a rejection into a Rejected event.
func (h *Handler) finish(ctx context.Context, m *events.Message, seq uint64, out *events.Message, err error) error {
	if rej := events.AsRejection(err); rej != nil {
		id := ""
		if m.Data != nil {
			id = m.Data.Key()
		}
		rseq, rm, rerr := h.app.Reject(ctx, m, "", rej, events.DeviceSource, "smartserver", id)
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
