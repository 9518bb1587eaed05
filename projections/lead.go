package projections

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/licensebus/licensebus/internal/bus"
	"github.com/nats-io/nats.go/jetstream"
)

// Job is the name of the projections' writer as a singleton job.
const Job = "projections"

// Elect makes the runner's writes a singleton job (Job): every process
// keeps its models current from the feed, for its own queries, but only
// the one e elects writes the buckets. The others keep what they would
// have written since the buckets' checkpoints, and the one taking over
// writes that first. Call it before Run.
func (r *Runner) Elect(e bus.Election) {
	r.elect = e
	r.termc = make(chan *term)
	r.ckc = make(chan []uint64, 1)
	r.pending = make([]map[string]entry, len(r.models))
	for i := range r.pending {
		r.pending[i] = map[string]entry{}
	}
}

// SetReplicas gives the buckets the runner creates n replicas (existing
// ones are left as they are). Call it before Open.
func (r *Runner) SetReplicas(n int) { r.replicas = n }

// Leading says whether this runner writes the buckets now: always without
// an election, while elected with one.
func (r *Runner) Leading() bool {
	if r.elect == nil {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.leading
}

// Fenced counts the writes of this runner the buckets refused because
// another process had taken the job over.
func (r *Runner) Fenced() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fenced
}

// term is one spell of this runner as the buckets' writer.
type term struct {
	check   func(context.Context) error // does this process still hold the job?
	started chan error                  // the take-over's outcome
	ended   chan error                  // why the term ended early (buffered)
	stop    chan struct{}               // the job asks the runner to stop writing
	stopped chan struct{}               // closed once nothing more is written
	once    sync.Once
}

func newTerm() *term {
	return &term{started: make(chan error, 1), ended: make(chan error, 1), stop: make(chan struct{}), stopped: make(chan struct{})}
}

// end closes the term: nothing is written in it any more.
func (t *term) end(err error) {
	t.once.Do(func() {
		t.ended <- err
		close(t.stopped)
	})
}

// entry is a change a model made that its bucket may not hold yet: its
// value (nil with del), and the sequence of the flush it came from.
type entry struct {
	data []byte
	del  bool
	seq  uint64
}

// lead is one term of the projections job: it waits until the models
// include what the buckets' checkpoints say is written, has the runner
// take the buckets over, and holds the term until ctx ends (then it waits
// until the runner has stopped writing) or a write fails.
func (r *Runner) lead(ctx context.Context) error {
	cks, err := r.readCheckpoints(ctx)
	if err != nil {
		return err
	}
	if err := r.WaitFor(ctx, slices.Max(cks)); err != nil {
		return nil
	}
	t := newTerm()
	t.check = func(context.Context) error { return bus.CheckLeader(ctx) }
	select {
	case r.termc <- t:
	case <-ctx.Done():
		return nil
	}
	select {
	case err := <-t.started:
		if err != nil {
			return err
		}
	case <-ctx.Done():
		close(t.stop)
		<-t.stopped
		return nil
	}
	select {
	case err := <-t.ended:
		return err
	case <-ctx.Done():
		close(t.stop)
		<-t.stopped
		return nil
	}
}

// readCheckpoints reads every model's checkpoint in its bucket; 0 for one
// not stored.
func (r *Runner) readCheckpoints(ctx context.Context) ([]uint64, error) {
	out := make([]uint64, len(r.models))
	for i, m := range r.models {
		last, err := bus.LastMsg(ctx, r.js, "KV_"+Bucket(m), "$KV."+Bucket(m)+"."+CheckpointKey)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("projection %s: checkpoint: %w", m.Name(), err)
		}
		out[i], _ = strconv.ParseUint(string(last.Data), 10, 64)
	}
	return out, nil
}

// watchCheckpoints reads the buckets' checkpoints every second for a
// runner standing by, so it can let go of the changes they cover.
func (r *Runner) watchCheckpoints(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	kvs := make([]jetstream.KeyValue, len(r.models))
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if r.Leading() {
			continue
		}
		cks := make([]uint64, len(r.models))
		ok := true
		for i, m := range r.models {
			if kvs[i] == nil {
				kv, err := r.js.KeyValue(ctx, Bucket(m))
				if err != nil {
					ok = false
					break
				}
				kvs[i] = kv
			}
			e, err := kvs[i].Get(ctx, CheckpointKey)
			if err != nil {
				ok = false
				break
			}
			cks[i], _ = strconv.ParseUint(string(e.Value()), 10, 64)
		}
		if !ok {
			continue
		}
		select {
		case r.ckc <- cks:
		default:
		}
	}
}

// setLeading says whether this runner is in a term.
func (r *Runner) setLeading(on bool) {
	r.mu.Lock()
	r.leading = on
	r.mu.Unlock()
}

// standingBy takes the buckets' checkpoints, as read while another process
// writes them: they are this runner's too, and what they cover is written.
func (r *Runner) standingBy(cks []uint64) {
	for i, ck := range cks {
		r.forget(i, ck)
	}
	r.mu.Lock()
	copy(r.ckpt, cks)
	r.mu.Unlock()
}

// keep records a flush's changes as not yet known to be written.
func (r *Runner) keep(b batch) {
	r.pmu.Lock()
	defer r.pmu.Unlock()
	for _, msg := range b.msgs {
		i, key := r.modelOf(msg.Subject)
		if i < 0 || key == CheckpointKey {
			continue
		}
		r.pending[i][msg.Subject] = entry{data: msg.Data, del: msg.Header.Get("KV-Operation") == "DEL", seq: b.last}
	}
}

// forget lets go of model i's changes up to ck: its bucket holds them.
func (r *Runner) forget(i int, ck uint64) {
	r.pmu.Lock()
	defer r.pmu.Unlock()
	for subj, e := range r.pending[i] {
		if e.seq <= ck {
			delete(r.pending[i], subj)
		}
	}
}

// modelOf is the model a subject of its bucket belongs to, and the key.
func (r *Runner) modelOf(subject string) (int, string) {
	for i, m := range r.models {
		p := "$KV." + Bucket(m) + "."
		if len(subject) > len(p) && subject[:len(p)] == p {
			return i, subject[len(p):]
		}
	}
	return -1, ""
}

// openBuckets creates the models' buckets, or opens them as they are
// (CreateOrUpdateKeyValue would set an existing bucket's replicas back to
// one); an Expirer's bucket gets its TTL, also when that changed.
func (r *Runner) openBuckets(ctx context.Context) error {
	for _, m := range r.models {
		cfg := jetstream.KeyValueConfig{
			Bucket: Bucket(m), Description: "licensebus read model " + m.Name(), History: 1, Storage: jetstream.FileStorage,
			Replicas: max(1, r.replicas),
		}
		e, expires := m.(Expirer)
		if expires {
			cfg.TTL = e.TTL()
		}
		if _, err := bus.OpenBucket(ctx, r.js, cfg); err != nil {
			return fmt.Errorf("projection %s: bucket: %w", m.Name(), err)
		}
		if !expires {
			continue
		}
		s, err := r.js.Stream(ctx, "KV_"+Bucket(m))
		if err != nil {
			return fmt.Errorf("projection %s: bucket: %w", m.Name(), err)
		}
		if sc := s.CachedInfo().Config; sc.MaxAge != cfg.TTL {
			sc.MaxAge = cfg.TTL
			sc.Duplicates = min(sc.Duplicates, cfg.TTL)
			if _, err := r.js.UpdateStream(ctx, sc); err != nil {
				return fmt.Errorf("projection %s: bucket TTL: %w", m.Name(), err)
			}
		}
	}
	return nil
}
