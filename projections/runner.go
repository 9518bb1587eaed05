// Package projections builds read models from the event stream only. A
// Runner feeds events, in stream order, to in-memory Models, and persists
// what changed to one JetStream KV bucket per model, followed by the model's
// checkpoint (the last stream sequence it includes). On start a model is
// restored from its bucket and catches up from its checkpoint; Rebuild
// throws everything away and replays the stream from the first event.
package projections

import (
	"context"
	"hash/maphash"
	"sync"

	"github.com/licensebus/licensebus/internal/bus"
	"github.com/licensebus/licensebus/internal/tracing"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

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
	// problems are the checkpoints found out of step with the event
	// stream at the start, until a rebuild.
	problems []string
	tracer   *tracing.Tracer

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

	// With an election (Elect): the job, the take-over requests, the
	// buckets' checkpoints read while standing by, per model the changes
	// not known to be in its bucket (guarded by pmu), and the current
	// term's fence (owned by whoever writes).
	elect   bus.Election
	termc   chan *term
	ckc     chan []uint64
	pmu     sync.Mutex
	pending []map[string]entry
	fence   *fence
	cur     *term // the term being served; owned by the goroutine that follows
	leading bool  // guarded by mu
	fenced  uint64

	replicas int // of the buckets it creates
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
	if err := r.openBuckets(ctx); err != nil {
		return err
	}
	if err := r.restore(ctx); err != nil {
		return err
	}
	r.opened = true
	return nil
}

// Run keeps the models current until ctx ends. With an election it also
// campaigns for the job of writing the buckets (see Elect).
func (r *Runner) Run(ctx context.Context) error {
	if err := r.Open(ctx); err != nil {
		return err
	}
	if r.elect != nil {
		ectx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); _ = r.elect.Lead(ectx, Job, r.lead) }()
		go func() { defer wg.Done(); r.watchCheckpoints(ectx) }()
		defer func() { stop(); wg.Wait() }()
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

// UseTap makes the runner follow the process's feed (bus.Feed.Tap) once it
// has caught up with it, instead of reading the stream a second time. Call
// it before Run.
func (r *Runner) UseTap(t *bus.Tap) { r.tap = t }
