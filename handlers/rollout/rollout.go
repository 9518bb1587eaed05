// Package rollout runs fleet-wide license rollouts: one operator points a
// rollout at thousands of SmartServers and it sets their Customer ID,
// downloads and activates licenses from the customer's pool (or transfers
// them back), in waves, with a concurrency and a rate limit, stopping when
// too many targets fail.
//
// A rollout is event-sourced on "lb.evt.rollout.<id>.>" and driven by the
// SmartServer commands it sends. Every command id is derived from the
// rollout, the target, the attempt and the step, so a rollout resumed after
// a crash sends the same ids again and JetStream or the handlers recognise
// them: no target is activated twice. The cloud's expected-sequence binding
// keeps a license off two SmartServers even when two rollouts race for one
// pool; the loser picks the next license.
package rollout

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

// CommandsConsumer is the durable consumer of rollout commands.
const CommandsConsumer = "rollout-commands"

// Source is the CloudEvent source of what rollouts send and record.
const Source = "/licensebus/rollout"

// Config holds an Executor's dependencies.
type Config struct {
	JS     jetstream.JetStream // required
	Logger zerolog.Logger
	// OutcomeTimeout bounds the wait for one command's outcome; default 2m.
	OutcomeTimeout time.Duration
	Now            func() time.Time
	// Feed shares one read of the event stream; default its own.
	Feed *bus.Feed
}

// Executor handles rollout commands and drives running rollouts.
type Executor struct {
	js   jetstream.JetStream
	app  *bus.Appender
	dl   *bus.DeadLetters
	fold *bus.Fold
	log  zerolog.Logger
	cfg  Config

	mu      sync.Mutex
	st      *state
	changed chan struct{} // closed and replaced when state changes
	waiters map[string][]chan outcome
	driving map[string]bool
	// reserved maps a license to the target that picked it, so concurrent
	// targets of this process don't pick the same one.
	reserved map[string]string
}

