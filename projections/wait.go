package projections

import (
	"context"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/bus"
)

func (r *Runner) advance(seq uint64) {
	r.mu.Lock()
	r.applied = seq
	close(r.notify)
	r.notify = make(chan struct{})
	r.mu.Unlock()
}

// Applied returns the last stream sequence applied to the models.
func (r *Runner) Applied() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.applied
}

// Checkpoints returns, per model name, the last sequence persisted.
func (r *Runner) Checkpoints() map[string]uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]uint64, len(r.models))
	for i, m := range r.models {
		out[m.Name()] = r.ckpt[i]
	}
	return out
}

// WaitFor blocks until the models include stream sequence seq.
func (r *Runner) WaitFor(ctx context.Context, seq uint64) error {
	for {
		r.mu.Lock()
		applied, ch := r.applied, r.notify
		r.mu.Unlock()
		if applied >= seq {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// CatchUp waits until the models include everything in the event stream now.
func (r *Runner) CatchUp(ctx context.Context) error {
	head, err := bus.LastSeq(ctx, r.js, events.EventsStream)
	if err != nil {
		return err
	}
	return r.WaitFor(ctx, head)
}
