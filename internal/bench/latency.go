package bench

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/licensebus/licensebus/projections/licensing"
	"github.com/nats-io/nats.go/jetstream"
)

// visible reports whether the Manage Licenses view of t's SmartServer shows
// t's license active.
func (b *run) visible(t *target) bool {
	rows, err := b.p.Licensing.ManageLicenses(t.ic)
	if err != nil {
		return false
	}
	for _, r := range rows {
		if r.LicenseID == t.lid {
			return r.State == licensing.StateActive
		}
	}
	return false
}

// waitAll returns once done holds for every target. It checks the oldest
// unfinished target each time the projections apply an event: targets
// finish roughly in order, so this costs next to nothing and returns within
// one applied event of the last one finishing.
func (b *run) waitAll(ctx context.Context, ts []*target, done func(*target) bool) error {
	next := 0
	for {
		applied := b.p.Projections.Applied()
		for next < len(ts) && done(ts[next]) {
			next++
		}
		if next == len(ts) {
			return nil
		}
		if err := b.waitApplied(ctx, applied+1); err != nil {
			return fmt.Errorf("%d of %d SmartServers never got there (first %s): %w", len(ts)-next, len(ts), ts[next].ic, err)
		}
	}
}

// stallTimeout is how long the bench waits for the projections to apply
// anything before it calls the product stuck.
const stallTimeout = 30 * time.Second

// waitApplied waits until the projections applied seq, failing if they
// apply nothing for stallTimeout.
func (b *run) waitApplied(ctx context.Context, seq uint64) error {
	for {
		applied := b.p.Projections.Applied()
		if applied >= seq {
			return nil
		}
		wctx, cancel := context.WithTimeout(ctx, stallTimeout)
		err := b.p.Projections.WaitFor(wctx, applied+1)
		cancel()
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return b.stalled(ctx, seq)
	}
}

// stalled says that the projections applied nothing for stallTimeout,
// where they stand, and whether the stream holds anything they have not
// applied: if not, what the bench waits for was never stored.
func (b *run) stalled(ctx context.Context, seq uint64) error {
	applied := b.p.Projections.Applied()
	head, err := bus.LastSeq(ctx, b.js, events.EventsStream)
	if err != nil {
		return fmt.Errorf("projections applied nothing for %v: waiting for event stream seq %d, applied up to %d (the stream's last seq unknown: %v)",
			stallTimeout, seq, applied, err)
	}
	why := "the projections are stuck"
	if head <= applied {
		why = "nothing more was stored: the bench waits for an event no command caused"
	}
	return fmt.Errorf("projections applied nothing for %v: waiting for event stream seq %d, applied up to %d, the stream's last seq %d: %s",
		stallTimeout, seq, applied, head, why)
}

// latency sends one activation every 1/rate seconds (open loop: a late
// send does not delay the next) and returns, per activation, the time from
// publishing the command to the Manage Licenses view showing the license
// active.
func (b *run) latency(ctx context.Context, ts []*target, rate float64) ([]time.Duration, error) {
	w, err := b.watch(ctx, ts)
	if err != nil {
		return nil, err
	}
	defer w.stop()
	watched := make(chan error, 1)
	go func() { watched <- w.wait(ctx) }()
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	for i, t := range ts {
		if err := sleepUntil(ctx, start.Add(time.Duration(i)*interval)); err != nil {
			return nil, err
		}
		t.sent = time.Now()
		if err := publishAsync(ctx, b.pub, t.msg); err != nil {
			return nil, err
		}
	}
	if err := <-watched; err != nil {
		return nil, err
	}
	lat := make([]time.Duration, len(ts))
	for i, t := range ts {
		lat[i] = t.seen.Sub(t.sent)
	}
	return lat, nil
}

// sleepUntil waits until t, or returns ctx's error once ctx ends (also
// when t has passed: an open-loop sender checks for a stop here).
func sleepUntil(ctx context.Context, t time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d := time.Until(t)
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// watcher notes when activations become visible. Checking every target in
// flight on every applied event would cost O(in flight) per event, and
// under a backlog that alone could starve the product. Instead a
// headers-only consumer tells the watcher the stream sequence of each
// license_activated event; the projections apply events in stream order,
// so an activation is visible from the moment they have applied that
// sequence.
type watcher struct {
	b     *run
	n     int
	cc    jetstream.ConsumeContext
	mu    sync.Mutex
	queue []stored // in stream order
}

type stored struct {
	t   *target
	seq uint64
}

func (b *run) watch(ctx context.Context, ts []*target) (*watcher, error) {
	byIC := make(map[string]*target, len(ts))
	for _, t := range ts {
		byIC[t.ic] = t
	}
	w := &watcher{b: b, n: len(ts)}
	var err error
	// lb.evt.smartserver.<install-code>.license_activated
	w.cc, err = b.followEvents(ctx, []string{"lb.evt.smartserver.*.license_activated"}, func(tokens []string, md *jetstream.MsgMetadata) {
		if t := byIC[tokens[3]]; t != nil {
			w.mu.Lock()
			t.activated = md.Timestamp
			w.queue = append(w.queue, stored{t, md.Sequence.Stream})
			w.mu.Unlock()
		}
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// followEvents calls note for each event stored from now on under one of
// filters, whose subjects have five tokens, with the subject's tokens and
// where JetStream stored it: a headers-only consumer, as the bench needs
// to know that and when an event was stored, not what it says.
func (b *run) followEvents(ctx context.Context, filters []string, note func(tokens []string, md *jetstream.MsgMetadata)) (jetstream.ConsumeContext, error) {
	cons, err := b.js.OrderedConsumer(ctx, events.EventsStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: filters, DeliverPolicy: jetstream.DeliverNewPolicy, HeadersOnly: true,
	})
	if err != nil {
		return nil, err
	}
	return cons.Consume(func(msg jetstream.Msg) {
		md, err := msg.Metadata()
		if err != nil {
			return
		}
		if tokens := strings.Split(msg.Subject(), "."); len(tokens) == 5 {
			note(tokens, md)
		}
	})
}

func (w *watcher) stop() { w.cc.Stop() }

// wait returns once every target is visible, and sets their seen time.
func (w *watcher) wait(ctx context.Context) error {
	done, progress := 0, time.Now()
	for {
		applied := w.b.p.Projections.Applied()
		w.mu.Lock()
		i := 0
		for ; i < len(w.queue) && w.queue[i].seq <= applied; i++ {
			t := w.queue[i].t
			if !w.b.visible(t) {
				w.mu.Unlock()
				return fmt.Errorf("license %s applied at seq %d but not active in the Manage Licenses view of %s", t.lid, w.queue[i].seq, t.ic)
			}
			t.seen = time.Now()
		}
		w.queue = w.queue[i:]
		w.mu.Unlock()
		if i > 0 {
			done, progress = done+i, time.Now()
		}
		if done == w.n {
			return nil
		}
		if time.Since(progress) > stallTimeout {
			return fmt.Errorf("%d of %d activations never became visible", w.n-done, w.n)
		}
		// Wake on the next applied event, or after a millisecond for a
		// sequence the consumer reports after the projections applied it.
		wctx, cancel := context.WithTimeout(ctx, time.Millisecond)
		_ = w.b.p.Projections.WaitFor(wctx, applied+1)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}
