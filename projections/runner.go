// Package projections builds read models from the event stream only. A
// Runner feeds events, in stream order, to in-memory Models, and persists
// what changed to one JetStream KV bucket per model, followed by the model's
// checkpoint (the last stream sequence it includes). On start a model is
// restored from its bucket and catches up from its checkpoint; Rebuild
// throws everything away and replays the stream from the first event.
package projections

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/licensebus/licensebus/internal/tracing"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/segmentio/encoding/json"
)

// checkpointLag is how far a model's checkpoint may trail the events it
// has seen when none of them changed it: a restart replays at most that.
const checkpointLag = 10000

// replayHold is how many events a model replaying from the first event
// may hold its changes for before writing them anyway, which bounds the
// memory they take.
const replayHold = 1 << 20

// CheckpointKey is the key of a model's checkpoint in its bucket.
const CheckpointKey = "_checkpoint"

// Model is an in-memory read model. The Runner calls Apply, Changes, Restore
// and Reset from one goroutine; readers call the model's own query methods
// concurrently, so a Model guards its state itself.
type Model interface {
	// Name names the model; its bucket is "licensebus_view_<name>".
	Name() string
	// Apply folds one event at stream sequence seq.
	Apply(seq uint64, m *events.Message)
	// Changes returns the entries changed since the last call (a nil value
	// deletes the key) and forgets them.
	Changes() map[string][]byte
	// Restore loads one entry persisted earlier.
	Restore(key string, value []byte) error
	// Reset empties the model.
	Reset()
}

// Emitter is a Model that can hand its changes over one at a time, each
// value encoded in a buffer it reuses: value (nil deletes the key) is
// valid only during the call to emit. A replay recomputes every entry and
// most come out as the bucket holds them, so the runner copies only the
// values it keeps (to write or to hold): the others cost no allocation.
type Emitter interface {
	EachChange(emit func(key string, value []byte))
}

// eachChange hands m's changes to emit, through EachChange if m is an
// Emitter; owned says emit may keep the value without copying it.
func eachChange(m Model, emit func(key string, value []byte, owned bool)) {
	if e, ok := m.(Emitter); ok {
		e.EachChange(func(k string, v []byte) { emit(k, v, false) })
		return
	}
	for k, v := range m.Changes() {
		emit(k, v, true)
	}
}

// Collect gathers an Emitter's changes in a map of copies, as Changes
// returns them.
func Collect(e Emitter) map[string][]byte {
	out := map[string][]byte{}
	e.EachChange(func(k string, v []byte) {
		if v != nil {
			v = bytes.Clone(v)
		}
		out[k] = v
	})
	return out
}

// AppendEntry appends a model entry's encoding (MarshalEntry's) to b.
func AppendEntry(b []byte, v any) []byte {
	b, err := json.Append(b, v, json.EscapeHTML|json.SortMapKeys)
	if err != nil {
		panic(fmt.Sprintf("projections: entry does not encode: %v", err)) // our own structs: a bug
	}
	return b
}

// Grower is a Model that can make room for its entries before a replay
// from the first event: the Runner passes how many its bucket holds. Maps
// that grow step by step to 10^5 entries cost about a tenth of a rebuild.
type Grower interface {
	Grow(entries int)
}

// Grown is m with room for n more entries: how a Grower sizes its maps.
func Grown[K comparable, V any](m map[K]V, n int) map[K]V {
	g := make(map[K]V, len(m)+n)
	maps.Copy(g, m)
	return g
}

// Restorer is a Model with values derived from several of its entries
// (counts kept beside the items they count). The entries of one flush are
// not stored atomically: a process that dies in the middle of one leaves
// some of them newer than the others and than the checkpoint, and the
// events replayed from the checkpoint do not mend a derived value whose
// entry was the older one. The Runner calls Restored once every entry is
// restored, before any event is applied, so the model can derive those
// values again; entries it marks changed are written.
type Restorer interface {
	Restored()
}

// Bucket returns the KV bucket name of a model.
func Bucket(m Model) string { return "licensebus_view_" + m.Name() }

