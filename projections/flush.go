package projections

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/licensebus/licensebus/internal/bus"
	"github.com/nats-io/nats.go"
)

// checkpointLag is how far a model's checkpoint may trail the events it
// has seen when none of them changed it: a restart replays at most that.
const checkpointLag = 10000

// replayHold is how many events a model replaying from the first event
// may hold its changes for before writing them anyway, which bounds the
// memory they take.
const replayHold = 1 << 20

// follow applies events from the lowest checkpoint on. It returns a channel
// to answer when a rebuild is requested, nil when ctx ended.
func (r *Runner) follow(ctx context.Context) (chan error, error) {
	start := r.ckpt[0]
	for _, c := range r.ckpt {
		start = min(start, c)
	}
	// Restored up to start: waiters for it are done (with no new event
	// after a restart, nothing else would wake them).
	r.advance(start)

	// Events come from the process's feed when it has one (bus.Follow
	// reads the stream itself only until it has caught up with the feed).
	evs, stopFollow := bus.Follow(ctx, r.js, r.tap, start)
	defer stopFollow()

	// Writes go to a writer goroutine, so applying never waits for acks:
	// readers see an event as soon as it is applied, and a rebuild overlaps
	// reading with writing. One batch may wait while one is written.
	gate := make([]uint64, len(r.ckpt)) // models restored past an event skip it
	copy(gate, r.ckpt)
	sent := make([]uint64, len(r.ckpt)) // last sequence handed to the writer, per model
	copy(sent, r.ckpt)
	w := r.startWriter(ctx)
	defer func() { _ = w.close() }()
	// endTerm closes the current term (elected runners): the writer is
	// drained first, so nothing of the term is written after it.
	endTerm := func(err error) {
		if werr := w.close(); err == nil {
			err = werr
		}
		if errors.Is(err, bus.ErrFenced) {
			r.mu.Lock()
			r.fenced++
			r.mu.Unlock()
		}
		if r.cur != nil {
			r.setLeading(false)
			r.cur.end(err)
			r.cur = nil
		}
		w = r.startWriter(ctx)
	}

	// Under load, flush at most once per window (a batch of up to maxBatch
	// events); when the stream goes quiet, flush at once so readers see
	// their writes within a window at worst. While far behind the stream (a
	// restart or a rebuild), flush once per catch-up window instead: a key
	// changed a hundred times in it is written once, and readers of the
	// in-memory models are not waiting on the buckets.
	const maxBatch, window = 4096, 5 * time.Millisecond
	const catchUpBatch, catchUpWindow = 1 << 18, time.Second
	dirty, last := 0, start
	quiet := true // nothing was pending after the last event applied
	lastFlush := time.Now()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	armed := false
	flush := func(final bool) error {
		if armed {
			timer.Stop()
			armed = false
		}
		if dirty == 0 {
			return nil
		}
		b := r.batch(last, quiet, final, sent)
		dirty, lastFlush = 0, time.Now()
		if r.elect == nil {
			return w.send(b)
		}
		r.keep(b)
		if r.cur != nil {
			if err := w.send(b); err != nil {
				endTerm(err)
			}
		}
		return nil
	}
	apply := func(ev bus.FeedEvent) error {
		seq := ev.Seq
		if ev.Message != nil {
			span := r.span(ctx, ev, maxBatch)
			for i, model := range r.models {
				if seq > gate[i] {
					model.Apply(seq, ev.Message)
				}
			}
			span.End(nil)
		}
		last, quiet = seq, ev.Pending == 0
		dirty++
		behind := ev.Pending > maxBatch
		// Waiters are told once per event near the head, once per
		// thousand while catching up.
		if !behind || dirty%1024 == 0 {
			r.advance(seq)
		}
		switch {
		case behind && (dirty >= catchUpBatch || time.Since(lastFlush) >= catchUpWindow):
			return flush(false)
		case behind:
		case dirty >= maxBatch:
			return flush(false)
		case ev.Pending == 0 && time.Since(lastFlush) >= window:
			return flush(false)
		case !armed:
			timer.Reset(max(0, window-time.Since(lastFlush)))
			armed = true
		}
		return nil
	}
	for {
		var stop chan struct{} // the job asks to stop writing
		if r.cur != nil {
			stop = r.cur.stop
		}
		select {
		case <-ctx.Done():
			_ = flush(true)
			if r.elect != nil {
				endTerm(nil)
				return nil, nil
			}
			return nil, w.close()
		case done := <-r.rebuild:
			if err := w.close(); err != nil {
				if r.elect == nil {
					return nil, err
				}
				endTerm(err)
			}
			return done, nil
		case <-w.failed:
			if r.elect == nil {
				return nil, w.close()
			}
			endTerm(nil)
		case <-stop:
			endTerm(nil)
		case t := <-r.termc:
			_ = flush(true)
			b, err := r.takeOver(ctx, last, t.check)
			t.started <- err
			if err != nil {
				t.end(err)
				continue
			}
			r.cur = t
			r.setLeading(true)
			if err := w.send(b); err != nil {
				endTerm(err)
			}
		case cks := <-r.ckc:
			if r.cur == nil {
				r.standingBy(cks)
			}
		case <-timer.C:
			armed = false
			if err := flush(false); err != nil {
				return nil, err
			}
		case ev := <-evs:
			if ev.Err != nil {
				if ctx.Err() != nil {
					continue
				}
				return nil, fmt.Errorf("projections: %w", ev.Err)
			}
			if err := apply(ev); err != nil {
				return nil, err
			}
		}
	}
}

