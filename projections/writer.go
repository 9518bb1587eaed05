package projections

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/licensebus/licensebus/internal/bus"
	"github.com/nats-io/nats.go/jetstream"
)

// writer stores batches in order, each pipelined on one connection (so
// stored in that order, checkpoints after their entries), and advances a
// model's checkpoint only once all of its batch is acked.
type writer struct {
	batches chan batch
	failed  chan struct{} // closed when a write failed
	done    chan struct{}
	err     error
	once    sync.Once
}

func (r *Runner) startWriter(ctx context.Context) *writer {
	w := &writer{batches: make(chan batch, 1), failed: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for b := range w.batches {
			if w.err != nil {
				continue // drain after a failure
			}
			if err := r.write(ctx, b); err != nil {
				w.err = err
				close(w.failed)
			}
		}
	}()
	return w
}

func (w *writer) send(b batch) error {
	select {
	case w.batches <- b:
		return nil
	case <-w.failed:
		return w.close()
	}
}

// close waits until everything handed over is written and returns the
// first write error.
func (w *writer) close() error {
	w.once.Do(func() { close(w.batches) })
	<-w.done
	return w.err
}

func (r *Runner) write(ctx context.Context, b batch) error {
	if b.chains != nil {
		r.chains = b.chains
	}
	if len(b.msgs) == 0 {
		return nil
	}
	// Writes finish even when ctx ends: a stop flushes what was applied.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	for attempt := 1; ; attempt++ {
		err := r.publish(wctx, b)
		if err == nil {
			break
		}
		if r.elect == nil || !errors.Is(err, bus.ErrFenced) || attempt == 3 {
			return err
		}
		// Refused: by another term (fenced), or by a write from outside
		// licensebus (an operator's kv put), which only moves the chain.
		if err := r.rechain(wctx, b); err != nil {
			return err
		}
	}
	r.mu.Lock()
	for _, i := range b.models {
		r.ckpt[i] = b.last
	}
	r.mu.Unlock()
	if r.elect != nil {
		for _, i := range b.models {
			r.forget(i, b.last)
		}
	}
	return nil
}

// publish sends a batch pipelined, chained when elected, and waits for
// every ack.
func (r *Runner) publish(ctx context.Context, b batch) error {
	type sent struct {
		f    jetstream.PubAckFuture
		want uint64 // the sequence a chained write must get
	}
	futures := make([]sent, 0, len(b.msgs))
	for _, msg := range b.msgs {
		var opts []jetstream.PublishOpt
		var want uint64
		if r.elect != nil {
			i, _ := r.modelOf(msg.Subject)
			opts, want = r.chains[i].next(msg)
		}
		f, err := r.js.PublishMsgAsync(msg, opts...)
		if err != nil {
			return fmt.Errorf("projections: write %s: %w", msg.Subject, err)
		}
		futures = append(futures, sent{f, want})
	}
	var first error
	for _, p := range futures {
		select {
		case ack := <-p.f.Ok():
			r.noteWrite(ack)
			if p.want != 0 && (ack.Sequence != p.want || ack.Duplicate) && first == nil {
				first = fmt.Errorf("projections: %w: write stored at %d, expected %d", bus.ErrFenced, ack.Sequence, p.want)
			}
		case err := <-p.f.Err():
			if first == nil {
				first = fmt.Errorf("projections: write: %w", fenceErr(err))
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return first
}

func (r *Runner) noteWrite(ack *jetstream.PubAck) {
	if ack == nil {
		return
	}
	r.mu.Lock()
	if i, ok := r.streams[ack.Stream]; ok && ack.Sequence > r.wrote[i] {
		r.wrote[i] = ack.Sequence
	}
	r.mu.Unlock()
}