// Runner keeps Models up to date. Create it with NewRunner and call Run.
type Runner struct {
	js     jetstream.JetStream
	models []Model
	log    zerolog.Logger

	mu      sync.Mutex
	applied uint64 // last sequence applied to every model
	notify  chan struct{}
	ckpt    []uint64 // per model: last sequence persisted
	rebuild chan chan error
	opened  bool
	tap     *bus.Tap // the process's feed, if it has one
	tracer  *tracing.Tracer

	// Owned by the goroutine that restores and follows:
	seed maphash.Seed
	// stored is, per model, the hash of each entry in its bucket (63 bits)
	// and a mark in the top bit: while a model replays from the first
	// event, entries it has written since carry mark[i]. Once it reaches
	// the head, entries of its bucket it did not write are stale and
	// deleted. Flipping mark[i] at the start of a replay unmarks every
	// entry at once, with no second map of the keys seen.
	stored    []map[string]uint64
	mark      []uint64
	replaying []bool
	// held is, per model replaying, the changes that differ from what its
	// bucket holds, kept until the head (nil: delete). The rest of the
	// changes are compared and let go as the replay goes, so that a
	// replay does not hold every entry in memory until the head.
	held []map[string][]byte
	// wrote is, per model, the last sequence of its bucket's stream this
	// runner read or wrote: if the stream has moved past it, someone else
	// wrote to the bucket and stored is no longer to be trusted.
	wrote   []uint64
	streams map[string]int // bucket stream name → model
}

// NewRunner returns a Runner for models. Models are flushed in the order
// given, so a model listed later (outcomes) never runs ahead of one listed
// earlier in what readers see.
func NewRunner(js jetstream.JetStream, log zerolog.Logger, models ...Model) *Runner {
	r := &Runner{js: js, models: models, log: log.With().Str("component", "projections").Logger(),
		notify: make(chan struct{}), ckpt: make([]uint64, len(models)), rebuild: make(chan chan error),
		seed: maphash.MakeSeed(), stored: make([]map[string]uint64, len(models)), mark: make([]uint64, len(models)),
		replaying: make([]bool, len(models)), held: make([]map[string][]byte, len(models)),
		wrote: make([]uint64, len(models)), streams: map[string]int{}}
	for i, m := range models {
		r.stored[i] = map[string]uint64{}
		r.streams["KV_"+Bucket(m)] = i
	}
	return r
}

// Open creates the models' buckets and restores the models from them. Run
// calls it if the caller has not; calling it first makes the buckets exist
// before anyone watches them.
func (r *Runner) Open(ctx context.Context) error {
	if r.opened {
		return nil
	}
	for _, m := range r.models {
		_, err := r.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: Bucket(m), Description: "licensebus read model " + m.Name(), History: 1, Storage: jetstream.FileStorage,
		})
		if err != nil {
			return fmt.Errorf("projection %s: bucket: %w", m.Name(), err)
		}
	}
	if err := r.restore(ctx); err != nil {
		return err
	}
	r.opened = true
	return nil
}

// Run keeps the models current until ctx ends.
func (r *Runner) Run(ctx context.Context) error {
	if err := r.Open(ctx); err != nil {
		return err
	}
	for {
		done, err := r.follow(ctx)
		if err != nil {
			return err
		}
		if done == nil {
			return nil
		}
		// Rebuild requested: drop the buckets' contents and the models.
		err = r.reset(ctx)
		done <- err
		if err != nil {
			return err
		}
	}
}

// restore loads every model from its bucket.
func (r *Runner) restore(ctx context.Context) error {
	for i, m := range r.models {
		ck, err := r.load(ctx, i, m, true)
		if err != nil {
			return fmt.Errorf("projection %s: restore: %w", m.Name(), err)
		}
		if ck == 0 {
			// Nothing is known to be applied (a new bucket, a rebuild that
			// was cut short, or entries written without their checkpoint):
			// start empty and replay, keeping what the bucket holds only
			// to compare with.
			m.Reset()
			m.Changes()
			r.replayFromStart(i, m)
		}
		r.mu.Lock()
		r.ckpt[i] = ck
		r.mu.Unlock()
		r.log.Info().Str("model", m.Name()).Uint64("checkpoint", ck).Msg("restored")
	}
	return nil
}

// replayFromStart readies model i, just reset, for a replay from the first
// event, sized for what its bucket holds.
func (r *Runner) replayFromStart(i int, m Model) {
	if g, ok := m.(Grower); ok {
		g.Grow(len(r.stored[i]))
	}
	r.mark[i] ^= markBit
	r.replaying[i] = true
	r.held[i] = nil
}

// markBit is the bit of a stored hash that says "written in this replay".
const markBit = 1 << 63

// hash is the hash of an entry's value, without the mark bit. 63 bits:
// the odds of two values of one key colliding (and a write being
// skipped) are one in 2^63.
func (r *Runner) hash(v []byte) uint64 { return maphash.Bytes(r.seed, v) &^ markBit }

