package projections

import (
	"context"
	"fmt"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/nats-io/nats.go"
)

// reset starts a rebuild: each model's checkpoint goes to 0 first (so a
// stop half way replays again rather than trusting half-written entries),
// then the model is emptied. The buckets keep their entries while the
// models replay: outsiders watching them see no gap, and entries that come
// out the same are not written again.
func (r *Runner) reset(ctx context.Context) error {
	for i, m := range r.models {
		last, err := bus.LastSeq(ctx, r.js, "KV_"+Bucket(m))
		if err != nil {
			return fmt.Errorf("projection %s: %w", m.Name(), err)
		}
		r.mu.Lock()
		moved := last != r.wrote[i]
		r.mu.Unlock()
		if moved {
			// Written behind this runner's back: read what it holds now.
			if _, err := r.load(ctx, i, m, false); err != nil {
				return fmt.Errorf("projection %s: %w", m.Name(), err)
			}
		}
		if err := r.resetCheckpoint(ctx, m); err != nil {
			return fmt.Errorf("projection %s: reset checkpoint: %w", m.Name(), err)
		}
		m.Reset()
		m.Changes() // nothing pending from before
		r.replayFromStart(i, m)
		r.mu.Lock()
		r.ckpt[i] = 0
		r.mu.Unlock()
	}
	r.mu.Lock()
	r.applied, r.problems = 0, nil
	r.mu.Unlock()
	r.log.Info().Msg("projections reset for rebuild")
	return nil
}

// resetCheckpoint stores checkpoint 0 for m: by the runner that writes the
// buckets, fenced as its term's writes are; a runner standing by writes nothing (the
// writer rebuilds the buckets, the others only their models).
func (r *Runner) resetCheckpoint(ctx context.Context, m Model) error {
	msg := &nats.Msg{Subject: "$KV." + Bucket(m) + "." + CheckpointKey, Data: []byte("0")}
	if r.elect == nil {
		ack, err := r.js.PublishMsg(ctx, msg)
		if err != nil {
			return err
		}
		r.noteWrite(ack)
		return nil
	}
	if r.cur == nil {
		return nil
	}
	if err := r.publishFenced(ctx, []*nats.Msg{msg}); err != nil {
		// The term is over; the rebuild of the models goes on.
		r.setLeading(false)
		r.cur.end(err)
		r.cur = nil
	}
	return nil
}

// Rebuild empties every model and replays the whole event stream; it
// returns once the models have caught up with the stream as it was when
// the replay began and their buckets hold it, checkpoints included.
func (r *Runner) Rebuild(ctx context.Context) error {
	done := make(chan error, 1)
	select {
	case r.rebuild <- done:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-done:
		if err != nil {
			return err
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	head, err := bus.LastSeq(ctx, r.js, events.EventsStream)
	if err != nil {
		return err
	}
	if err := r.WaitFor(ctx, head); err != nil {
		return err
	}
	// The writer stores what was applied within a flush window; a rebuild
	// is rare enough to poll for it.
	for {
		persisted := true
		for _, ck := range r.Checkpoints() {
			persisted = persisted && ck >= head
		}
		if persisted {
			return nil
		}
		select {
		case <-time.After(2 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
