package audit

import (
	"context"
	"fmt"

	"github.com/licensebus/licensebus/events"
	trail "github.com/licensebus/licensebus/events/audit"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/nats-io/nats.go/jetstream"
)

// SourceChecker compares the entries of the live trail with the source
// messages they record. It reads both source streams in order alongside
// the trail (in constant memory), so it also finds source messages the
// trail skipped and entries that record something the sources never held.
// Use it as a Verifier's Check.
type SourceChecker struct {
	ctx     context.Context
	js      jetstream.JetStream
	last    [2]uint64    // source last sequences when the check started
	cursor  trail.Cursor // of the last entry checked
	readers [2]*sourceReader
}

// NewSourceChecker snapshots the source streams. Take it after the trail's
// own snapshot, so every entry read records a message below it.
func NewSourceChecker(ctx context.Context, js jetstream.JetStream) (*SourceChecker, error) {
	c := &SourceChecker{ctx: ctx, js: js}
	for i, name := range []string{events.CommandsStream, events.EventsStream} {
		last, err := bus.LastSeq(ctx, js, name)
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", name, err)
		}
		c.last[i] = last
	}
	return c, nil
}

// Close stops the source readers.
func (c *SourceChecker) Close() {
	for _, r := range c.readers {
		if r != nil && r.it != nil {
			r.it.Stop()
		}
	}
}

// Unaudited returns how many messages of each source stream, as of the
// snapshot, come after the last entry checked: the auditor's lag, not a
// problem.
func (c *SourceChecker) Unaudited() trail.Cursor {
	return trail.Cursor{Commands: c.last[srcCommands] - min(c.last[srcCommands], c.cursor.Commands),
		Events: c.last[srcEvents] - min(c.last[srcEvents], c.cursor.Events)}
}

// Check implements Verifier.Check.
func (c *SourceChecker) Check(e *trail.Entry, raw []byte, where string) []trail.Problem {
	i := srcEvents
	switch e.Stream {
	case events.CommandsStream:
		i = srcCommands
	case events.EventsStream:
	default:
		return []trail.Problem{{Kind: trail.Inserted, Seq: e.Seq, Where: where, Detail: fmt.Sprintf("records a message of %q, which is not a source stream", e.Stream)}}
	}
	prev := c.cursor.Of(e.Stream)
	switch {
	case e.StreamSeq <= prev:
		return []trail.Problem{{Kind: trail.Inserted, Seq: e.Seq, Where: where, Detail: fmt.Sprintf("records %s seq %d again (the trail is past seq %d)", e.Stream, e.StreamSeq, prev)}}
	case e.StreamSeq > c.last[i]:
		return []trail.Problem{{Kind: trail.Inserted, Seq: e.Seq, Where: where, Detail: fmt.Sprintf("records %s seq %d, which the stream has never held", e.Stream, e.StreamSeq)}}
	}
	var probs []trail.Problem
	if want := c.cursor.Advance(e.Stream, e.StreamSeq); e.Cursor != want {
		probs = append(probs, trail.Problem{Kind: trail.Edited, Seq: e.Seq, Where: where, Detail: fmt.Sprintf("its cursor %+v should be %+v", e.Cursor, want)})
	}
	c.cursor = c.cursor.Advance(e.Stream, e.StreamSeq)
	r, err := c.reader(i, e.Stream, prev)
	if err != nil {
		return append(probs, trail.Problem{Kind: trail.SourceMissing, Seq: e.Seq, Where: where, Detail: fmt.Sprintf("cannot read %s: %v", e.Stream, err)})
	}
	for {
		m, err := r.peek(c.ctx)
		if err != nil {
			return append(probs, trail.Problem{Kind: trail.SourceMissing, Seq: e.Seq, Where: where, Detail: fmt.Sprintf("cannot read %s: %v", e.Stream, err)})
		}
		switch {
		case m == nil || m.Seq > e.StreamSeq:
			return append(probs, trail.Problem{Kind: trail.SourceMissing, Seq: e.Seq, Where: where, Detail: fmt.Sprintf("%s seq %d, which it records, is no longer in the stream", e.Stream, e.StreamSeq)})
		case m.Seq < e.StreamSeq:
			probs = append(probs, trail.Problem{Kind: trail.Dropped, Seq: e.Seq, Where: where, Detail: fmt.Sprintf("%s seq %d is not in the trail (it comes before this entry's seq %d)", e.Stream, m.Seq, e.StreamSeq)})
			r.head = nil
			continue
		}
		r.head = nil
		if why := mismatch(e, raw, *m); why != "" {
			probs = append(probs, trail.Problem{Kind: trail.Edited, Seq: e.Seq, Where: where, Detail: why})
		}
		return probs
	}
}

func (c *SourceChecker) reader(i int, stream string, after uint64) (*sourceReader, error) {
	if c.readers[i] != nil {
		return c.readers[i], nil
	}
	// A stream that holds nothing more up to the snapshot (purged, say)
	// would leave a consumer's Next waiting for ever.
	src, err := c.js.Stream(c.ctx, stream)
	if err != nil {
		return nil, err
	}
	gone, err := goneAfter(c.ctx, src, after, c.last[i])
	if err != nil {
		return nil, err
	}
	if gone {
		c.readers[i] = &sourceReader{stream: stream, last: c.last[i], done: true}
		return c.readers[i], nil
	}
	cfg := jetstream.OrderedConsumerConfig{}
	if after > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, after+1
	}
	cons, err := c.js.OrderedConsumer(c.ctx, stream, cfg)
	if err != nil {
		return nil, err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(1024))
	if err != nil {
		return nil, err
	}
	c.readers[i] = &sourceReader{stream: stream, it: it, last: c.last[i]}
	return c.readers[i], nil
}

// sourceReader reads one source stream in order, with one message of look
// ahead.
type sourceReader struct {
	stream string
	it     jetstream.MessagesContext
	last   uint64
	head   *SourceMsg
	done   bool // nothing more up to last
}

// peek returns the next message, nil when the stream holds nothing more up
// to the snapshot.
func (r *sourceReader) peek(ctx context.Context) (*SourceMsg, error) {
	if r.head != nil || r.done {
		return r.head, nil
	}
	msg, err := r.it.Next(jetstream.NextContext(ctx))
	if err != nil {
		return nil, err
	}
	md, err := msg.Metadata()
	if err != nil {
		return nil, err
	}
	r.head = &SourceMsg{Stream: r.stream, Seq: md.Sequence.Stream, Subject: msg.Subject(), Time: md.Timestamp, Header: msg.Headers(), Data: msg.Data()}
	// Past the snapshot nothing is asked for, so stop pulling there: a
	// later Next could wait for a message that never comes.
	r.done = md.NumPending == 0 || md.Sequence.Stream >= r.last
	return r.head, nil
}
