package bus

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// ReactorsBucket is the KV bucket of the reactors' checkpoints, one key per
// reactor.
const ReactorsBucket = "licensebus_reactors"

// ReactorConfig configures a Reactor.
type ReactorConfig struct {
	// Name is the reactor's checkpoint key; like a durable's name, it
	// must stay the same across versions.
	Name string
	// Match picks the events to react to; required.
	Match func(m *events.Message) bool
	// Key partitions the reactions: those with the same key are handled
	// one at a time, in stream order; required.
	Key func(m *events.Message) string
	// Handle reacts to one event (Delivery.Msg is nil: there is no
	// delivery to settle); required. An error is transient.
	Handle HandleFunc
	// Workers is how many reactions run at once. Default 16.
	Workers int
	// MaxDeliveries before an event is dead-lettered. Default 5.
	MaxDeliveries uint64
	// MaxDeliver bounds the attempts at one event, dead letter included:
	// the last one ends the reaction even if the dead letter failed.
	// Default MaxDeliver.
	MaxDeliver uint64
	// CheckpointEvery is how often the checkpoint is stored when it moved:
	// about what a restart reacts to a second time. Default 250 ms (a KV
	// write each time: nothing next to the reactions).
	CheckpointEvery time.Duration
	// Replaces names durable consumers on the event stream whose work the
	// reactor took over: with no checkpoint yet, it starts after their
	// lowest ack floor, and deletes them once its checkpoint is stored.
	Replaces    []string
	DeadLetters *DeadLetters
	Logger      zerolog.Logger
	// OnLead, if set, is called when an elected reactor takes over, before
	// it reacts: a handler forgets what it did in an earlier term of this
	// process that the holder since may not have finished.
	OnLead func()
}

// Reactor reacts to events the process's Feed reads anyway: what a durable
// consumer per request type did, without a second delivery of each event,
// its decoding and its ack, and without the server's state for the
// consumer. Its durability is a checkpoint of its own in ReactorsBucket:
// the stream sequence up to which every reaction has succeeded. After a
// restart it reacts again to every matching event past the checkpoint,
// which handlers answer idempotently, as they do a durable's redeliveries.
//
// On a feed with an Election (Feed.Elect) it is a singleton job,
// "reactor/<name>": it reacts only in the process elected for it, with its
// checkpoint fenced by the key's revision; the others queue what the feed
// offers and drop what the holder's checkpoint covers, ready to take over.
// Without one, every process that runs the same reactor reacts to every
// event (the first append wins, the others find it done): unlike a shared
// durable, it does not split the work between processes.
type Reactor struct {
	cfg    ReactorConfig
	js     jetstream.JetStream
	kv     jetstream.KeyValue
	wake   chan struct{}
	elect  Election
	fenced *atomic.Uint64

	mu      sync.Mutex
	offered uint64 // the feed has offered every event up to here
	queue   []reaction
	open    map[uint64]*events.Message // queued or being handled
	stored  uint64                     // the checkpoint in the bucket
	rev     uint64                     // its revision, when elected: the fence of the next store
	leading bool                       // elected and reacting
}

type reaction struct {
	seq uint64
	m   *events.Message
}

// React registers a Reactor on the feed, after the folds registered so far:
// handlers register their fold first, so that the state they decide on
// includes an event before they react to it. Like Fold, it panics once the
// feed runs.
func (f *Feed) React(cfg ReactorConfig) *Reactor {
	if cfg.Name == "" || cfg.Match == nil || cfg.Key == nil || cfg.Handle == nil {
		panic("bus: a reactor needs Name, Match, Key and Handle")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 16
	}
	if cfg.MaxDeliveries == 0 {
		cfg.MaxDeliveries = 5
	}
	if cfg.MaxDeliver == 0 {
		cfg.MaxDeliver = MaxDeliver
	}
	cfg.MaxDeliver = max(cfg.MaxDeliver, cfg.MaxDeliveries)
	if cfg.CheckpointEvery <= 0 {
		cfg.CheckpointEvery = 250 * time.Millisecond
	}
	r := &Reactor{cfg: cfg, js: f.js, wake: make(chan struct{}, 1), open: map[uint64]*events.Message{}, elect: f.election, fenced: &f.fenced}
	f.Fold(r.offer)
	f.mu.Lock()
	f.reactors = append(f.reactors, r)
	f.mu.Unlock()
	return r
}