// New returns an Executor.
func New(ctx context.Context, cfg Config) (*Executor, error) {
	if cfg.JS == nil {
		return nil, errors.New("rollout: JS is required")
	}
	if cfg.OutcomeTimeout <= 0 {
		cfg.OutcomeTimeout = 2 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	app, err := bus.NewAppender(ctx, cfg.JS)
	if err != nil {
		return nil, fmt.Errorf("rollout: %w", err)
	}
	x := &Executor{js: cfg.JS, app: app, dl: bus.NewDeadLetters(cfg.JS), log: cfg.Logger.With().Str("component", "rollout").Logger(), cfg: cfg,
		st: newState(), changed: make(chan struct{}), waiters: map[string][]chan outcome{}, driving: map[string]bool{}, reserved: map[string]string{}}
	if cfg.Feed == nil {
		cfg.Feed = bus.NewFeed(cfg.JS, x.log)
	}
	x.fold = cfg.Feed.Fold(x.apply)
	return x, nil
}

func (x *Executor) apply(_ uint64, m *events.Message) {
	if m == nil {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.st.apply(m)
	if corr := m.CorrelationID(); len(x.waiters[corr]) > 0 {
		if o, ok := x.st.outcomes[corr]; ok {
			for _, w := range x.waiters[corr] {
				w <- o
			}
			delete(x.waiters, corr)
		}
	}
	if m.Info.Aggregate == "rollout" {
		close(x.changed)
		x.changed = make(chan struct{})
	}
}

// Run folds the streams, resumes the rollouts that were running, and
// handles rollout commands until ctx ends.
func (x *Executor) Run(ctx context.Context) error {
	resume := func() {
		x.mu.Lock()
		defer x.mu.Unlock()
		for id, r := range x.st.rollouts {
			if r.status == Running || r.status == Paused {
				x.startDriving(ctx, id)
			}
		}
	}
	x.log.Info().Msg("rollout executor starting")
	err := bus.Serve(ctx, x.js, bus.Service{Fold: x.fold, Ready: resume, Endpoints: []bus.Endpoint{{
		Stream:   events.CommandsStream,
		Consumer: jetstream.ConsumerConfig{Durable: CommandsConsumer, FilterSubjects: []string{events.RolloutCommands}},
		Pool: bus.PoolConfig{Workers: 4, Key: func(d *bus.Delivery) string {
			if d.Message != nil && d.Message.Data != nil {
				return d.Message.Data.Key()
			}
			return ""
		}, DeadLetters: x.dl, Logger: x.log},
		Handle: x.handleCommand,
	}}})
	if err != nil {
		return fmt.Errorf("rollout: %w", err)
	}
	return nil
}

// startDriving runs a rollout's driver unless one runs; caller holds mu.
func (x *Executor) startDriving(ctx context.Context, id string) {
	if x.driving[id] {
		return
	}
	x.driving[id] = true
	go func() {
		x.drive(ctx, id)
		x.mu.Lock()
		delete(x.driving, id)
		x.mu.Unlock()
	}()
}

func (x *Executor) handleCommand(ctx context.Context, d *bus.Delivery) error {
	ok, err := bus.Screen(ctx, x.app, x.dl, d, func(i events.Info) bool { return i.Command && i.Side == events.RolloutSide }, Source)
	if !ok || err != nil {
		return err
	}
	m := d.Message
	ev, rej := x.decide(m)
	if rej != nil {
		_, _, err := x.app.Reject(ctx, m, "", rej, Source, "rollout", m.Data.Key())
		return err
	}
	if ev == nil {
		return nil
	}
	seq, err := x.app.Append(ctx, ev, "", 0)
	if err != nil {
		return err
	}
	if err := x.fold.WaitFor(ctx, seq); err != nil {
		return err
	}
	x.mu.Lock()
	if r := x.st.rollouts[ev.Data.Key()]; r != nil && r.status == Running {
		x.startDriving(ctx, r.id)
	}
	x.mu.Unlock()
	bus.LogMsg(x.log.Info(), m).Str("event", string(ev.Type())).Str("rollout_id", ev.Data.Key()).Msg("appended")
	return nil
}

// decide answers a rollout command on current state.
func (x *Executor) decide(m *events.Message) (*events.Message, *events.Rejection) {
	x.mu.Lock()
	defer x.mu.Unlock()
	meta := func(name string) events.Meta { return m.Next(events.DeriveID(m.ID(), name), Source, m.Actor()) }
	build := func(t events.Type, d events.Data, name string) (*events.Message, *events.Rejection) {
		ev, err := events.New(t, d, meta(name))
		if err != nil {
			return nil, events.AsRejection(err)
		}
		return ev, nil
	}
	if c, ok := m.Data.(*events.StartRollout); ok {
		id := c.RolloutID
		if id == "" {
			id = events.DeriveID(m.ID(), "rollout")
		}
		if r := x.st.rollouts[id]; r != nil {
			return nil, events.Reject(events.ReasonAlreadyExists, "rollout %s exists already (%s)", id, r.status)
		}
		if c.Spec.Kind == events.RolloutActivate && !x.st.customers[c.Spec.CustomerID] {
			return nil, events.Reject(events.ReasonUnknownCustomer, "no customer account %s", c.Spec.CustomerID)
		}
		spec := c.Spec
		if spec.Concurrency == 0 {
			spec.Concurrency = 50
		}
		return build(events.RolloutStartedType, &events.RolloutStarted{RolloutID: id, Spec: spec, Waves: spec.Waves()}, "started")
	}
	ref := m.Data.(*events.RolloutRef)
	r := x.st.rollouts[ref.RolloutID]
	if r == nil {
		return nil, events.Reject(events.ReasonUnknownRollout, "no rollout %s", ref.RolloutID)
	}
	wrong := func(verb string) *events.Rejection {
		return events.Reject(events.ReasonRolloutState, "cannot %s rollout %s: it is %s", verb, r.id, r.status)
	}
	switch m.Type() {
	case events.PauseRolloutType:
		if r.status != Running {
			return nil, wrong("pause")
		}
		return build(events.RolloutPausedType, &events.RolloutRef{RolloutID: r.id}, "paused")
	case events.ResumeRolloutType:
		if r.status != Paused {
			return nil, wrong("resume")
		}
		return build(events.RolloutResumedType, &events.RolloutRef{RolloutID: r.id}, "resumed")
	case events.CancelRolloutType:
		if r.status != Running && r.status != Paused {
			return nil, wrong("cancel")
		}
		return build(events.RolloutCancelledType, &events.RolloutRef{RolloutID: r.id}, "cancelled")
	case events.RetryFailedType:
		if r.status == Running || r.status == Paused {
			return nil, wrong("retry the failed targets of")
		}
		var failed []string
		for _, w := range r.waves {
			for _, ic := range w {
				if r.targets[ic].status == Failed {
					failed = append(failed, ic)
				}
			}
		}
		if len(failed) == 0 {
			return nil, events.Reject(events.ReasonRolloutState, "rollout %s has no failed targets", r.id)
		}
		return build(events.RetryRequestedType, &events.RetryRequested{RolloutID: r.id, Targets: failed}, "retry")
	}
	return nil, events.Reject(events.ReasonUnknownType, "%s is not a rollout command", m.Type())
}