// load reads a model's bucket: the hash of every entry into stored, the
// entries into the model if restore, and the checkpoint.
func (r *Runner) load(ctx context.Context, i int, m Model, restore bool) (uint64, error) {
	stream := "KV_" + Bucket(m)
	state, err := bus.State(ctx, r.js, stream)
	if err != nil {
		return 0, err
	}
	r.stored[i] = map[string]uint64{}
	r.wrote[i] = state.LastSeq
	if state.Msgs == 0 {
		return 0, nil
	}
	cons, err := r.js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy})
	if err != nil {
		return 0, err
	}
	prefix := len("$KV." + Bucket(m) + ".")
	var ck uint64
	var ferr error
	for {
		batch, err := cons.FetchNoWait(4096)
		if err != nil {
			return 0, err
		}
		n := 0
		var pending uint64
		for msg := range batch.Messages() {
			n++
			md, _ := msg.Metadata()
			if md != nil {
				pending = md.NumPending
			}
			key := msg.Subject()[prefix:]
			if op := msg.Headers().Get("KV-Operation"); op != "" {
				continue
			}
			if key == CheckpointKey {
				ck, _ = strconv.ParseUint(string(msg.Data()), 10, 64)
				continue
			}
			r.stored[i][key] = r.hash(msg.Data()) | r.mark[i]
			if !restore {
				continue
			}
			if err := m.Restore(key, msg.Data()); err != nil && ferr == nil {
				ferr = fmt.Errorf("key %s: %w", key, err)
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return 0, err
		}
		if n == 0 || pending == 0 {
			break
		}
	}
	m.Changes() // restored entries are not changes
	if rs, ok := m.(Restorer); ok && restore {
		rs.Restored()
	}
	return ck, ferr
}

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
	defer w.close()

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
		return w.send(b)
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
		select {
		case <-ctx.Done():
			_ = flush(true)
			return nil, w.close()
		case done := <-r.rebuild:
			if err := w.close(); err != nil {
				return nil, err
			}
			return done, nil
		case <-w.failed:
			return nil, w.close()
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

// UseTap makes the runner follow the process's feed (bus.Feed.Tap) once it
// has caught up with it, instead of reading the stream a second time. Call
// it before Run.
func (r *Runner) UseTap(t *bus.Tap) { r.tap = t }

// batch is one flush: each model's changes, then its checkpoint.
type batch struct {
	msgs   []*nats.Msg
	last   uint64
	models []int
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

// hold takes one change of model i (k = v, nil deleting) while it replays
// and may not write yet: a value equal to what the bucket holds is only
// marked as written in this replay (and any older differing value held for
// it dropped); others are held for the head, copied unless owned.
func (r *Runner) hold(i int, k string, v []byte, owned bool) {
	stored, mark := r.stored[i], r.mark[i]
	if v != nil {
		if old, ok := stored[k]; ok && old&^markBit == r.hash(v) {
			if old&markBit != mark {
				stored[k] = old&^markBit | mark
			}
			delete(r.held[i], k)
			return
		}
		if !owned {
			v = bytes.Clone(v)
		}
	}
	if r.held[i] == nil {
		r.held[i] = make(map[string][]byte)
	}
	r.held[i][k] = v
}

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
	if len(b.msgs) == 0 {
		return nil
	}
	// Writes finish even when ctx ends: a stop flushes what was applied.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	futures := make([]jetstream.PubAckFuture, 0, len(b.msgs))
	for _, msg := range b.msgs {
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
		case <-wctx.Done():
			return wctx.Err()
		}
	}
	r.mu.Lock()
	for _, i := range b.models {
		r.ckpt[i] = b.last
	}
	r.mu.Unlock()
	return nil
}

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
		ack, err := r.js.Publish(ctx, "$KV."+Bucket(m)+"."+CheckpointKey, []byte("0"))
		if err != nil {
			return fmt.Errorf("projection %s: reset checkpoint: %w", m.Name(), err)
		}
		r.noteWrite(ack)
		m.Reset()
		m.Changes() // nothing pending from before
		r.replayFromStart(i, m)
		r.mu.Lock()
		r.ckpt[i] = 0
		r.mu.Unlock()
	}
	r.mu.Lock()
	r.applied = 0
	r.mu.Unlock()
	r.log.Info().Msg("projections reset for rebuild")
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

// MarshalEntry encodes a model entry; models use JSON so outsiders can read
// the buckets.
func MarshalEntry(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("projections: entry does not encode: %v", err)) // our own structs: a bug
	}
	return b
}
