package audit

import (
	"context"
	"errors"
	"fmt"
	"time"

	trail "github.com/licensebus/licensebus/events/audit"
	"github.com/nats-io/nats.go/jetstream"
)

// DedupeWindow is how long the audit stream remembers Nats-Msg-Ids, so a
// retried append within it is a duplicate rather than a second entry. It is
// short because the server keeps every id of the window in memory (and a
// catch-up writes entries as fast as the stream takes them: one per
// message of the command and event streams) and because the
// expected-last-sequence and expected-last-msg-id of every append already
// stop a second copy (the writer takes a duplicate as a conflict too): the
// window only has to cover a retry, which comes within ackWait.
const DedupeWindow = 10 * time.Second

// StreamConfig is the audit stream: file storage, deny delete and purge,
// direct gets for random access.
func StreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        trail.Stream,
		Description: "licensebus audit trail: one hash-chained entry per command, event and rejection",
		Subjects:    []string{trail.Subject},
		Storage:     jetstream.FileStorage,
		Duplicates:  DedupeWindow,
		AllowDirect: true,
		DenyDelete:  true,
		DenyPurge:   true,
	}
}

// EnsureStream creates the audit stream if it does not exist. It never
// updates an existing one: the trail's settings are not something a process
// starting up should change.
func EnsureStream(ctx context.Context, js jetstream.JetStream) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, trail.Stream)
	if err == nil {
		return s, nil
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("audit stream: %w", err)
	}
	s, err = js.CreateStream(ctx, StreamConfig())
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		s, err = js.Stream(ctx, trail.Stream) // another process created it first
	}
	if err != nil {
		return nil, fmt.Errorf("create audit stream: %w", err)
	}
	return s, nil
}
