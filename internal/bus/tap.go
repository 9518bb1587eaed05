package bus

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// FeedEvent is one message of the event stream, as read, and decoded.
type FeedEvent struct {
	Seq     uint64
	Pending uint64    // messages in the stream after it when it was read
	Time    time.Time // when the server stored it
	Subject string
	Header  nats.Header
	Data    []byte
	Message *events.Message // nil when it does not decode
	// Err, on the last item Follow sends, is why it stopped early.
	Err error
}

// Tap carries a Feed's events to one reader. Create it with Feed.Tap.
type Tap struct {
	ch      chan FeedEvent
	dropCh  chan struct{}
	dropped atomic.Uint64 // the last event Offer had to drop
}

func newTap(buffer int) *Tap {
	return &Tap{ch: make(chan FeedEvent, max(1, buffer)), dropCh: make(chan struct{}, 1)}
}

// Offer hands the tap an event, in stream order. It never blocks: when the
// reader is behind, the event is dropped and the reader told, so it reads
// the event from the stream instead.
func (t *Tap) Offer(ev FeedEvent) {
	select {
	case t.ch <- ev:
		return
	default:
	}
	for {
		old := t.dropped.Load()
		if ev.Seq <= old || t.dropped.CompareAndSwap(old, ev.Seq) {
			break
		}
	}
	select {
	case t.dropCh <- struct{}{}:
	default:
	}
}

// Follow returns the events of the event stream after sequence after, in
// order, each once, until ctx ends or reading fails (the last item then
// carries Err). It reads them with an ordered consumer of its own until
// the tap (nil: none) hands it the very next event, and from the tap from
// then on, so a process reads and decodes the stream once however many
// readers follow it. An event the tap drops sends it back to its own
// consumer until that event has been passed on. The event stream's
// sequences have no gaps (it holds only lb.evt.> and denies deletes), so a
// gap in what the tap hands over means an event was missed there. stop
// ends the following and returns once it no longer takes from the tap, so
// the next Follow on the same tap misses nothing.
func Follow(ctx context.Context, js jetstream.JetStream, tap *Tap, after uint64) (evs <-chan FeedEvent, stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	out := make(chan FeedEvent, 256)
	var tapCh <-chan FeedEvent
	var dropCh <-chan struct{}
	if tap != nil {
		tapCh, dropCh = tap.ch, tap.dropCh
	}
	go func() {
		defer close(done)
		last := after
		var needOwn uint64 // the last event the tap dropped: read our own until it is passed on
		var own <-chan FeedEvent
		var stopOwn context.CancelFunc
		readOwn := func() {
			var octx context.Context
			octx, stopOwn = context.WithCancel(ctx)
			own = readStream(octx, js, last)
		}
		defer func() {
			if stopOwn != nil {
				stopOwn()
			}
		}()
		send := func(ev FeedEvent) bool {
			select {
			case out <- ev:
				last = ev.Seq
				return ev.Err == nil
			case <-ctx.Done():
				return false
			}
		}
		readOwn()
		for {
			if ctx.Err() != nil {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-dropCh:
				needOwn = max(needOwn, tap.dropped.Load())
				if own == nil && last < needOwn {
					readOwn()
				}
			case ev := <-tapCh:
				switch {
				case ev.Seq <= last:
					continue // our own consumer got here first
				case own != nil && ev.Seq == last+1 && last >= needOwn:
					stopOwn() // caught up with the feed: follow it
					own, stopOwn = nil, nil
				case own == nil && ev.Seq > last+1:
					readOwn() // a gap: read it ourselves
					continue
				case own != nil:
					continue // ahead of our own consumer, which will get there
				}
				if !send(ev) {
					return
				}
			case ev := <-own:
				if ev.Err == nil && ev.Seq <= last {
					continue
				}
				if !send(ev) {
					return
				}
			}
		}
	}()
	return out, func() { cancel(); <-done }
}

// readStream reads the event stream after sequence after with an ordered
// consumer, decoding on its own goroutine so that decoding overlaps with
// whatever the reader does with the event before.
func readStream(ctx context.Context, js jetstream.JetStream, after uint64) <-chan FeedEvent {
	out := make(chan FeedEvent, 256)
	go func() {
		fail := func(err error) {
			if ctx.Err() == nil {
				select {
				case out <- FeedEvent{Err: err}:
				case <-ctx.Done():
				}
			}
		}
		// No filter: the stream's only subject is events.AllEvents, and a
		// filter equal to it costs the server a subject match per message
		// and, for a read from the first event, a walk of its subject index.
		cfg := jetstream.OrderedConsumerConfig{}
		if after > 0 {
			cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, after+1
		}
		cons, err := js.OrderedConsumer(ctx, events.EventsStream, cfg)
		if err != nil {
			fail(fmt.Errorf("follow: consumer: %w", err))
			return
		}
		msgs, err := cons.Messages(jetstream.PullMaxMessages(4096))
		if err != nil {
			fail(fmt.Errorf("follow: messages: %w", err))
			return
		}
		defer msgs.Stop()
		go func() { <-ctx.Done(); msgs.Stop() }()
		for {
			msg, err := msgs.Next()
			if err != nil {
				fail(fmt.Errorf("follow: next: %w", err))
				return
			}
			md, err := msg.Metadata()
			if err != nil {
				continue
			}
			ev := FeedEvent{Seq: md.Sequence.Stream, Pending: md.NumPending, Time: md.Timestamp, Subject: msg.Subject(),
				Header: msg.Headers(), Data: msg.Data()}
			if m, derr := events.Decode(ev.Header, ev.Data); derr == nil {
				ev.Message = m
			}
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}