// offer is the feed's call for every event, in stream order. It never
// blocks: the feed also drives the folds the reactions wait for. Before
// Open (a feed shared with a component that started it first) it queues
// what matches; Open drops what the checkpoint covers.
func (r *Reactor) offer(seq uint64, m *events.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if seq <= r.offered {
		return
	}
	r.offered = seq
	if m == nil || !r.cfg.Match(m) {
		return
	}
	r.queue = append(r.queue, reaction{seq: seq, m: m})
	r.open[seq] = m
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Open reads the checkpoint, or on the first start the ack floor of the
// durables the reactor replaces, and stores it, then deletes those
// durables.
func (r *Reactor) Open(ctx context.Context) error {
	kv, err := OpenBucket(ctx, r.js, jetstream.KeyValueConfig{
		Bucket: ReactorsBucket, Description: "licensebus reactors' checkpoints: the event sequence each has handled up to",
		History: 1, Storage: jetstream.FileStorage,
	})
	if err != nil {
		return fmt.Errorf("reactor %s: %w", r.cfg.Name, err)
	}
	r.kv = kv
	var floor uint64
	e, err := kv.Get(ctx, r.cfg.Name)
	switch {
	case err == nil:
		if floor, err = strconv.ParseUint(string(e.Value()), 10, 64); err != nil {
			return fmt.Errorf("reactor %s: checkpoint %q: %w", r.cfg.Name, e.Value(), err)
		}
	case errors.Is(err, jetstream.ErrKeyNotFound):
		// The first start: after what the replaced durables settled, or
		// from the stream's start when there are none.
		if floor, _, err = ackFloor(ctx, r.js, events.EventsStream, r.cfg.Replaces); err != nil {
			return fmt.Errorf("reactor %s: %w", r.cfg.Name, err)
		}
		if _, err := kv.Put(ctx, r.cfg.Name, []byte(strconv.FormatUint(floor, 10))); err != nil {
			return fmt.Errorf("reactor %s: store checkpoint: %w", r.cfg.Name, err)
		}
	default:
		return fmt.Errorf("reactor %s: %w", r.cfg.Name, err)
	}
	if state, err := State(ctx, r.js, events.EventsStream); err == nil {
		if p := PositionProblem(events.EventsStream, state, floor); p != "" {
			r.cfg.Logger.Error().Str("reactor", r.cfg.Name).Uint64("checkpoint", floor).Str("problem", p).
				Msg("reactor checkpoint is not in step with the event stream: events may go unreacted to")
		}
	}
	// Deleted only once the checkpoint that takes over from them is stored.
	for _, name := range r.cfg.Replaces {
		err := r.js.DeleteConsumer(ctx, events.EventsStream, name)
		if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("reactor %s: retire consumer %s: %w", r.cfg.Name, name, err)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stored, r.offered = floor, max(r.offered, floor)
	kept := r.queue[:0]
	for _, x := range r.queue {
		if x.seq > floor {
			kept = append(kept, x)
		} else {
			delete(r.open, x.seq)
		}
	}
	r.queue = kept
	return nil
}

// Run handles the queued reactions and stores the checkpoint every
// CheckpointEvery until ctx ends, then stores it a last time. Call it once
// the folds have caught up with the stream: decisions need current state.
// A checkpoint that cannot be stored is logged, not fatal: a restart
// reacts again from the one before. With an Election it reacts only while
// elected, and stands by otherwise (see Reactor).
func (r *Reactor) Run(ctx context.Context) error {
	if r.elect == nil {
		return r.run(ctx)
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go r.standby(sctx)
	return r.elect.Lead(ctx, "reactor/"+r.cfg.Name, r.lead)
}

// run reacts until ctx ends, or a checkpoint is fenced.
func (r *Reactor) run(ctx context.Context) error {
	select {
	case r.wake <- struct{}{}: // what was queued before this run
	default:
	}
	queues := make([]chan reaction, r.cfg.Workers)
	var wg sync.WaitGroup
	for i := range queues {
		queues[i] = make(chan reaction, 64)
		wg.Add(1)
		go func(q chan reaction) {
			defer wg.Done()
			for x := range q {
				r.handle(ctx, x)
			}
		}(queues[i])
	}
	tick := time.NewTicker(r.cfg.CheckpointEvery)
	defer tick.Stop()
	var fenced error
	save := func() bool {
		err := r.checkpoint(ctx)
		if errors.Is(err, ErrFenced) {
			fenced = err
			return false
		}
		if err != nil {
			r.cfg.Logger.Warn().Err(err).Str("reactor", r.cfg.Name).Msg("checkpoint not stored; a restart reacts again from the last one")
		}
		return true
	}
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
			if !save() {
				break loop
			}
		case <-r.wake:
			r.mu.Lock()
			batch := r.queue
			r.queue = nil
			r.mu.Unlock()
			for _, x := range batch {
				h := fnv.New32a()
				h.Write([]byte(r.cfg.Key(x.m)))
				q := queues[h.Sum32()%uint32(len(queues))]
				// A partition that is full (a slow reaction) holds up the
				// dispatch, not the checkpoints of what is done meanwhile.
				for sent := false; !sent; {
					select {
					case q <- x:
						sent = true
					case <-tick.C:
						if !save() {
							break loop
						}
					case <-ctx.Done():
						break loop
					}
				}
			}
		}
	}
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	if fenced != nil {
		return fenced
	}
	// What is left unhandled stays open: the checkpoint stops before it.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := r.checkpoint(sctx); errors.Is(err, ErrFenced) {
		return err
	} else if err != nil {
		r.cfg.Logger.Warn().Err(err).Str("reactor", r.cfg.Name).Msg("final checkpoint not stored; a restart reacts again from the last one")
	}
	return nil
}

