// Package driver connects the rollout rules (package rollout) to the bus:
// it handles rollout commands and drives each running rollout — waves,
// concurrency and rate limits, one SmartServer command per step, retries —
// deciding each next step with the rules and recording what happened as
// rollout events.
package driver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/handlers/rollout"
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
	// Election, if set, makes driving the running rollouts a singleton
	// job (Job): commands are handled by every process, rollouts driven
	// by the one elected. Without one, the process that handles a start
	// or a resume drives the rollout.
	Election bus.Election
	// Horizon is how long a command id is remembered (bus.ShellConfig).
	Horizon time.Duration
	// Telemetry observes the handler's steps (metrics, traces).
	Telemetry bus.Telemetry
}

// Executor handles rollout commands and drives running rollouts.
type Executor struct {
	js  jetstream.JetStream
	sh  *bus.Shell
	log zerolog.Logger
	cfg Config

	// Guarded by the shell: the state, and the channel closed and
	// replaced when a rollout changes.
	st      *rollout.State
	changed chan struct{}

	wmu     sync.Mutex // guards waiters; taken inside the shell's lock
	waiters map[string][]chan rollout.Outcome
	// seqs is the sequence of each rollout's last event (guarded by the
	// shell): the expectation of an elected driver's next record.
	seqs  map[string]uint64
	recmu sync.Mutex // one elected record at a time: each expects the last

	mu      sync.Mutex // guards what follows
	driving map[string]bool
	// plans are the licenses each driven rollout planned for its targets;
	// held maps each planned or picked license to its target
	// ("rollout/install-code"), so other targets leave it alone.
	plans map[string]map[string][]string
	held  map[string]string
	// holds is held the other way round: each target's licenses, so that
	// a finished target lets go of its own without reading every hold
	// (a fleet's rollout holds one for each of thousands of targets).
	holds map[string][]string
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
	x := &Executor{js: cfg.JS, log: cfg.Logger.With().Str("component", "rollout").Logger(), cfg: cfg,
		st: rollout.NewState(), changed: make(chan struct{}), waiters: map[string][]chan rollout.Outcome{}, seqs: map[string]uint64{},
		driving: map[string]bool{}, plans: map[string]map[string][]string{}, held: map[string]string{}, holds: map[string][]string{}}
	if cfg.Feed == nil {
		cfg.Feed = bus.NewFeed(cfg.JS, x.log)
	}
	x.st.Horizon = cfg.Horizon
	if x.st.Horizon <= 0 {
		x.st.Horizon = events.DefaultHorizon
	}
	var err error
	x.sh, err = bus.NewShell(ctx, cfg.JS, bus.ShellConfig{Name: "rollouts", Source: Source, Apply: x.apply, FoldOwn: true, Feed: cfg.Feed, Logger: cfg.Logger, Horizon: cfg.Horizon, Telemetry: cfg.Telemetry})
	if err != nil {
		return nil, err
	}
	return x, nil
}

// apply folds one event (the shell holds its lock) and wakes who waits on
// it: a driver waiting for a command's outcome, or for a rollout to change.
func (x *Executor) apply(seq uint64, m *events.Message) {
	rollout.Evolve(x.st, m)
	if m.Info.Aggregate == "rollout" && m.Data != nil {
		x.seqs[m.Data.Key()] = seq
	}
	corr := m.CorrelationID()
	if o, ok := x.st.Outcomes[corr]; ok {
		x.wmu.Lock()
		for _, w := range x.waiters[corr] {
			select {
			case w <- o:
			default: // told already
			}
		}
		delete(x.waiters, corr)
		x.wmu.Unlock()
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
		var ids []string
		x.sh.Read(func() {
			for id, r := range x.st.Rollouts {
				if r.Status == rollout.Running || r.Status == rollout.Paused {
					ids = append(ids, id)
				}
			}
		})
		for _, id := range ids {
			x.startDriving(ctx, id)
		}
	}
	x.log.Info().Msg("rollout executor starting")
	if x.cfg.Election != nil {
		resume = x.elected(ctx)
	}
	err := bus.Serve(ctx, x.js, bus.Service{Fold: x.sh.Fold(), Ready: resume, Endpoints: []bus.Endpoint{{
		Stream:   events.CommandsStream,
		Consumer: jetstream.ConsumerConfig{Durable: CommandsConsumer, FilterSubjects: []string{events.RolloutCommands}},
		Pool: bus.PoolConfig{Workers: 4, Key: func(d *bus.Delivery) string {
			if d.Message != nil && d.Message.Data != nil {
				return d.Message.Data.Key()
			}
			return ""
		}, DeadLetters: x.sh.DeadLetters(), Logger: x.log},
		Handle: x.handleCommand,
	}}})
	if err != nil {
		return fmt.Errorf("rollout: %w", err)
	}
	return nil
}

// startDriving runs a rollout's driver unless one runs.
func (x *Executor) startDriving(ctx context.Context, id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.driving[id] {
		return
	}
	x.driving[id] = true
	go func() {
		x.drive(ctx, id)
		x.mu.Lock()
		delete(x.driving, id)
		delete(x.plans, id)
		for owner, lids := range x.holds {
			if strings.HasPrefix(owner, id+"/") {
				x.letGo(owner, lids)
			}
		}
		x.mu.Unlock()
	}()
}

func (x *Executor) handleCommand(ctx context.Context, d *bus.Delivery) error {
	ok, err := x.sh.Screen(ctx, d, func(i events.Info) bool { return i.Command && i.Side == events.RolloutSide })
	if !ok || err != nil {
		return err
	}
	m := d.Message
	id := m.Data.Key()
	if c, ok := m.Data.(*events.StartRollout); ok {
		id = rollout.ID(m.ID(), c)
	}
	if err := x.sh.Handle(ctx, bus.Step{Cause: m, Once: true, Source: Source, Actor: m.Actor(), Aggregate: "rollout", ID: id,
		Decide: func() bus.Decided {
			// Rollouts are not raced for by id: no expectation.
			return bus.Decided{Decision: rollout.Decide(x.st, m.ID(), m.Type(), m.Data)}
		}}); err != nil {
		return err
	}
	running := false
	x.sh.Read(func() {
		r := x.st.Rollouts[id]
		running = r != nil && r.Status == rollout.Running
	})
	if running && x.cfg.Election == nil {
		x.startDriving(ctx, id)
	}
	return nil
}

// Plan computes what spec would do now, changing nothing (--dry-run): the
// same plan a rollout started now follows.
func (x *Executor) Plan(spec events.RolloutSpec) (rollout.Plan, error) {
	if err := spec.Validate(); err != nil {
		return rollout.Plan{}, err
	}
	var p rollout.Plan
	x.mu.Lock()
	defer x.mu.Unlock()
	x.sh.Read(func() { p = rollout.MakePlan(x.st, spec, x.today(), x.heldBy(""), nil) })
	return p, nil
}

func (x *Executor) today() string { return x.cfg.Now().UTC().Format(time.DateOnly) }

// heldBy says whether a license is held for a target other than owner
// ("rollout/install-code"). Caller holds mu.
func (x *Executor) heldBy(owner string) func(string) bool {
	return func(lid string) bool {
		o, ok := x.held[lid]
		return ok && o != owner
	}
}
