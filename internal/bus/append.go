package bus

import (
	"context"
	"errors"
	"fmt"

	"github.com/licensebus/licensebus/events"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrConcurrency means the aggregate changed since the state a decision was
// made on: reload and decide again.
var ErrConcurrency = errors.New("aggregate changed concurrently")

// ConflictError is an ErrConcurrency with the sequences involved.
type ConflictError struct {
	Filter           string
	Expected, Actual uint64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%v: %s expected last seq %d, stream has %d", ErrConcurrency, e.Filter, e.Expected, e.Actual)
}

func (e *ConflictError) Unwrap() error { return ErrConcurrency }

// Appender appends CloudEvents to the event stream.
type Appender struct {
	js     jetstream.JetStream
	stream jetstream.Stream
}

// NewAppender returns an Appender on the events stream.
func NewAppender(ctx context.Context, js jetstream.JetStream) (*Appender, error) {
	s, err := js.Stream(ctx, events.EventsStream)
	if err != nil {
		return nil, fmt.Errorf("events stream: %w", err)
	}
	return &Appender{js: js, stream: s}, nil
}

// Append stores m with Nats-Msg-Id = its CloudEvent id. With a filter it is
// an expected-sequence append: it succeeds only if the last message matching
// filter (an aggregate's subjects) has sequence expect (0: none yet).
// A retry of an append that was already stored returns the stored sequence,
// whether JetStream reports it as a duplicate or — because the expectation is
// checked before dedupe — as a wrong last sequence. A real conflict is a
// *ConflictError (errors.Is ErrConcurrency).
func (a *Appender) Append(ctx context.Context, m *events.Message, filter string, expect uint64) (uint64, error) {
	seq, _, err := a.append(ctx, m, filter, expect)
	return seq, err
}

// append is Append that also says whether m was stored before (a repeat).
func (a *Appender) append(ctx context.Context, m *events.Message, filter string, expect uint64) (seq uint64, repeat bool, err error) {
	msg := Msg(m)
	var opts []jetstream.PublishOpt
	if filter != "" {
		opts = append(opts, jetstream.WithExpectLastSequenceForSubject(expect, filter))
	}
	ack, err := a.js.PublishMsg(ctx, msg, opts...)
	if err == nil {
		return ack.Sequence, ack.Duplicate, nil
	}
	if !isWrongLastSeq(err) {
		return 0, false, fmt.Errorf("append %s to %s: %w", m.Type(), msg.Subject, err)
	}
	last, lerr := LastMsg(ctx, a.js, events.EventsStream, filter)
	if lerr != nil {
		return 0, false, fmt.Errorf("append %s: read last of %s after conflict: %w", m.Type(), filter, lerr)
	}
	if last.Header.Get(nats.MsgIdHdr) == m.ID() {
		return last.Sequence, true, nil
	}
	return 0, false, &ConflictError{Filter: filter, Expected: expect, Actual: last.Sequence}
}

// Last returns the sequence of the last message matching filter, 0 if none.
func (a *Appender) Last(ctx context.Context, filter string) (uint64, error) {
	last, err := LastMsg(ctx, a.js, events.EventsStream, filter)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return last.Sequence, nil
}

// isWrongLastSeq is the one place that recognises a failed expectation:
// 10071 on a single replica, 10164 on replicated streams.
func isWrongLastSeq(err error) bool {
	var ae *jetstream.APIError
	if !errors.As(err, &ae) {
		return false
	}
	return ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
}
