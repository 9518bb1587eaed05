package bus

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/licensebus/licensebus/events"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// ApplyFunc folds one event into in-memory state. It is called from one
// goroutine, in stream order. m is nil when the message does not decode
// (it is then skipped: dead letters are the command consumers' job).
type ApplyFunc func(seq uint64, m *events.Message)

// Feed reads the event stream once, through one ordered consumer, decodes
// each event once and hands it to every Fold registered on it. Components
// of one process share a Feed, so the stream is not read and decoded once
// per component.
type Feed struct {
	js  jetstream.JetStream
	log zerolog.Logger
	// election, if set, makes the reactors registered after it singletons;
	// fenced counts their checkpoints refused because another process had
	// taken them over.
	election Election
	fenced   atomic.Uint64

	mu      sync.Mutex
	subs    []ApplyFunc
	taps    []*Tap
	started bool
	last    uint64
	notify  chan struct{} // closed and replaced whenever last moves
	done    chan struct{} // closed when the feed stops
	err     error

	reactors []*Reactor // registered with React, for their positions
}

// NewFeed returns a Feed over the events stream. Register folds with Fold
// before the first Run.
func NewFeed(js jetstream.JetStream, log zerolog.Logger) *Feed {
	return &Feed{js: js, log: log, notify: make(chan struct{}), done: make(chan struct{})}
}

// Fold registers apply and returns the Fold that tracks it. It panics after
// the feed started: a late fold would miss events.
func (f *Feed) Fold(apply ApplyFunc) *Fold {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.started {
		panic("bus: Fold registered on a running Feed")
	}
	f.subs = append(f.subs, apply)
	return &Fold{feed: f}
}

// Tap returns a tap on the feed for a reader that keeps its own pace (the
// projections runner, the auditor) and would otherwise read and decode the
// stream a second time: read it with Follow. The feed never waits for a
// tap; one that is full drops events and says so. Like Fold, it panics
// after the feed started.
func (f *Feed) Tap(buffer int) *Tap {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.started {
		panic("bus: Tap registered on a running Feed")
	}
	t := newTap(buffer)
	f.taps = append(f.taps, t)
	return t
}

// start runs the feed once, in the background, until ctx ends.
func (f *Feed) start(ctx context.Context) {
	f.mu.Lock()
	if f.started {
		f.mu.Unlock()
		return
	}
	f.started = true
	subs, taps := f.subs, f.taps
	f.mu.Unlock()
	go func() {
		err := f.run(ctx, subs, taps)
		f.mu.Lock()
		f.err = err
		close(f.done)
		f.mu.Unlock()
	}()
}

func (f *Feed) run(ctx context.Context, subs []ApplyFunc, taps []*Tap) error {
	// Unfiltered, as in readStream: the stream holds events.AllEvents only.
	cons, err := f.js.OrderedConsumer(ctx, events.EventsStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return fmt.Errorf("feed consumer: %w", err)
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		md, err := msg.Metadata()
		if err != nil {
			return
		}
		m, derr := events.Decode(msg.Headers(), msg.Data())
		if derr != nil {
			m = nil
		}
		for _, apply := range subs {
			apply(md.Sequence.Stream, m)
		}
		f.advance(md.Sequence.Stream)
		if len(taps) > 0 {
			ev := FeedEvent{Seq: md.Sequence.Stream, Pending: md.NumPending, Time: md.Timestamp, Subject: msg.Subject(),
				Header: msg.Headers(), Data: msg.Data(), Message: m}
			for _, t := range taps {
				t.Offer(ev)
			}
		}
	}, jetstream.PullMaxMessages(2048), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		f.log.Debug().Err(err).Msg("feed consumer")
	}))
	if err != nil {
		return fmt.Errorf("feed consume: %w", err)
	}
	<-ctx.Done()
	cc.Stop()
	return nil
}

func (f *Feed) advance(seq uint64) {
	f.mu.Lock()
	if seq > f.last {
		f.last = seq
		close(f.notify)
		f.notify = make(chan struct{})
	}
	f.mu.Unlock()
}

// Fold keeps in-memory state in step with the event stream. Handlers use it
// to decide on current state; WaitFor lets them wait until the state
// includes a given sequence.
type Fold struct {
	feed *Feed
}

// NewFold returns a Fold with a Feed of its own.
func NewFold(js jetstream.JetStream, apply ApplyFunc, log zerolog.Logger) *Fold {
	return NewFeed(js, log).Fold(apply)
}

// Run starts the fold's feed (if no other fold on it has) and blocks until
// ctx ends.
func (fo *Fold) Run(ctx context.Context) error {
	fo.feed.start(ctx)
	select {
	case <-ctx.Done():
		return nil
	case <-fo.feed.done:
		fo.feed.mu.Lock()
		defer fo.feed.mu.Unlock()
		return fo.feed.err
	}
}

// Last is the sequence of the last event folded.
func (fo *Fold) Last() uint64 {
	fo.feed.mu.Lock()
	defer fo.feed.mu.Unlock()
	return fo.feed.last
}

// WaitFor blocks until the fold has applied seq, or ctx ends.
func (fo *Fold) WaitFor(ctx context.Context, seq uint64) error {
	f := fo.feed
	for {
		f.mu.Lock()
		last, ch := f.last, f.notify
		f.mu.Unlock()
		if last >= seq {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("fold at %d, waiting for %d: %w", last, seq, ctx.Err())
		}
	}
}

// CatchUp waits until the fold has applied everything the stream held when
// CatchUp was called. Handlers call it before answering "not found", so a
// fact appended a moment ago elsewhere is not missed.
func (fo *Fold) CatchUp(ctx context.Context) error {
	last, err := LastSeq(ctx, fo.feed.js, events.EventsStream)
	if err != nil {
		return fmt.Errorf("catch up: %w", err)
	}
	return fo.WaitFor(ctx, last)
}
