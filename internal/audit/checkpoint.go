package audit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	trail "github.com/licensebus/licensebus/events/audit"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/segmentio/encoding/json"
)

// Default checkpoint cadence: a signed head every CheckpointEvery entries
// or CheckpointInterval, whichever comes first, while the trail moves. An
// entry after the last checkpoint is protected by the chain alone, so the
// interval bounds how long a change to a quiet trail's newest entries goes
// unseen; the count keeps a busy trail's window a few seconds long.
const (
	CheckpointEvery    = 100_000
	CheckpointInterval = 10 * time.Second
)

// CheckpointStreamConfig is the checkpoint stream: file storage, deny
// delete and purge, apart from the trail so that whoever rewrites the
// trail cannot rewrite its checkpoints with it (and cannot sign new ones).
func CheckpointStreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        trail.CheckpointStream,
		Description: "licensebus audit checkpoints: the trail's head, signed with the cloud's key",
		Subjects:    []string{trail.CheckpointSubject},
		Storage:     jetstream.FileStorage,
		Duplicates:  DedupeWindow,
		AllowDirect: true,
		DenyDelete:  true,
		DenyPurge:   true,
	}
}

// EnsureCheckpointStream creates the checkpoint stream if it does not
// exist; like the trail's, it is never updated by a process starting.
func EnsureCheckpointStream(ctx context.Context, js jetstream.JetStream) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, trail.CheckpointStream)
	if err == nil {
		return s, nil
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("checkpoint stream: %w", err)
	}
	s, err = js.CreateStream(ctx, CheckpointStreamConfig())
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		s, err = js.Stream(ctx, trail.CheckpointStream)
	}
	if err != nil {
		return nil, fmt.Errorf("create checkpoint stream: %w", err)
	}
	return s, nil
}

// StoredCheckpoint is a message of the checkpoint stream.
type StoredCheckpoint struct {
	StreamSeq  uint64
	Checkpoint *trail.Checkpoint // nil when the message is not a checkpoint
	Raw        []byte
}

