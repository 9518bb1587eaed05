package bus

import (
	"context"
	"errors"
	"fmt"

	"github.com/licensebus/licensebus/events"
)

// Decision is one append a handler decided on its current state: Event is
// appended only if the last message on Filter still has sequence Expect.
// A nil Event means there is nothing to do. A decide func that refuses
// returns the Filter and Expect it decided on with its *events.Rejection,
// so the refusal can be checked against the stream too.
type Decision struct {
	Event  *events.Message
	Filter string
	Expect uint64
}

// maxConflicts bounds how often one message is re-decided after losing a
// race before it is handed back for redelivery.
const maxConflicts = 8

// Execute appends what decide returns. When another writer got to the
// aggregate first, it waits until fold includes that write and decides
// again, so the second decision sees the first writer's effect.
//
// A refusal is held to the same standard: a rejection decided on a state
// older than the stream (another process's fold was ahead) is decided again
// once the fold has caught up, so nobody is refused on stale state.
// Other errors from decide are returned as they are.
func (a *Appender) Execute(ctx context.Context, fold *Fold, decide func() (Decision, error)) (uint64, *events.Message, error) {
	for range maxConflicts {
		dec, err := decide()
		if err != nil {
			if events.AsRejection(err) != nil && dec.Filter != "" {
				last, lerr := a.Last(ctx, dec.Filter)
				if lerr != nil {
					return 0, nil, lerr
				}
				if last > dec.Expect {
					if werr := fold.WaitFor(ctx, last); werr != nil {
						return 0, nil, werr
					}
					continue
				}
			}
			return 0, nil, err
		}
		if dec.Event == nil {
			return 0, nil, nil
		}
		seq, err := a.Append(ctx, dec.Event, dec.Filter, dec.Expect)
		var ce *ConflictError
		if errors.As(err, &ce) {
			if werr := fold.WaitFor(ctx, ce.Actual); werr != nil {
				return 0, nil, werr
			}
			continue
		}
		if err != nil {
			return 0, nil, err
		}
		return seq, dec.Event, nil
	}
	return 0, nil, fmt.Errorf("gave up after %d conflicts: %w", maxConflicts, ErrConcurrency)
}

// Reject appends a Rejected event for cause (which may be nil when the
// message was not a CloudEvent; then key names it). aggregate and id name
// what the command targeted.
func (a *Appender) Reject(ctx context.Context, cause *events.Message, key string, r *events.Rejection, source, aggregate, id string) (uint64, *events.Message, error) {
	data := &events.Rejected{Reason: r.Reason, Message: r.Message, Aggregate: aggregate, ID: id}
	meta := events.Meta{ID: events.DeriveID(key, "rejected"), Source: source, Actor: source}
	if cause != nil {
		data.CommandID = cause.ID()
		data.CommandType = string(cause.Type())
		meta = cause.Next(events.DeriveID(cause.ID(), "rejected"), source, source)
	}
	switch d := dataOf(cause).(type) {
	case interface {
		RejectionFields() (string, string, string)
	}:
		data.InstallCode, data.LicenseID, data.CustomerID = d.RejectionFields()
	}
	m, err := events.New(events.RejectedType, data, meta)
	if err != nil {
		return 0, nil, fmt.Errorf("build rejection: %w", err)
	}
	seq, err := a.Append(ctx, m, "", 0)
	return seq, m, err
}

func dataOf(m *events.Message) any {
	if m == nil {
		return nil
	}
	return m.Data
}
