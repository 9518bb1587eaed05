package projections

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
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
	if b.fence != nil {
		r.fence = b.fence
	}
	if r.fence != nil {
		for i, subjects := range b.expired {
			for _, s := range subjects {
				delete(r.fence.revs[i], r.keyHash(s))
			}
		}
	}
	if len(b.msgs) == 0 {
		return nil
	}
	// Writes finish even when ctx ends: a stop flushes what was applied.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if r.elect != nil {
		// Acks lost in a stream's leader change never come: the term
		// ends soon, and the next one writes what is pending.
		fctx, cancel := context.WithTimeout(wctx, 10*time.Second)
		err := r.publishFenced(fctx, b.msgs)
		cancel()
		if err != nil {
			return err
		}
	} else if err := r.publish(wctx, b.msgs); err != nil {
		return err
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

// writeWindow bounds the writes in flight: nats.go refuses an async
// publish once 4,000 await their acks (ErrTooManyStalledMsgs), and a flush
// after a fleet rollout holds hundreds of thousands of entries.
const writeWindow = 1000

// publish sends msgs pipelined, writeWindow at a time, and waits for every
// ack.
func (r *Runner) publish(ctx context.Context, msgs []*nats.Msg) error {
	for len(msgs) > 0 {
		n := min(len(msgs), writeWindow)
		if err := r.publishWindow(ctx, msgs[:n]); err != nil {
			return err
		}
		msgs = msgs[n:]
	}
	return nil
}

func (r *Runner) publishWindow(ctx context.Context, msgs []*nats.Msg) error {
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	for _, msg := range msgs {
		f, err := r.js.PublishMsgAsync(msg)
		if err != nil {
			return fmt.Errorf("projections: write %s: %w", msg.Subject, err)
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case ack := <-f.Ok():
			r.noteWrite(ack)
		case err := <-f.Err():
			return fmt.Errorf("projections: write: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
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
