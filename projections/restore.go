package projections

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/nats-io/nats.go/jetstream"
)

// restore loads every model from its bucket.
func (r *Runner) restore(ctx context.Context) error {
	stream, err := bus.State(ctx, r.js, events.EventsStream)
	if err != nil {
		return fmt.Errorf("projections: %w", err)
	}
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
		r.checkPosition(m, stream, ck)
	}
	return nil
}

// checkPosition reports a model whose checkpoint ck is out of step with
// the event stream (deleted and created again under it, or events removed
// before they were applied): its entries describe events the stream no
// longer holds, and the events that now take their sequences are skipped.
// Only a rebuild mends that; until one, Problems says so.
func (r *Runner) checkPosition(m Model, state jetstream.StreamState, ck uint64) {
	p := bus.PositionProblem(events.EventsStream, state, ck)
	if p == "" {
		return
	}
	r.log.Error().Str("model", m.Name()).Uint64("checkpoint", ck).Str("problem", p).
		Msg("projection checkpoint is not in step with the event stream; rebuild the projections")
	r.mu.Lock()
	r.problems = append(r.problems, fmt.Sprintf("projection %s at checkpoint %d: %s", m.Name(), ck, p))
	r.mu.Unlock()
}

// Problems lists the checkpoints found out of step with the event stream
// when the runner started; a rebuild clears them.
func (r *Runner) Problems() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.problems)
}

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
	prefix := len("$KV." + Bucket(m) + ".")
	var ck uint64
	var ferr error
	err = bus.ReadLastPerSubject(ctx, r.js, stream, false, func(msg jetstream.Msg) error {
		key := msg.Subject()[prefix:]
		if op := msg.Headers().Get("KV-Operation"); op != "" {
			return nil
		}
		if key == CheckpointKey {
			ck, _ = strconv.ParseUint(string(msg.Data()), 10, 64)
			return nil
		}
		r.stored[i][key] = r.hash(msg.Data()) | r.mark[i]
		if !restore {
			return nil
		}
		if err := m.Restore(key, msg.Data()); err != nil && ferr == nil {
			ferr = fmt.Errorf("key %s: %w", key, err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	m.Changes() // restored entries are not changes
	if rs, ok := m.(Restorer); ok && restore {
		rs.Restored()
	}
	return ck, ferr
}
