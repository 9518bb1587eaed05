package bus

import (
	"context"
	"fmt"
	"sync"

	"github.com/licensebus/licensebus/events"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// ApplyFunc folds one event into in-memory state. It is called from one
// goroutine, in stream order. m is nil when the message does not decode
// (it is then skipped: dead letters are the command consumers' job).
type ApplyFunc func(seq uint64, m *events.Message)

// Fold keeps in-memory state in step with the event stream through an
// ordered consumer. Handlers use it to decide on current state; WaitFor lets
// them wait until the state includes a given sequence.
type Fold struct {
	js    jetstream.JetStream
	apply ApplyFunc
	log   zerolog.Logger

	mu     sync.Mutex
	last   uint64
	notify chan struct{} // closed and replaced whenever last moves
}

// NewFold returns a Fold over the events stream calling apply.
func NewFold(js jetstream.JetStream, apply ApplyFunc, log zerolog.Logger) *Fold {
	return &Fold{js: js, apply: apply, log: log, notify: make(chan struct{})}
}

// Run consumes from the start of the stream until ctx ends.
func (f *Fold) Run(ctx context.Context) error {
	cons, err := f.js.OrderedConsumer(ctx, events.EventsStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.AllEvents},
	})
	if err != nil {
		return fmt.Errorf("fold consumer: %w", err)
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
		f.apply(md.Sequence.Stream, m)
		f.advance(md.Sequence.Stream)
	}, jetstream.PullMaxMessages(2048), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		f.log.Debug().Err(err).Msg("fold consumer")
	}))
	if err != nil {
		return fmt.Errorf("fold consume: %w", err)
	}
	<-ctx.Done()
	cc.Stop()
	return nil
}

func (f *Fold) advance(seq uint64) {
	f.mu.Lock()
	if seq > f.last {
		f.last = seq
		close(f.notify)
		f.notify = make(chan struct{})
	}
	f.mu.Unlock()
}

// Last is the sequence of the last event folded.
func (f *Fold) Last() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

// WaitFor blocks until the fold has applied seq, or ctx ends.
func (f *Fold) WaitFor(ctx context.Context, seq uint64) error {
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
func (f *Fold) CatchUp(ctx context.Context) error {
	s, err := f.js.Stream(ctx, events.EventsStream)
	if err != nil {
		return fmt.Errorf("catch up: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return fmt.Errorf("catch up: %w", err)
	}
	return f.WaitFor(ctx, info.State.LastSeq)
}
