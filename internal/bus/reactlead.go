package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// lead is one term of an elected reactor: it takes the checkpoint over,
// reacts until the term ends, and puts what it left unhandled back in the
// queue for a later term.
func (r *Reactor) lead(ctx context.Context) error {
	if err := r.takeOver(ctx); err != nil {
		return err
	}
	r.mu.Lock()
	r.leading = true
	r.mu.Unlock()
	err := r.run(ctx)
	r.mu.Lock()
	r.leading = false
	r.requeue()
	r.mu.Unlock()
	return err
}

// takeOver reads the checkpoint from the bucket's leader and stores it
// again by revision: the store moves the revision, so the last holder — if
// it is only paused, not dead — can no longer store a checkpoint. The
// reactor goes on from the checkpoint, with its queue cut to what comes
// after it.
func (r *Reactor) takeOver(ctx context.Context) error {
	key := "$KV." + ReactorsBucket + "." + r.cfg.Name
	last, err := LastMsg(ctx, r.js, "KV_"+ReactorsBucket, key)
	if err != nil {
		return fmt.Errorf("reactor %s: read checkpoint: %w", r.cfg.Name, err)
	}
	floor, err := strconv.ParseUint(string(last.Data), 10, 64)
	if err != nil {
		return fmt.Errorf("reactor %s: checkpoint %q: %w", r.cfg.Name, last.Data, err)
	}
	rev, err := r.kv.Update(ctx, r.cfg.Name, last.Data, last.Sequence)
	if err != nil {
		return fmt.Errorf("reactor %s: take the checkpoint over: %w", r.cfg.Name, err)
	}
	r.mu.Lock()
	r.rev, r.stored = rev, floor
	r.drop(floor)
	r.mu.Unlock()
	if r.cfg.OnLead != nil {
		r.cfg.OnLead()
	}
	return nil
}

// drop forgets the queued reactions up to floor, done by whoever stored
// it. Caller holds mu.
func (r *Reactor) drop(floor uint64) {
	r.offered = max(r.offered, floor)
	kept := r.queue[:0]
	for _, x := range r.queue {
		if x.seq > floor {
			kept = append(kept, x)
		} else {
			delete(r.open, x.seq)
		}
	}
	r.queue = kept
}

// requeue puts the reactions a term left open (handed to a worker, not
// handled) back in the queue, in stream order. Caller holds mu.
func (r *Reactor) requeue() {
	queued := make(map[uint64]bool, len(r.queue))
	for _, x := range r.queue {
		queued[x.seq] = true
	}
	for seq, m := range r.open {
		if !queued[seq] {
			r.queue = append(r.queue, reaction{seq: seq, m: m})
		}
	}
	slices.SortFunc(r.queue, func(a, b reaction) int { return compareSeq(a.seq, b.seq) })
}

func compareSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// standby keeps the queue of a reactor another process runs to what that
// process has not checkpointed, reading its checkpoint every second.
func (r *Reactor) standby(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		r.mu.Lock()
		leading := r.leading
		r.mu.Unlock()
		if leading || r.kv == nil {
			continue
		}
		e, err := r.kv.Get(ctx, r.cfg.Name)
		if err != nil {
			if !errors.Is(err, jetstream.ErrKeyNotFound) && ctx.Err() == nil {
				r.cfg.Logger.Debug().Err(err).Str("reactor", r.cfg.Name).Msg("standby: checkpoint not read")
			}
			continue
		}
		floor, err := strconv.ParseUint(string(e.Value()), 10, 64)
		if err != nil {
			continue
		}
		r.mu.Lock()
		if !r.leading {
			r.stored = max(r.stored, floor)
			r.drop(floor)
		}
		r.mu.Unlock()
	}
}
