package audit

import (
	"context"
	"errors"
	"fmt"

	"github.com/licensebus/licensebus/events"
	trail "github.com/licensebus/licensebus/events/audit"
	"github.com/nats-io/nats.go/jetstream"
)

// maxStrangers bounds how far back the auditor looks for a genuine entry
// past messages it did not write.
const maxStrangers = 1000

// findTip returns the last genuine entry of the audit stream: its hash
// matches its content, it records its source message faithfully, and it
// continues the entry before it. Messages after it are strangers: logged,
// never chained to.
func (a *Auditor) findTip(ctx context.Context, str jetstream.Stream) (tip, error) {
	info, err := str.Info(ctx)
	if err != nil {
		return tip{}, fmt.Errorf("audit stream info: %w", err)
	}
	last := info.State.LastSeq
	for s := last; s >= 1; s-- {
		if last-s >= maxStrangers {
			return tip{}, fmt.Errorf("%w: no genuine entry in the last %d messages of %s; run `licensebus audit verify`", errFailClosed, maxStrangers, trail.Stream)
		}
		raw, err := str.GetMsg(ctx, s)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return tip{}, fmt.Errorf("audit stream seq %d: %w", s, err)
		}
		e, why, err := a.genuine(ctx, str, raw.Data, s)
		if err != nil {
			return tip{}, err
		}
		if why == "" {
			return tip{seq: e.Seq, hash: e.Hash, cursor: e.Cursor, streamLast: last,
				src: trail.SourceRef{Stream: e.Stream, Seq: e.StreamSeq, MessageSHA256: e.MessageSHA256}}, nil
		}
		a.log.Error().Uint64("stream_seq", s).Str("problem", why).
			Msg("audit stream holds a message that is not a genuine entry (tampering?); it is not chained to")
	}
	return tip{hash: trail.GenesisHash, streamLast: last}, nil
}

// genuine checks the message at audit stream sequence s. why is empty when
// it is a genuine entry; err is for failures to read.
func (a *Auditor) genuine(ctx context.Context, str jetstream.Stream, raw []byte, s uint64) (*trail.Entry, string, error) {
	e, ok, err := trail.Open(raw)
	if err != nil {
		return nil, err.Error(), nil
	}
	if !ok {
		return nil, "its hash does not match its content", nil
	}
	why, err := a.faithful(ctx, e, raw)
	if err != nil || why != "" {
		return nil, why, err
	}
	pred := &trail.Entry{Hash: trail.GenesisHash}
	if e.Seq > 1 {
		pred = nil
		for p := s - 1; p >= 1 && s-p <= maxStrangers; p-- {
			praw, err := str.GetMsg(ctx, p)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				continue
			}
			if err != nil {
				return nil, "", fmt.Errorf("audit stream seq %d: %w", p, err)
			}
			if pe, ok, _ := trail.Open(praw.Data); ok && pe.Hash == e.PrevHash {
				pred = pe
				break
			}
		}
	}
	if why := continues(pred, e); why != "" {
		return nil, why, nil
	}
	return e, "", nil
}

// continues says why e is not the next entry after pred ("" if it is).
func continues(pred, e *trail.Entry) string {
	switch {
	case pred == nil:
		return "the entry its prev_hash names is not in the audit stream"
	case e.PrevHash != pred.Hash:
		return "its prev_hash is not the hash of the entry before it"
	case e.Seq != pred.Seq+1:
		return fmt.Sprintf("seq %d does not follow seq %d", e.Seq, pred.Seq)
	case e.StreamSeq <= pred.Cursor.Of(e.Stream) || pred.Cursor.Advance(e.Stream, e.StreamSeq) != e.Cursor:
		return fmt.Sprintf("its cursor %+v is not the cursor %+v advanced to %s seq %d", e.Cursor, pred.Cursor, e.Stream, e.StreamSeq)
	}
	return ""
}

// faithful says why e does not record its source message ("" if it does,
// or if the source message is gone and cannot be compared).
func (a *Auditor) faithful(ctx context.Context, e *trail.Entry, raw []byte) (string, error) {
	if e.Stream != events.CommandsStream && e.Stream != events.EventsStream {
		return fmt.Sprintf("unknown source stream %q", e.Stream), nil
	}
	src, err := a.cfg.JS.Stream(ctx, e.Stream)
	if err != nil {
		return "", err
	}
	m, err := src.GetMsg(ctx, e.StreamSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		info, err := src.Info(ctx)
		if err != nil {
			return "", err
		}
		if e.StreamSeq > info.State.LastSeq {
			return fmt.Sprintf("it records %s seq %d, which the stream has never held", e.Stream, e.StreamSeq), nil
		}
		a.log.Warn().Str("stream", e.Stream).Uint64("stream_seq", e.StreamSeq).Msg("source message of the trail head is gone; cannot compare")
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("source %s seq %d: %w", e.Stream, e.StreamSeq, err)
	}
	return mismatch(e, raw, SourceMsg{Stream: e.Stream, Seq: m.Sequence, Subject: m.Subject, Time: m.Time, Header: m.Header, Data: m.Data}), nil
}

// mismatch says how raw (entry e) differs from the entry src yields at e's
// place in the chain ("" if it does not).
func mismatch(e *trail.Entry, raw []byte, src SourceMsg) string {
	want := Derive(src)
	want.Seq, want.Cursor = e.Seq, e.Cursor
	wraw, err := trail.Seal(&want, e.PrevHash)
	if err != nil {
		return err.Error()
	}
	if string(wraw) != string(raw) {
		return fmt.Sprintf("it does not record %s seq %d as it is", src.Stream, src.Seq)
	}
	return ""
}