// ReadCheckpoints reads the checkpoint stream in order; none when it does
// not exist.
func ReadCheckpoints(ctx context.Context, js jetstream.JetStream) ([]StoredCheckpoint, error) {
	str, err := js.Stream(ctx, trail.CheckpointStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint stream: %w", err)
	}
	info, err := str.Info(ctx)
	if err != nil || info.State.Msgs == 0 {
		return nil, err
	}
	cons, err := js.OrderedConsumer(ctx, trail.CheckpointStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, fmt.Errorf("checkpoint stream: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(512))
	if err != nil {
		return nil, fmt.Errorf("checkpoint stream: %w", err)
	}
	defer it.Stop()
	var out []StoredCheckpoint
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return nil, fmt.Errorf("checkpoint stream: %w", err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return nil, err
		}
		sc := StoredCheckpoint{StreamSeq: md.Sequence.Stream, Raw: msg.Data()}
		var c trail.Checkpoint
		if json.Unmarshal(sc.Raw, &c) == nil && c.Seq > 0 && c.Hash != "" {
			sc.Checkpoint = &c
		}
		out = append(out, sc)
		if md.NumPending == 0 || md.Sequence.Stream >= info.State.LastSeq {
			return out, nil
		}
	}
}

// Key is what a checkpoint's signature is checked with: the public key of
// a key id, and when it was revoked ("" if not); ok is false for a key
// nobody published.
type Key func(id string) (pub ed25519.PublicKey, revokedAt string, ok bool)

// CheckSignatures keeps the checkpoints signed by a published key (one
// revoked later counts for what it signed before). A message that is not
// such a checkpoint is a problem: someone put it there.
func CheckSignatures(stored []StoredCheckpoint, key Key) (good []trail.Checkpoint, probs []trail.Problem) {
	for _, s := range stored {
		where := fmt.Sprintf("%s seq %d", trail.CheckpointStream, s.StreamSeq)
		c := s.Checkpoint
		if c == nil {
			probs = append(probs, trail.Problem{Kind: trail.Inserted, Where: where, Detail: "not a checkpoint"})
			continue
		}
		pub, revokedAt, ok := key(c.KeyID)
		switch {
		case !ok:
			probs = append(probs, trail.Problem{Kind: trail.Inserted, Seq: c.Seq, Where: where, Detail: fmt.Sprintf("signed by key %s, which the cloud never published", c.KeyID)})
		case revokedAt != "" && c.Time >= revokedAt:
			probs = append(probs, trail.Problem{Kind: trail.Inserted, Seq: c.Seq, Where: where, Detail: fmt.Sprintf("signed by key %s after it was revoked at %s", c.KeyID, revokedAt)})
		case c.Verify(pub) != nil:
			probs = append(probs, trail.Problem{Kind: trail.Inserted, Seq: c.Seq, Where: where, Detail: fmt.Sprintf("its signature does not verify under key %s", c.KeyID)})
		default:
			good = append(good, *c)
		}
	}
	return good, probs
}

// Latest is the checkpoint of the highest seq (nil for none): what a live
// trail is held against, as a rewrite of any entry up to it changes its
// hash too.
func Latest(cps []trail.Checkpoint) []trail.Checkpoint {
	var best *trail.Checkpoint
	for i := range cps {
		if best == nil || cps[i].Seq > best.Seq {
			best = &cps[i]
		}
	}
	if best == nil {
		return nil
	}
	return []trail.Checkpoint{*best}
}

// CheckSources finds the source messages checkpoint c names gone from
// their streams, or other messages in their place: what a lost write (or
// a source deleted and created again) leaves behind.
func CheckSources(ctx context.Context, js jetstream.JetStream, c trail.Checkpoint) ([]trail.Problem, error) {
	var probs []trail.Problem
	where := fmt.Sprintf("checkpoint of seq %d", c.Seq)
	check := func(stream string, seq uint64, sha string) error {
		if seq == 0 {
			return nil
		}
		str, err := js.Stream(ctx, stream)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			probs = append(probs, trail.Problem{Kind: trail.SourceMissing, Seq: c.Seq, Where: where, Detail: fmt.Sprintf("stream %s, which holds seq %d it names, is gone", stream, seq)})
			return nil
		}
		if err != nil {
			return err
		}
		m, err := str.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			probs = append(probs, trail.Problem{Kind: trail.SourceMissing, Seq: c.Seq, Where: where, Detail: fmt.Sprintf("%s seq %d, which it names, is no longer in the stream", stream, seq)})
			return nil
		}
		if err != nil {
			return err
		}
		if sha != "" && digest(m.Header, m.Data) != sha {
			probs = append(probs, trail.Problem{Kind: trail.SourceMissing, Seq: c.Seq, Where: where, Detail: fmt.Sprintf("%s seq %d is another message than the one it names", stream, seq)})
		}
		return nil
	}
	named := map[string]bool{}
	for _, s := range c.Sources {
		named[s.Stream] = true
		if err := check(s.Stream, s.Seq, s.MessageSHA256); err != nil {
			return nil, err
		}
	}
	for _, stream := range []string{trail.CommandsStream, trail.EventsStream} {
		if !named[stream] {
			if err := check(stream, c.Cursor.Of(stream), ""); err != nil {
				return nil, err
			}
		}
	}
	return probs, nil
}

// checkpointer signs the trail's head and stores it on the checkpoint
// stream, never below the last one stored.
type checkpointer struct {
	a    *Auditor
	last trail.Checkpoint // the last stored (Seq 0: none)
	at   time.Time        // when the last was stored, or the follow began
	// off: the trail does not continue the last checkpoint (cut, or
	// rewritten): signing its head would bless that.
	off bool
}

