package audit

import (
	"context"
	"errors"
	"fmt"

	"github.com/licensebus/licensebus/events"
	trail "github.com/licensebus/licensebus/events/audit"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/segmentio/encoding/json"
)

// Status is where the trail stands against its sources.
type Status struct {
	Seq        uint64       `json:"seq"`         // last entry
	Hash       string       `json:"hash"`        // its hash
	Cursor     trail.Cursor `json:"cursor"`      // its cursor
	StreamLast uint64       `json:"stream_last"` // last sequence of the audit stream
	Sources    trail.Cursor `json:"sources"`     // last sequences of the source streams
}

// Behind is how many source messages the trail does not record yet.
func (s Status) Behind() uint64 {
	return s.Sources.Commands - min(s.Sources.Commands, s.Cursor.Commands) + s.Sources.Events - min(s.Sources.Events, s.Cursor.Events)
}

// ReadStatus reads the trail's last message and the sources' last
// sequences. It does not verify anything.
func ReadStatus(ctx context.Context, js jetstream.JetStream) (Status, error) {
	var st Status
	for i, name := range []string{events.CommandsStream, events.EventsStream} {
		last, err := bus.LastSeq(ctx, js, name)
		if err != nil {
			return st, fmt.Errorf("source %s: %w", name, err)
		}
		if i == srcCommands {
			st.Sources.Commands = last
		} else {
			st.Sources.Events = last
		}
	}
	str, err := js.Stream(ctx, trail.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return st, ErrNoTrail
	}
	if err != nil {
		return st, fmt.Errorf("audit stream: %w", err)
	}
	info, err := str.Info(ctx)
	if err != nil {
		return st, fmt.Errorf("audit stream: %w", err)
	}
	st.StreamLast = info.State.LastSeq
	if st.StreamLast == 0 {
		return st, nil
	}
	m, err := str.GetMsg(ctx, st.StreamLast)
	if err != nil {
		return st, fmt.Errorf("audit stream seq %d: %w", st.StreamLast, err)
	}
	var e trail.Entry
	if err := json.Unmarshal(m.Data, &e); err != nil {
		return st, fmt.Errorf("audit stream seq %d: %w: %v", st.StreamLast, trail.ErrNotEntry, err)
	}
	st.Seq, st.Hash, st.Cursor = e.Seq, e.Hash, e.Cursor
	return st, nil
}
