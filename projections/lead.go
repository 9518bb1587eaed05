package projections

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/licensebus/licensebus/internal/bus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// Job is the name of the projections' writer as a singleton job.
const Job = "projections"

// ViewDedupeWindow is the dedupe window of a view bucket's stream. An
// elected runner sets a Nats-Msg-Id on every write (the chain its fence
// expects, see chain); the server keeps each id for the window, and
// nothing retries a view write, so a second suffices.
const ViewDedupeWindow = time.Second

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
	r.chains = make([]chain, len(r.models))
	for i := range r.pending {
		r.pending[i] = map[string]entry{}
	}
}

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
	started chan error    // the take-over's outcome
	ended   chan error    // why the term ended early (buffered)
	stop    chan struct{} // the job asks the runner to stop writing
	stopped chan struct{} // closed once nothing more is written
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

// chain fences one term's writes to one bucket: each write expects the
// bucket's stream to end with the write before it — its last sequence
// (Nats-Expected-Last-Sequence) and message id (Nats-Expected-Last-Msg-Id,
// unique to the term) — so once another writer slips one message in,
// every later write of this term is refused, pipelined or not. The next
// holder's first write is such a message.
type chain struct {
	seq uint64 // the bucket stream's last sequence, as this term has it
	id  string // its Nats-Msg-Id; "" when that message is not this term's
	pre string // this term's id prefix
	n   uint64
}

// next returns the options of the next write, with its id set on msg, and
// the sequence it must get.
func (c *chain) next(msg *nats.Msg) ([]jetstream.PublishOpt, uint64) {
	c.n++
	id := c.pre + strconv.FormatUint(c.n, 10)
	if msg.Header == nil {
		msg.Header = nats.Header{}
	}
	msg.Header.Set(nats.MsgIdHdr, id)
	msg.Header.Del(jetstream.ExpectedLastMsgIDHeader) // a retry's chain may not expect one
	opts := []jetstream.PublishOpt{jetstream.WithExpectLastSequence(c.seq)}
	if c.id != "" {
		opts = append(opts, jetstream.WithExpectLastMsgID(c.id))
	}
	c.seq++
	c.id = id
	return opts, c.seq
}

// errCodeWrongLastMsgID is JetStream's "wrong last msg ID" (nats.go has
// no constant for it).
const errCodeWrongLastMsgID jetstream.ErrorCode = 10070

// fenceErr turns a refused chained write into bus.ErrFenced.
func fenceErr(err error) error {
	var ae *jetstream.APIError
	if errors.As(err, &ae) && (ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant || ae.ErrorCode == errCodeWrongLastMsgID) {
		return fmt.Errorf("%w: %v", bus.ErrFenced, err)
	}
	return err
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

// chainPrefix starts the Nats-Msg-Id of every chained view write: a write
// with another term's prefix at the end of a bucket is another holder's.
const chainPrefix = "lbv-"

// tip reads where model i's bucket stream ends: its last sequence and that
// message's id, from the stream's leader.
func (r *Runner) tip(ctx context.Context, i int) (uint64, string, error) {
	m := r.models[i]
	stream := "KV_" + Bucket(m)
	state, err := bus.State(ctx, r.js, stream)
	if err != nil || state.LastSeq == 0 {
		return 0, "", err
	}
	last, err := bus.LastMsg(ctx, r.js, stream, "$KV."+Bucket(m)+".>")
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return state.LastSeq, "", nil
	}
	if err != nil {
		return 0, "", err
	}
	if last.Sequence != state.LastSeq {
		// Written between the two reads: the first chained write fails
		// and the chain is read again.
		return state.LastSeq, "", nil
	}
	return state.LastSeq, last.Header.Get(nats.MsgIdHdr), nil
}

// rechain reads again where each bucket of batch b ends after a refused
// write: another term's write there fences this term off (bus.ErrFenced);
// anything else (a write from outside licensebus) is chained onto.
func (r *Runner) rechain(ctx context.Context, b batch) error {
	seen := map[int]bool{}
	for _, msg := range b.msgs {
		i, _ := r.modelOf(msg.Subject)
		if i < 0 || seen[i] {
			continue
		}
		seen[i] = true
		seq, id, err := r.tip(ctx, i)
		if err != nil {
			return err
		}
		c := &r.chains[i]
		if strings.HasPrefix(id, chainPrefix) && !strings.HasPrefix(id, c.pre) {
			return fmt.Errorf("projections: %w: %s ends with write %s of another holder", bus.ErrFenced, Bucket(r.models[i]), id)
		}
		c.seq, c.id = seq, id
	}
	return nil
}