// handle reacts to one event, retrying a transient failure with a growing
// pause, and dead-letters it after MaxDeliveries attempts, so one event
// never holds up its partition for long. An attempt after those whose
// dead letter fails is retried too, up to MaxDeliver attempts in all: the
// last one ends the reaction whatever happens, with an error line (the
// event stays in the stream).
func (r *Reactor) handle(ctx context.Context, x reaction) {
	d := &Delivery{Message: x.m, Seq: x.seq}
	var err error
	for d.Deliveries = 1; ; d.Deliveries++ {
		if err = r.cfg.Handle(ctx, d); err == nil {
			break
		}
		if ctx.Err() != nil {
			return // stays open
		}
		last := d.Deliveries >= r.cfg.MaxDeliver
		log := func(e *zerolog.Event) *zerolog.Event {
			return LogMsg(e.Err(err).Str("reactor", r.cfg.Name).Uint64("seq", x.seq).Uint64("deliveries", d.Deliveries), x.m)
		}
		if d.Deliveries >= r.cfg.MaxDeliveries && r.cfg.DeadLetters != nil {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			derr := r.cfg.DeadLetters.PutEvent(dctx, x.seq, x.m, err)
			cancel()
			if derr == nil {
				log(r.cfg.Logger.Error()).Msg("giving up: dead-lettered")
				break
			}
			if last {
				log(r.cfg.Logger.Error()).AnErr("dead_letter_error", derr).
					Msg("delivery limit reached and the dead letter failed: reaction dropped; the event stays in the stream")
				break
			}
			log(r.cfg.Logger.Warn()).AnErr("dead_letter_error", derr).Msg("dead letter failed; will retry")
		} else if last {
			log(r.cfg.Logger.Error()).Msg("delivery limit reached: reaction dropped; the event stays in the stream")
			break
		} else {
			log(r.cfg.Logger.Warn()).Msg("reaction failed; will retry")
		}
		select {
		case <-time.After(time.Duration(min(d.Deliveries, 10)) * 200 * time.Millisecond):
		case <-ctx.Done():
			return
		}
	}
	r.mu.Lock()
	delete(r.open, x.seq)
	r.mu.Unlock()
}

