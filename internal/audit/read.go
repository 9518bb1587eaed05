package audit

import (
	"context"
	"errors"
	"fmt"
	"time"

	trail "github.com/licensebus/licensebus/events/audit"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/segmentio/encoding/json"
)

// ErrNoTrail means the audit stream does not exist yet.
var ErrNoTrail = errors.New("no audit trail yet (the audit stream is created by `licensebus serve`)")

// ErrStop, returned by a Read callback, ends the read without error.
var ErrStop = errors.New("stop reading")

// Record is one message of the audit stream as read.
type Record struct {
	StreamSeq uint64 // position in the audit stream
	Stored    time.Time
	Raw       []byte
	Entry     *trail.Entry // nil when Raw is not an audit entry
}

// ReadOptions says where a Read starts and whether it ends.
type ReadOptions struct {
	// Since starts at the first message the audit stream stored at or
	// after Since (zero: the first message). An entry is stored after its
	// source message, so this never skips an entry whose StreamTime is at
	// or after Since.
	Since time.Time
	// Follow keeps reading new messages until ctx ends; otherwise Read
	// returns after the last message stored when it started.
	Follow bool
	// CaughtUp, if set, is called once when every message stored when Read
	// started has been passed on (at once if there are none).
	CaughtUp func()
}

// Read passes the audit stream's messages to fn in order, in constant
// memory, through an ordered consumer: no server round trip but
// JetStream's. An fn error stops it and is returned (ErrStop: nil).
func Read(ctx context.Context, js jetstream.JetStream, o ReadOptions, fn func(Record) error) error {
	str, err := js.Stream(ctx, trail.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return ErrNoTrail
	}
	if err != nil {
		return fmt.Errorf("audit stream: %w", err)
	}
	info, err := str.Info(ctx)
	if err != nil {
		return fmt.Errorf("audit stream: %w", err)
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		last = 0 // emptied (only possible once its deny flags were changed): nothing to wait for
	}
	caught := false
	caughtUp := func() {
		if !caught {
			caught = true
			if o.CaughtUp != nil {
				o.CaughtUp()
			}
		}
	}
	backlog := last > 0
	if backlog && !o.Since.IsZero() {
		m, err := str.GetMsg(ctx, last)
		if err != nil {
			return fmt.Errorf("audit stream seq %d: %w", last, err)
		}
		backlog = !m.Time.Before(o.Since)
	}
	if !backlog {
		caughtUp()
		if !o.Follow {
			return nil
		}
	}
	cfg := jetstream.OrderedConsumerConfig{}
	if !o.Since.IsZero() {
		since := o.Since
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	}
	cons, err := js.OrderedConsumer(ctx, trail.Stream, cfg)
	if err != nil {
		return fmt.Errorf("audit stream consumer: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(512))
	if err != nil {
		return fmt.Errorf("audit stream consumer: %w", err)
	}
	defer it.Stop()
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if o.Follow && ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read audit stream: %w", err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("read audit stream: %w", err)
		}
		rec := Record{StreamSeq: md.Sequence.Stream, Stored: md.Timestamp, Raw: msg.Data()}
		if e := new(trail.Entry); json.Unmarshal(rec.Raw, e) == nil && e.Seq > 0 && e.Hash != "" {
			rec.Entry = e
		}
		if err := fn(rec); err != nil {
			if errors.Is(err, ErrStop) {
				return nil
			}
			return err
		}
		if !caught && (md.Sequence.Stream >= last || md.NumPending == 0) {
			caughtUp()
			if !o.Follow {
				return nil
			}
		}
	}
}