// takeOver is the first batch of a term: every change not known to be in
// the buckets, then each model's checkpoint at last, each bucket's writes
// chained from where its stream ends now. Those writes move the streams,
// so a writer before this one, if it is only paused, is fenced off.
func (r *Runner) takeOver(ctx context.Context, last uint64) (batch, error) {
	b := batch{last: last, chains: make([]chain, len(r.models))}
	pre := chainPrefix + nuid.Next() + "-"
	for i, m := range r.models {
		seq, id, err := r.tip(ctx, i)
		if err != nil {
			return batch{}, fmt.Errorf("projection %s: %w", m.Name(), err)
		}
		b.chains[i] = chain{seq: seq, id: id, pre: pre}
	}
	r.pmu.Lock()
	defer r.pmu.Unlock()
	for i, m := range r.models {
		subjects := make([]string, 0, len(r.pending[i]))
		for subj := range r.pending[i] {
			subjects = append(subjects, subj)
		}
		slices.Sort(subjects)
		for _, subj := range subjects {
			e := r.pending[i][subj]
			msg := &nats.Msg{Subject: subj, Data: e.data}
			if e.del {
				msg.Header = nats.Header{"KV-Operation": []string{"DEL"}}
			}
			b.msgs = append(b.msgs, msg)
		}
		if r.replaying[i] {
			continue // mid-replay: its checkpoint comes once it is at the head
		}
		b.msgs = append(b.msgs, &nats.Msg{Subject: "$KV." + Bucket(m) + "." + CheckpointKey, Data: []byte(strconv.FormatUint(last, 10))})
		b.models = append(b.models, i)
	}
	return b, nil
}

// publishChained writes one message in the current term, outside a batch
// (a rebuild's checkpoint reset).
func (r *Runner) publishChained(ctx context.Context, msg *nats.Msg) (*jetstream.PubAck, error) {
	i, _ := r.modelOf(msg.Subject)
	for attempt := 1; ; attempt++ {
		opts, want := r.chains[i].next(msg)
		ack, err := r.js.PublishMsg(ctx, msg, opts...)
		if err == nil && (ack.Sequence != want || ack.Duplicate) {
			err = fmt.Errorf("%w: %s stored at %d, expected %d", bus.ErrFenced, msg.Subject, ack.Sequence, want)
		}
		if err == nil {
			return ack, nil
		}
		if err = fenceErr(err); !errors.Is(err, bus.ErrFenced) || attempt == 3 {
			return nil, err
		}
		if err := r.rechain(ctx, batch{msgs: []*nats.Msg{msg}}); err != nil {
			return nil, err
		}
	}
}

// openBuckets creates the models' buckets, or opens them as they are
// (CreateOrUpdateKeyValue would set an existing bucket's replicas back to
// one); an elected runner's buckets get ViewDedupeWindow.
func (r *Runner) openBuckets(ctx context.Context) error {
	for _, m := range r.models {
		_, err := bus.OpenBucket(ctx, r.js, jetstream.KeyValueConfig{
			Bucket: Bucket(m), Description: "licensebus read model " + m.Name(), History: 1, Storage: jetstream.FileStorage,
		})
		if err != nil {
			return fmt.Errorf("projection %s: bucket: %w", m.Name(), err)
		}
		if r.elect == nil {
			continue
		}
		s, err := r.js.Stream(ctx, "KV_"+Bucket(m))
		if err != nil {
			return fmt.Errorf("projection %s: bucket: %w", m.Name(), err)
		}
		if cfg := s.CachedInfo().Config; cfg.Duplicates != ViewDedupeWindow {
			cfg.Duplicates = ViewDedupeWindow
			if _, err := r.js.UpdateStream(ctx, cfg); err != nil {
				return fmt.Errorf("projection %s: bucket dedupe window: %w", m.Name(), err)
			}
		}
	}
	return nil
}