// checkpoint stores the highest sequence up to which no reaction is open,
// if it moved.
func (r *Reactor) checkpoint(ctx context.Context) error {
	r.mu.Lock()
	floor := r.offered
	for seq := range r.open {
		floor = min(floor, seq-1)
	}
	if floor <= r.stored {
		r.mu.Unlock()
		return nil
	}
	rev := r.rev
	r.mu.Unlock()
	v := []byte(strconv.FormatUint(floor, 10))
	if r.elect == nil {
		if _, err := r.kv.Put(ctx, r.cfg.Name, v); err != nil {
			return err
		}
	} else {
		// Fenced by the key's revision: the next holder moved it first.
		next, err := r.kv.Update(ctx, r.cfg.Name, v, rev)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			r.fenced.Add(1)
			return fmt.Errorf("reactor %s: checkpoint %d: %w", r.cfg.Name, floor, ErrFenced)
		}
		if err != nil {
			return err
		}
		r.mu.Lock()
		r.rev = next
		r.mu.Unlock()
	}
	r.mu.Lock()
	r.stored = max(r.stored, floor)
	r.mu.Unlock()
	return nil
}

// Checkpoint is the sequence up to which every reaction has succeeded, as
// last stored.
func (r *Reactor) Checkpoint() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stored
}

// ReactorState is what a reactor's stored checkpoint says.
type ReactorState struct {
	Name       string `json:"name"`
	Checkpoint uint64 `json:"checkpoint"`
	// Behind is how many events the stream holds past the checkpoint,
	// matching or not: 0 once the reactor has handled everything.
	Behind uint64 `json:"behind"`
	// Problem says why the checkpoint is not in step with the stream (see
	// PositionProblem); empty when it is.
	Problem string `json:"problem,omitempty"`
}

// Reactors reads every reactor's checkpoint, by name, and the event
// stream's last sequence: where an operator sees how far behind the
// reactions are (what a durable's pending count said before), and whether
// a checkpoint is out of step with the stream.
func Reactors(ctx context.Context, js jetstream.JetStream) (last uint64, states []ReactorState, err error) {
	state, err := State(ctx, js, events.EventsStream)
	if err != nil {
		return 0, nil, err
	}
	last = state.LastSeq
	kv, err := js.KeyValue(ctx, ReactorsBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return last, nil, nil // nothing has run a reactor yet
	}
	if err != nil {
		return 0, nil, err
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = keys.Stop() }()
	for k := range keys.Keys() {
		e, err := kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return 0, nil, err
		}
		ck, err := strconv.ParseUint(string(e.Value()), 10, 64)
		if err != nil {
			return 0, nil, fmt.Errorf("reactor %s: checkpoint %q: %w", k, e.Value(), err)
		}
		states = append(states, ReactorState{Name: k, Checkpoint: ck, Behind: last - min(ck, last), Problem: PositionProblem(events.EventsStream, state, ck)})
	}
	slices.SortFunc(states, func(a, b ReactorState) int { return strings.Compare(a.Name, b.Name) })
	return last, states, nil
}

// ackFloor is the lowest ack floor of the named durables that exist;
// found is false when none does. A durable with nothing pending and
// nothing awaiting its ack has settled the whole stream, whatever its ack
// floor says (a filtered durable's floor stays where its last match was,
// or at 0 if nothing ever matched).
func ackFloor(ctx context.Context, js jetstream.JetStream, stream string, names []string) (floor uint64, found bool, err error) {
	var last uint64
	for _, name := range names {
		c, err := js.Consumer(ctx, stream, name)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			continue
		}
		if err != nil {
			return 0, false, err
		}
		info := c.CachedInfo()
		f := info.AckFloor.Stream
		if info.NumPending == 0 && info.NumAckPending == 0 {
			if last == 0 {
				if last, err = LastSeq(ctx, js, stream); err != nil {
					return 0, false, err
				}
			}
			f = max(f, last)
		}
		if !found || f < floor {
			floor = f
		}
		found = true
	}
	return floor, found, nil
}
