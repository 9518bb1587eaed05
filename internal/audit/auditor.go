package audit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/licensebus/licensebus/events"
	trail "github.com/licensebus/licensebus/events/audit"
	"github.com/licensebus/licensebus/events/grant"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Config holds an Auditor's dependencies and tuning.
type Config struct {
	JS     jetstream.JetStream // required
	Logger zerolog.Logger
	// Settle is how long after a stream-info snapshot a message must have
	// been stored to be placed against the other stream (it covers the
	// moment between the server stamping a message and storing it).
	// Default 25ms; it is also the idle latency of the trail.
	Settle time.Duration
	// InFlight bounds appends awaiting their ack. Default 256.
	InFlight int
	// Standby is how often an auditor that lost the race to another one
	// checks whether the other is still writing. Default 1s.
	Standby time.Duration
	// Tap, if set, is a tap on the process's feed: the auditor reads the
	// event stream from it once caught up, instead of a second time.
	Tap *bus.Tap
	// Key, if set, gives the key that signs checkpoints of the trail's
	// head (the cloud's current signing key), every CheckpointEvery
	// entries (default 100,000) or CheckpointInterval (default 10s) while
	// the trail moves, and when the auditor stops.
	Key                func() grant.Key
	CheckpointEvery    int
	CheckpointInterval time.Duration
}

// Auditor writes the audit trail. Run one per licensebus process; several
// on one NATS are safe (one writes, the others stand by).
type Auditor struct {
	cfg Config
	log zerolog.Logger
}

// New returns an Auditor; Run starts it.
func New(cfg Config) *Auditor {
	if cfg.Settle <= 0 {
		cfg.Settle = 25 * time.Millisecond
	}
	if cfg.InFlight <= 0 {
		cfg.InFlight = 256
	}
	if cfg.Standby <= 0 {
		cfg.Standby = time.Second
	}
	if cfg.CheckpointEvery <= 0 {
		cfg.CheckpointEvery = CheckpointEvery
	}
	if cfg.CheckpointInterval <= 0 {
		cfg.CheckpointInterval = CheckpointInterval
	}
	return &Auditor{cfg: cfg, log: cfg.Logger.With().Str("component", "audit").Logger()}
}

// errConflict means the audit stream moved under the auditor: another
// auditor or a stranger wrote to it.
var errConflict = errors.New("audit stream changed by another writer")

// errFailClosed means the auditor cannot find a genuine entry to continue
// from; it stops rather than start a second chain.
var errFailClosed = errors.New("audit trail head is not genuine")

// tip is the end of the chain the auditor continues.
type tip struct {
	seq        uint64
	hash       string
	cursor     trail.Cursor
	streamLast uint64 // last sequence of the audit stream: the expectation of the next append
	src        trail.SourceRef
}

// Run creates the audit stream if needed and appends an entry for every
// source message after the trail's cursor, until ctx ends.
func (a *Auditor) Run(ctx context.Context) error {
	if a.cfg.JS == nil {
		return errors.New("audit: JS is required")
	}
	str, err := EnsureStream(ctx, a.cfg.JS)
	if err != nil {
		return err
	}
	var srcs [2]jetstream.Stream
	for i, name := range []string{events.CommandsStream, events.EventsStream} {
		if srcs[i], err = a.cfg.JS.Stream(ctx, name); err != nil {
			return fmt.Errorf("audit: source %s: %w", name, err)
		}
	}
	// lastOwn is the last entry this auditor stored; conflicted says its
	// last append found the stream moved.
	var lastOwn uint64
	conflicted, checked := false, false
	for {
		t, err := a.findTip(ctx, str)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, errFailClosed):
			return err
		case err != nil:
			a.log.Warn().Err(err).Msg("reading the trail head; retrying")
			if !sleep(ctx, time.Second) {
				return nil
			}
			continue
		}
		if conflicted && t.seq > lastOwn {
			// Someone else extended the chain: another auditor is writing.
			if err := a.standby(ctx, str, srcs); err != nil {
				return nil
			}
			conflicted = false
			continue
		}
		conflicted = false
		if !checked {
			a.checkStreams(ctx, t.cursor)
			checked = true
		}
		a.log.Info().Uint64("seq", t.seq).Uint64("commands", t.cursor.Commands).Uint64("events", t.cursor.Events).Msg("audit trail resumes")
		lastOwn, err = a.follow(ctx, str, srcs, t)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errConflict) {
			a.log.Info().Err(err).Msg("re-reading the trail head")
			conflicted = true
			continue
		}
		a.log.Warn().Err(err).Msg("audit interrupted; resuming")
		if !sleep(ctx, time.Second) {
			return nil
		}
	}
}

// checkStreams logs, at error level, every way the streams differ from
// what the trail expects of them (CheckStreams): the trail cannot record
// what a source lost, nor the messages of a source created again until it
// passes the cursor, and only an operator can say why it happened.
func (a *Auditor) checkStreams(ctx context.Context, cursor trail.Cursor) {
	probs, err := CheckStreams(ctx, a.cfg.JS, cursor)
	if err != nil {
		a.log.Warn().Err(err).Msg("cannot check the streams against the trail")
		return
	}
	for _, p := range probs {
		a.log.Error().Str("where", p.Where).Str("problem", p.Detail).Msg("a stream changed under the audit trail")
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// standby waits while another auditor keeps the trail current, and returns
// when the trail stops moving while the sources have messages it lacks.
func (a *Auditor) standby(ctx context.Context, str jetstream.Stream, srcs [2]jetstream.Stream) error {
	a.log.Info().Msg("another auditor is writing the trail; standing by")
	prev := ^uint64(0)
	tick := time.NewTicker(a.cfg.Standby)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		info, err := str.Info(ctx)
		if err != nil {
			continue
		}
		last := info.State.LastSeq
		if last != prev {
			prev = last
			continue
		}
		var cur trail.Cursor
		if last > 0 {
			raw, err := str.GetMsg(ctx, last)
			if err != nil {
				continue
			}
			if e, _, err := trail.Open(raw.Data); err == nil {
				cur = e.Cursor
			}
		}
		for i, s := range srcs {
			si, err := s.Info(ctx)
			if err != nil {
				break
			}
			if si.State.LastSeq > [2]uint64{cur.Commands, cur.Events}[i] {
				a.log.Info().Msg("the other auditor stopped writing; taking over")
				return nil
			}
		}
	}
}