// batch is one flush: each model's changes, then its checkpoint.
type batch struct {
	msgs   []*nats.Msg
	last   uint64
	models []int
	// fence, set on a term's first batch, is what its writes expect.
	fence *fence
	// expired are, per model, the subjects of the entries its model let
	// expire (the bucket's TTL drops them): the writer forgets their
	// revisions, which would otherwise grow by one per command for ever.
	expired [][]string
}

// batch collects the models' changes up to last. A model without changes
// skips its checkpoint while the stream is busy, unless it lags too far.
// An entry whose bucket already holds the same value is not written again
// (a replay recomputes every entry, and most come out as they were); a
// model replaying from the first event deletes, once it is at the head,
// the entries it no longer has.
//
// quiet says last is the head of the stream; final, that the runner stops.
func (r *Runner) batch(last uint64, quiet, final bool, sent []uint64) batch {
	b := batch{last: last}
	for i, m := range r.models {
		if last <= sent[i] {
			continue
		}
		stored, replaying, mark := r.stored[i], r.replaying[i], r.mark[i]
		if e, ok := m.(Expirer); ok {
			e.Expired(func(k string) {
				delete(stored, k)
				if b.expired == nil {
					b.expired = make([][]string, len(r.models))
				}
				b.expired[i] = append(b.expired[i], "$KV."+Bucket(m)+"."+k)
			})
		}
		if replaying && !quiet && last-sent[i] < replayHold {
			// Replaying from the first event: the bucket keeps the values
			// it has until the head, where the model's changes since the
			// reset are its final values. Values in between would be
			// written only to be overwritten (and seen half-made).
			eachChange(m, func(k string, v []byte, owned bool) { r.hold(i, k, v, owned) })
			continue
		}
		prefix := "$KV." + Bucket(m) + "."
		changes := 0
		put := func(k string, v []byte, owned bool) {
			if v == nil {
				if _, ok := stored[k]; !ok {
					return
				}
				delete(stored, k)
				b.msgs = append(b.msgs, &nats.Msg{Subject: prefix + k, Header: nats.Header{"KV-Operation": []string{"DEL"}}})
				return
			}
			h := r.hash(v) | mark
			if old, ok := stored[k]; ok && old&^markBit == h&^markBit {
				if old != h {
					stored[k] = h // the same value, now marked
				}
				return
			}
			stored[k] = h
			if !owned {
				v = bytes.Clone(v)
			}
			b.msgs = append(b.msgs, &nats.Msg{Subject: prefix + k, Data: v})
		}
		held := r.held[i]
		eachChange(m, func(k string, v []byte, owned bool) {
			delete(held, k) // the later value wins
			changes++
			put(k, v, owned)
		})
		for k, v := range held {
			changes++
			put(k, v, true)
		}
		r.held[i] = nil
		if changes == 0 && !quiet && !final && last-sent[i] < checkpointLag {
			continue // busy and nothing to write: the checkpoint may lag a little
		}
		sent[i] = last
		if replaying {
			if !quiet {
				// Held too long: written, but no checkpoint and no deletes
				// until the head (a stop before it replays again).
				continue
			}
			for k, h := range stored {
				if h&markBit != mark {
					delete(stored, k)
					b.msgs = append(b.msgs, &nats.Msg{Subject: prefix + k, Header: nats.Header{"KV-Operation": []string{"DEL"}}})
				}
			}
			r.replaying[i] = false
		}
		b.msgs = append(b.msgs, &nats.Msg{Subject: prefix + CheckpointKey, Data: []byte(strconv.FormatUint(last, 10))})
		b.models = append(b.models, i)
	}
	return b
}