// newCheckpointer reads the last checkpoint and holds the trail's tip t
// against it.
func (a *Auditor) newCheckpointer(ctx context.Context, str jetstream.Stream, t tip) (*checkpointer, error) {
	cp := &checkpointer{a: a, at: time.Now()}
	if a.cfg.Key == nil {
		cp.off = true
		return cp, nil
	}
	cs, err := EnsureCheckpointStream(ctx, a.cfg.JS)
	if err != nil {
		return nil, err
	}
	m, err := cs.GetLastMsgForSubject(ctx, trail.CheckpointSubject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return cp, nil
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint stream: %w", err)
	}
	if err := json.Unmarshal(m.Data, &cp.last); err != nil {
		return nil, fmt.Errorf("last checkpoint: %w", err)
	}
	switch {
	case t.seq < cp.last.Seq:
		a.log.Error().Uint64("seq", t.seq).Uint64("checkpoint_seq", cp.last.Seq).
			Msg("the audit trail ends before its last checkpoint: entries were cut off; no new checkpoints until it passes it (run `licensebus audit verify`)")
	case t.seq == cp.last.Seq && t.hash != cp.last.Hash:
		cp.off = true
	case t.seq > cp.last.Seq:
		// Without strangers an entry sits at its own seq on the stream.
		if raw, err := str.GetMsg(ctx, cp.last.Seq); err == nil {
			if e, ok, _ := trail.Open(raw.Data); ok && e.Seq == cp.last.Seq && e.Hash != cp.last.Hash {
				cp.off = true
			}
		}
	}
	if cp.off {
		a.log.Error().Uint64("checkpoint_seq", cp.last.Seq).
			Msg("the audit trail differs from its last checkpoint (rewritten?); no new checkpoints are signed (run `licensebus audit verify`)")
	}
	return cp, nil
}

// passed checks an entry the writer stored against the last checkpoint.
func (cp *checkpointer) passed(seq uint64, hash string) {
	if seq == cp.last.Seq && hash != cp.last.Hash && !cp.off {
		cp.off = true
		cp.a.log.Error().Uint64("checkpoint_seq", seq).
			Msg("the audit trail grew again past its last checkpoint with another entry there; no new checkpoints are signed (run `licensebus audit verify`)")
	}
}

// maybe stores a checkpoint of the writer's head if one is due: force (at
// a stop), or every Every entries, or after Interval.
func (cp *checkpointer) maybe(ctx context.Context, w *writer, force bool) error {
	h := w.head
	if cp.off || h.seq <= cp.last.Seq {
		return nil
	}
	cfg := cp.a.cfg
	if !force && h.seq-cp.last.Seq < uint64(cfg.CheckpointEvery) && time.Since(cp.at) < cfg.CheckpointInterval {
		return nil
	}
	c := trail.Checkpoint{Seq: h.seq, Hash: h.hash, Cursor: h.cursor, Time: time.Now().UTC().Format(time.RFC3339Nano)}
	for _, s := range h.srcs {
		if s.Seq > 0 {
			c.Sources = append(c.Sources, s)
		}
	}
	if c.Sources == nil {
		c.Sources = []trail.SourceRef{}
	}
	key := cfg.Key()
	if err := c.Sign(key.ID, key.Signer); err != nil {
		return err
	}
	raw, err := json.Marshal(&c)
	if err != nil {
		return err
	}
	if raw, err = trail.Canonical(raw); err != nil {
		return err
	}
	msg := &nats.Msg{Subject: trail.CheckpointSubject, Data: raw, Header: nats.Header{nats.MsgIdHdr: []string{"checkpoint-" + c.Hash}}}
	if _, err := cfg.JS.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("store checkpoint of seq %d: %w", c.Seq, err)
	}
	cp.last, cp.at = c, time.Now()
	cp.a.log.Debug().Uint64("seq", c.Seq).Msg("audit checkpoint signed")
	return nil
}

// nextDue is how long until a checkpoint of w's head is due by time: an
// hour (in effect never) when there is nothing new to sign.
func (cp *checkpointer) nextDue(w *writer) time.Duration {
	if cp.off || w.head.seq <= cp.last.Seq {
		return time.Hour
	}
	return max(time.Until(cp.at.Add(cp.a.cfg.CheckpointInterval)), 10*time.Millisecond)
}
