package projections

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/licensebus/licensebus/internal/bus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// fence is what an elected runner's writes expect, per model: each key's
// revision (its write is an expected-last-subject-sequence publish, a KV
// update by revision), and for the checkpoint also the bucket stream's
// last sequence, so that a checkpoint is stored only after every entry
// written before it in its batch. The next holder's first act stores
// every checkpoint again by revision: a former holder that was only paused
// finds its next checkpoint refused, and every entry the new holder has
// written since — it cannot write over them. All these expectations are
// checked by the stream's leader before it proposes the write; a
// Nats-Expected-Last-Msg-Id is checked only when a replica applies it, and
// on nats-server 2.15.2 an R3 stream that refuses one there stops taking
// writes, so the fence uses none.
type fence struct {
	// revs is, per model, each subject's last sequence (absent: none),
	// keyed by the subject's 64-bit hash (keyHash): a fleet's views hold a
	// million keys, and the subjects themselves took three times the
	// memory. Two subjects sharing a hash (odds about 1 in 2^64 per pair)
	// would only see a write refused, read again and retried.
	revs  []map[uint64]uint64
	tips  []uint64 // per model: the bucket stream's last sequence
	check func(context.Context) error
}

// wrongLastSeq recognises a failed expectation: 10071 on one replica,
// 10164 on replicated streams.
func wrongLastSeq(err error) bool {
	var ae *jetstream.APIError
	return errors.As(err, &ae) && (ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// publishFenced writes msgs pipelined with the fence's expectations. A
// write refused by them is checked against the lease: another holder means
// bus.ErrFenced; if this process still holds the job, something outside
// licensebus wrote there (an operator's kv put), and the refused writes
// are tried again on what the bucket holds now.
func (r *Runner) publishFenced(ctx context.Context, msgs []*nats.Msg) error {
	f := r.fence
	todo := msgs
	for attempt := 1; ; attempt++ {
		failed, err := r.sendFenced(ctx, todo)
		if err != nil || len(failed) == 0 {
			return err
		}
		if err := f.check(ctx); err != nil {
			return fmt.Errorf("projections: %d writes refused: %w", len(failed), err)
		}
		if attempt == 3 {
			return fmt.Errorf("projections: %d writes refused %d times while this process holds the job", len(failed), attempt)
		}
		for _, msg := range failed {
			i, _ := r.modelOf(msg.Subject)
			stream := "KV_" + Bucket(r.models[i])
			last, err := bus.LastMsg(ctx, r.js, stream, msg.Subject)
			switch {
			case errors.Is(err, jetstream.ErrMsgNotFound):
				delete(f.revs[i], r.keyHash(msg.Subject))
			case err != nil:
				return err
			default:
				f.revs[i][r.keyHash(msg.Subject)] = last.Sequence
			}
			state, err := bus.State(ctx, r.js, stream)
			if err != nil {
				return err
			}
			f.tips[i] = state.LastSeq
		}
		todo = failed
	}
}

// sendFenced sends msgs once, writeWindow at a time, and returns those
// the expectations refused.
func (r *Runner) sendFenced(ctx context.Context, msgs []*nats.Msg) ([]*nats.Msg, error) {
	f := r.fence
	type sent struct {
		msg *nats.Msg
		i   int
		fut jetstream.PubAckFuture
	}
	// A checkpoint expects the stream's last sequence as it was when the
	// call began plus the writes of this call ahead of it, whatever acks
	// came back meanwhile.
	tips := slices.Clone(f.tips)
	before := make([]uint64, len(r.models)) // writes of this call ahead, per model
	var failed []*nats.Msg
	var first error
	for len(msgs) > 0 {
		n := min(len(msgs), writeWindow)
		futures := make([]sent, 0, n)
		for _, msg := range msgs[:n] {
			i, key := r.modelOf(msg.Subject)
			opts := []jetstream.PublishOpt{jetstream.WithExpectLastSequencePerSubject(f.revs[i][r.keyHash(msg.Subject)])}
			if key == CheckpointKey {
				opts = append(opts, jetstream.WithExpectLastSequence(tips[i]+before[i]))
			}
			before[i]++
			fut, err := r.js.PublishMsgAsync(msg, opts...)
			if err != nil {
				return nil, fmt.Errorf("projections: write %s: %w", msg.Subject, err)
			}
			futures = append(futures, sent{msg, i, fut})
		}
		msgs = msgs[n:]
		for _, s := range futures {
			select {
			case ack := <-s.fut.Ok():
				r.noteWrite(ack)
				f.revs[s.i][r.keyHash(s.msg.Subject)] = ack.Sequence
				f.tips[s.i] = max(f.tips[s.i], ack.Sequence)
			case err := <-s.fut.Err():
				if wrongLastSeq(err) {
					failed = append(failed, s.msg)
				} else if first == nil {
					first = fmt.Errorf("projections: write %s: %w", s.msg.Subject, err)
				}
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	return failed, first
}

// loadFence reads what model i's bucket holds: every key's revision (a
// headers-only read of each key's last message), the stream's last
// sequence, and the checkpoint as stored.
func (r *Runner) loadFence(ctx context.Context, f *fence, i int) ([]byte, error) {
	m := r.models[i]
	stream := "KV_" + Bucket(m)
	revs := map[uint64]uint64{}
	state, err := bus.State(ctx, r.js, stream)
	if err != nil {
		return nil, err
	}
	if state.Msgs > 0 {
		err := bus.ReadLastPerSubject(ctx, r.js, stream, true, func(msg jetstream.Msg) error {
			if md, err := msg.Metadata(); err == nil {
				revs[r.keyHash(msg.Subject())] = md.Sequence.Stream
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	// The stream's last sequence after the read: a write in between only
	// makes the first checkpoint fail and be read again.
	if state, err = bus.State(ctx, r.js, stream); err != nil {
		return nil, err
	}
	f.revs[i], f.tips[i] = revs, state.LastSeq
	ck := []byte("0")
	last, err := bus.LastMsg(ctx, r.js, stream, "$KV."+Bucket(m)+"."+CheckpointKey)
	switch {
	case err == nil && len(last.Data) > 0:
		ck = last.Data
		revs[r.keyHash(last.Subject)] = last.Sequence
	case err != nil && !errors.Is(err, jetstream.ErrMsgNotFound):
		return nil, err
	}
	return ck, nil
}

// takeOver starts a term: it reads the buckets' revisions, stores every
// checkpoint again as it is — by revision, so that a former holder is
// fenced off before this one writes anything else — and returns the
// term's first batch: every change not known to be in the buckets, then
// each model's checkpoint at last (but for a model still replaying: its
// checkpoint comes once it reaches the head).
func (r *Runner) takeOver(ctx context.Context, last uint64, check func(context.Context) error) (batch, error) {
	f := &fence{revs: make([]map[uint64]uint64, len(r.models)), tips: make([]uint64, len(r.models)), check: check}
	markers := make([]*nats.Msg, len(r.models))
	for i, m := range r.models {
		ck, err := r.loadFence(ctx, f, i)
		if err != nil {
			return batch{}, fmt.Errorf("projection %s: take over: %w", m.Name(), err)
		}
		markers[i] = &nats.Msg{Subject: "$KV." + Bucket(m) + "." + CheckpointKey, Data: ck}
	}
	r.fence = f
	if err := r.publishFenced(ctx, markers); err != nil {
		return batch{}, err
	}
	b := batch{last: last, fence: f}
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
			continue
		}
		b.msgs = append(b.msgs, &nats.Msg{Subject: "$KV." + Bucket(m) + "." + CheckpointKey, Data: []byte(strconv.FormatUint(last, 10))})
		b.models = append(b.models, i)
	}
	return b, nil
}
