package audit

import (
	"context"
	"errors"
	"fmt"
	"time"

	trail "github.com/licensebus/licensebus/events/audit"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// writer appends sealed entries with pipelined expected-last-sequence
// publishes: each append expects the audit stream to end where the one
// before it left it, so no other writer can slip in between.
type writer struct {
	js      jetstream.JetStream
	max     int
	tip     tip    // after the last append sent
	acked   uint64 // seq of the last entry known stored
	chained bool   // the last message of the stream is (to be) this writer's
	pending []sent
	// replicated streams get one append at a time, each expecting the
	// last sequence only: an R3 stream on nats-server 2.15.2 that refuses
	// a Nats-Expected-Last-Msg-Id (checked as a replica applies it) takes
	// no writes afterwards, and without that check only an append that
	// knows where the one before it landed cannot land after a gap.
	replicated bool
	// head is the last entry known stored, what a checkpoint signs;
	// stored, if set, hears of each entry stored.
	head   head
	stored func(seq uint64, hash string)
	// Reused for every entry: the writer derives and seals one at a time.
	sealer  trail.Sealer
	scratch scratch
}

type sent struct {
	seq, streamSeq uint64
	f              jetstream.PubAckFuture
	hash           string
	cursor         trail.Cursor
	src            trail.SourceRef
}

// head is the newest stored entry and, per source stream, the last source
// message the trail recorded.
type head struct {
	seq    uint64
	hash   string
	cursor trail.Cursor
	srcs   [2]trail.SourceRef // commands, events
}

// srcIndex is the position of stream in head.srcs.
func srcIndex(stream string) int {
	if stream == trail.CommandsStream {
		return srcCommands
	}
	return srcEvents
}

func (w *writer) append(ctx context.Context, m *SourceMsg) error {
	e := derive(*m, &w.scratch)
	e.Seq = w.tip.seq + 1
	e.Cursor = w.tip.cursor.Advance(m.Stream, m.Seq)
	raw, err := w.sealer.Seal(&e, w.tip.hash)
	if err != nil {
		return err
	}
	msg := &nats.Msg{Subject: trail.Subject, Data: raw, Header: nats.Header{nats.MsgIdHdr: []string{e.Hash}}}
	opts := []jetstream.PublishOpt{jetstream.WithExpectLastSequence(w.tip.streamLast)}
	if w.chained && !w.replicated {
		// Pipelined appends: each also expects the one before it to be the
		// last message, so once one fails every later one fails too — a
		// stranger's message must not let the rest of the pipeline land
		// after a gap.
		opts = append(opts, jetstream.WithExpectLastMsgID(w.tip.hash))
	}
	f, err := w.js.PublishMsgAsync(msg, opts...)
	if err != nil {
		return fmt.Errorf("append audit entry %d: %w", e.Seq, err)
	}
	w.tip = tip{seq: e.Seq, hash: e.Hash, cursor: e.Cursor, streamLast: w.tip.streamLast + 1}
	w.chained = true
	w.pending = append(w.pending, sent{seq: e.Seq, streamSeq: w.tip.streamLast, f: f, hash: e.Hash, cursor: e.Cursor,
		src: trail.SourceRef{Stream: e.Stream, Seq: e.StreamSeq, MessageSHA256: e.MessageSHA256}})
	if w.replicated {
		return w.drain(ctx)
	}
	if len(w.pending) >= w.max {
		return w.settle(ctx, len(w.pending)/2)
	}
	return nil
}

// drain waits for every append in flight.
func (w *writer) drain(ctx context.Context) error { return w.settle(ctx, len(w.pending)) }

// settle waits for the oldest n appends. On the first failure it still
// waits for the rest (they fail too, as each expected the one before).
func (w *writer) settle(ctx context.Context, n int) error {
	var first error
	for range n {
		p := w.pending[0]
		w.pending = w.pending[1:]
		err := waitAck(ctx, p)
		if err == nil && first == nil {
			w.acked = p.seq
			w.head.seq, w.head.hash, w.head.cursor = p.seq, p.hash, p.cursor
			w.head.srcs[srcIndex(p.src.Stream)] = p.src
			if w.stored != nil {
				w.stored(p.seq, p.hash)
			}
		}
		if err != nil && first == nil {
			first = err
		}
	}
	return first
}

// errCodeWrongLastMsgID is JetStream's "wrong last msg ID" (nats.go has
// no constant for it).
const errCodeWrongLastMsgID jetstream.ErrorCode = 10070

// ackWait is how long an append waits for its ack before the writer
// counts it as failed.
const ackWait = 10 * time.Second

func waitAck(ctx context.Context, p sent) error {
	t := time.NewTimer(ackWait)
	defer t.Stop()
	select {
	case ack := <-p.f.Ok():
		if ack.Duplicate || ack.Sequence != p.streamSeq {
			return fmt.Errorf("%w: entry %d stored at %d, expected %d", errConflict, p.seq, ack.Sequence, p.streamSeq)
		}
		return nil
	case err := <-p.f.Err():
		var ae *jetstream.APIError
		if errors.As(err, &ae) && (ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant || ae.ErrorCode == errCodeWrongLastMsgID) {
			return fmt.Errorf("%w: entry %d: %v", errConflict, p.seq, err)
		}
		return fmt.Errorf("append audit entry %d: %w", p.seq, err)
	case <-t.C:
		return fmt.Errorf("append audit entry %d: no ack", p.seq)
	case <-ctx.Done():
		return ctx.Err()
	}
}
