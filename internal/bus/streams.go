package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/nats-io/nats.go/jetstream"
)

// Dedupe windows. The server keeps every message id of the window in
// memory (at fleet scale, hundreds of MB for a 10-minute window), so the
// windows cover client and handler retries, which come within seconds;
// handlers remember every message they answered, so a repeat after the
// window still has no second effect.
const (
	CommandDedupeWindow = 2 * time.Minute
	EventDedupeWindow   = time.Minute
)

// CommandMaxSize is the largest command the command stream stores,
// headers included. The largest command licensebus has a use for, a
// rollout start naming 10,000 SmartServers by install codes of the
// longest allowed length, takes about two thirds of it (docs/consumers.md
// gives the sizes); anything larger is refused when it is published,
// before a handler or the dead-letter stream has to carry it. It is also
// the default payload limit of a NATS server, so a command the embedded
// server takes is one any NATS serve joins takes too.
const CommandMaxSize = 1 << 20

// EnsureStreams creates or updates the command, event and dead-letter
// streams. The event stream is the system of record: it denies delete and
// purge.
func EnsureStreams(ctx context.Context, js jetstream.JetStream) error {
	cfgs := []jetstream.StreamConfig{
		{
			Name:        events.CommandsStream,
			Description: "licensebus commands (CloudEvents, binary or structured mode)",
			Subjects:    []string{events.CloudCommands, events.DeviceCommands, events.RolloutCommands},
			Storage:     jetstream.FileStorage,
			Duplicates:  CommandDedupeWindow,
			MaxMsgSize:  CommandMaxSize,
			AllowDirect: true,
			// Commands are evidence too: the audit trail checks them.
			DenyDelete: true,
		},
		{
			Name:        events.EventsStream,
			Description: "licensebus events and rejections (CloudEvents, structured mode)",
			Subjects:    []string{events.AllEvents},
			Storage:     jetstream.FileStorage,
			Duplicates:  EventDedupeWindow,
			AllowDirect: true,
			DenyDelete:  true,
			DenyPurge:   true,
		},
		{
			Name:        events.DeadLettersStream,
			Description: "licensebus dead letters: messages that could not be handled, with the error",
			Subjects:    []string{events.AllDeadLetters},
			Storage:     jetstream.FileStorage,
			AllowDirect: true,
		},
	}
	for _, c := range cfgs {
		if err := ensureStream(ctx, js, c); err != nil {
			return fmt.Errorf("stream %s: %w", c.Name, err)
		}
	}
	return nil
}

// ensureStream creates a missing stream and updates one only when its
// settings differ: a needless update from a second process racing the
// first one's consumer creation trips a data race inside nats-server 2.15.
func ensureStream(ctx context.Context, js jetstream.JetStream, c jetstream.StreamConfig) error {
	s, err := js.Stream(ctx, c.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = js.CreateStream(ctx, c)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return nil // another process created it first
		}
		return err
	}
	if err != nil {
		return err
	}
	cur := s.CachedInfo().Config
	if cur.Description == c.Description && slices.Equal(cur.Subjects, c.Subjects) && cur.Duplicates == c.Duplicates &&
		cur.AllowDirect == c.AllowDirect && cur.DenyDelete == c.DenyDelete && cur.DenyPurge == c.DenyPurge &&
		max(cur.MaxMsgSize, 0) == c.MaxMsgSize {
		return nil
	}
	_, err = js.UpdateStream(ctx, c)
	return err
}

// State is what stream holds now: its message count, bytes, sequences.
func State(ctx context.Context, js jetstream.JetStream, stream string) (jetstream.StreamState, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return jetstream.StreamState{}, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return jetstream.StreamState{}, err
	}
	return info.State, nil
}

// LastSeq is the last sequence stream holds now.
func LastSeq(ctx context.Context, js jetstream.JetStream, stream string) (uint64, error) {
	st, err := State(ctx, js, stream)
	return st.LastSeq, err
}
