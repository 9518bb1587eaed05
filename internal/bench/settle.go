package bench

import (
	"context"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/audit"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/nats-io/nats.go/jetstream"
)

// settle waits until the product is idle: its durable consumers have
// nothing pending or unacked, the projections have persisted everything
// in the event stream, and the audit trail records every command and
// event.
func (b *run) settle(ctx context.Context) error {
	var prev uint64
	lastReport := time.Now()
	return poll(ctx, func() bool {
		last, err := bus.LastSeq(ctx, b.js, events.EventsStream)
		if err != nil || last != prev {
			prev = last
			return false // not settled while events still arrive
		}
		for _, ck := range b.p.Projections.Checkpoints() {
			if ck < last {
				return false
			}
		}
		idle, err := durablesIdle(ctx, b.js)
		if err != nil || !idle {
			return false
		}
		if idle, err = reactorsIdle(ctx, b.js); err != nil || !idle {
			return false
		}
		// The auditor trails the handlers under load; a phase that
		// starts while it catches up measures the catching up too.
		st, err := audit.ReadStatus(ctx, b.js)
		if err != nil || st.Behind() > 0 {
			if err == nil && time.Since(lastReport) > time.Second {
				b.progress("waiting for the auditor: %d messages not recorded yet", st.Behind())
				lastReport = time.Now()
			}
			return false
		}
		return true
	})
}

// durablesIdle reports whether every durable consumer of the command and
// event streams has handled all it was given.
func durablesIdle(ctx context.Context, js jetstream.JetStream) (bool, error) {
	for _, name := range []string{events.CommandsStream, events.EventsStream} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			return false, err
		}
		l := s.ListConsumers(ctx)
		idle := true
		for info := range l.Info() {
			if info.Config.Durable != "" && (info.NumPending > 0 || info.NumAckPending > 0) {
				idle = false
			}
		}
		if err := l.Err(); err != nil {
			return false, err
		}
		if !idle {
			return false, nil
		}
	}
	return true, nil
}

// reactorsIdle reports whether every reactor's stored checkpoint covers the
// event stream: all it was given has been handled (a reactor stores its
// checkpoint a few times a second).
func reactorsIdle(ctx context.Context, js jetstream.JetStream) (bool, error) {
	_, states, err := bus.Reactors(ctx, js)
	if err != nil {
		return false, err
	}
	for _, st := range states {
		if st.Behind > 0 {
			return false, nil
		}
	}
	return true, nil
}

// messagesWritten sums the last sequence of every stream but the raw one:
// how many messages the product has written, KV buckets included, counting
// those a KV key's newer value has since replaced.
func messagesWritten(ctx context.Context, js jetstream.JetStream) (uint64, error) {
	var n uint64
	l := js.ListStreams(ctx)
	for info := range l.Info() {
		if info.Config.Name != rawStream && info.Config.Name != probeStream {
			n += info.State.LastSeq
		}
	}
	if err := l.Err(); err != nil {
		return 0, err
	}
	return n, nil
}
