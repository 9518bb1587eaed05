package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/nats-io/nats.go/jetstream"
)

// outcomes counts, per SmartServer of a soak, the outcomes of its
// commands: the event each one ends with (license_activated,
// licenses_transferred) or its rejection. The soak sends a SmartServer's
// next command only once the previous one has its outcome. The Manage
// Licenses view will not do for that: it stops showing a license active at
// transfer_requested, the start of a transfer, while the SmartServer
// refuses an activation (transfer_in_progress) until licenses_transferred,
// two hops later; an activation sent on the view's word could be refused,
// and the license then never came back. A headers-only consumer gives the
// subject and the stream sequence, which is all this needs.
type outcomes struct {
	b  *run
	cc jetstream.ConsumeContext

	mu     sync.Mutex
	notify chan struct{}           // closed and replaced on each outcome
	ended  map[string]*outcomeSeen // by install code
	byLID  map[string]string       // license id → install code
	last   uint64                  // stream sequence of the last outcome seen
	at     time.Time               // when the last outcome was seen
	// refused is the stream sequence of the first rejection of a soak
	// command, 0 for none.
	refused uint64
}

// outcomeSeen is how many of a SmartServer's commands ended, the last at
// stream sequence seq.
type outcomeSeen struct {
	n   int
	seq uint64
}

// Outcome subjects: lb.evt.smartserver.<install code>.<verb>, and the
// rejections of SmartServer and license commands, lb.evt.rejected.<aggregate>.<id>.
var outcomeSubjects = []string{
	"lb.evt.smartserver.*.license_activated",
	"lb.evt.smartserver.*.licenses_transferred",
	"lb.evt.rejected.smartserver.*",
	"lb.evt.rejected.license.*",
}

// followOutcomes counts the outcomes of ts's commands stored from now on.
func (b *run) followOutcomes(ctx context.Context, ts []*target) (*outcomes, error) {
	o := &outcomes{b: b, notify: make(chan struct{}), ended: make(map[string]*outcomeSeen, len(ts)),
		byLID: make(map[string]string, len(ts)), at: time.Now()}
	for _, t := range ts {
		o.ended[t.ic] = &outcomeSeen{}
		o.byLID[t.lid] = t.ic
	}
	var err error
	if o.cc, err = b.followEvents(ctx, outcomeSubjects, o.note); err != nil {
		return nil, err
	}
	return o, nil
}

func (o *outcomes) stop() { o.cc.Stop() }

func (o *outcomes) note(tokens []string, md *jetstream.MsgMetadata) {
	rejected := tokens[2] == "rejected"
	ic := tokens[3]
	if rejected {
		ic = tokens[4]
		if tokens[3] == "license" {
			ic = o.byLID[ic]
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	seen := o.ended[ic]
	if seen == nil {
		return // not a soak SmartServer's
	}
	seen.n, seen.seq = seen.n+1, md.Sequence.Stream
	if rejected && o.refused == 0 {
		o.refused = md.Sequence.Stream
	}
	o.last, o.at = md.Sequence.Stream, time.Now()
	close(o.notify)
	o.notify = make(chan struct{})
}

// await returns once t's first n commands have their outcomes and the
// projections have applied them (the soak goes no faster than the views).
// It fails at once when a soak command was refused, and when no command at
// all gets its outcome for stallTimeout; cmd names the command awaited.
func (o *outcomes) await(ctx context.Context, t *target, n int, cmd string) error {
	begin := time.Now()
	for {
		o.mu.Lock()
		seen, refused, last, at, ch := *o.ended[t.ic], o.refused, o.last, o.at, o.notify
		o.mu.Unlock()
		if refused != 0 {
			return o.refusal(ctx, refused)
		}
		ended := seen.n
		if ended >= n {
			if err := o.b.waitApplied(ctx, seen.seq); err != nil {
				return fmt.Errorf("SmartServer %s: the outcome of its command %d (%s) at event stream seq %d: %w", t.ic, n, cmd, seen.seq, err)
			}
			return nil
		}
		wait := stallTimeout - time.Since(begin)
		if at.After(begin) {
			wait = stallTimeout - time.Since(at)
		}
		if wait <= 0 {
			return o.stalled(ctx, t, ended, n, cmd, last)
		}
		timer := time.NewTimer(wait)
		select {
		case <-ch:
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		}
		timer.Stop()
	}
}

// refusal says which soak command was refused and why, as the rejection
// stored at seq does.
func (o *outcomes) refusal(ctx context.Context, seq uint64) error {
	s, err := o.b.js.Stream(ctx, events.EventsStream)
	if err != nil {
		return fmt.Errorf("a soak command was refused (event stream seq %d, unreadable: %w)", seq, err)
	}
	m, err := s.GetMsg(ctx, seq)
	if err != nil {
		return fmt.Errorf("a soak command was refused (event stream seq %d, unreadable: %w)", seq, err)
	}
	ev, err := events.Decode(m.Header, m.Data)
	if err != nil {
		return fmt.Errorf("a soak command was refused (event stream seq %d, undecodable: %w)", seq, err)
	}
	r, ok := ev.Data.(*events.Rejected)
	if !ok {
		return fmt.Errorf("a soak command was refused (event stream seq %d holds a %s)", seq, ev.Type())
	}
	return fmt.Errorf("soak command %s (%s) refused at event stream seq %d: %s: %s", r.CommandID, r.CommandType, seq, r.Reason, r.Message)
}

// stalled says what the soak waited for and where the product stands.
func (o *outcomes) stalled(ctx context.Context, t *target, ended, n int, cmd string, last uint64) error {
	head, err := bus.LastSeq(ctx, o.b.js, events.EventsStream)
	where := fmt.Sprintf("the event stream's last seq %d", head)
	if err != nil {
		where = fmt.Sprintf("the event stream's last seq unknown: %v", err)
	}
	return fmt.Errorf("no soak command got its outcome for %v: SmartServer %s waits for the outcome of its command %d (%s), has %d; last outcome at event stream seq %d, projections applied up to %d, %s",
		stallTimeout, t.ic, n, cmd, ended, last, o.b.p.Projections.Applied(), where)
}
