package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Dedupe windows. The server keeps every message id of a window in
// memory (about 150 bytes each: at fleet rates, 2 and 1 minutes held some
// 50 MB of ids in the NATS server's heap, twice that in its RSS), so the
// windows cover retries and no more. A publish that timed out (nats.go's
// 5 s) is retried by the client at once; a handler's failed append comes
// back as a redelivery within the back-off of its tries (200 ms × try,
// about 11 s for all of them). Past the window nothing has a second
// effect: a handler remembers every command it answered for the horizon
// (a repeat gets the first outcome), an event's id is derived from its
// cause and an expected-sequence append of it fails its expectation (the
// stored copy is recognised by its id), and the appends without one (a
// rejection, a process manager's record) are known to the handler once
// its feed has read them, well within the window.
const (
	CommandDedupeWindow = 30 * time.Second
	EventDedupeWindow   = 30 * time.Second
)

// earlierWindows are the dedupe windows earlier versions of licensebus
// created the streams with: setting them to this version's is an upgrade,
// not a repair of someone else's change.
var earlierWindows = map[string]time.Duration{
	events.CommandsStream: 2 * time.Minute,
	events.EventsStream:   time.Minute,
}

// DeadLetterRetention is how long a dead letter is kept.
const DeadLetterRetention = 90 * 24 * time.Hour

// CommandMaxSize is the largest command the command stream stores,
// headers included. The largest command licensebus has a use for, a
// rollout start naming 10,000 SmartServers by install codes of the
// longest allowed length, fits with room to spare (docs/consumers.md
// gives the sizes); anything larger is refused when it is published,
// before a handler or the dead-letter stream has to carry it. It is also
// the default payload limit of a NATS server, so a command the embedded
// server takes is one any NATS serve joins takes too.
const CommandMaxSize = 1 << 20

// StreamConfigs returns the command, event and dead-letter streams as
// serve creates them. The event stream is the system of record: it denies
// delete and purge.
func StreamConfigs() []jetstream.StreamConfig {
	return []jetstream.StreamConfig{
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
			// Bad input must not grow the store for ever; the audit trail
			// keeps every command's entry beyond this.
			MaxAge: DeadLetterRetention,
		},
	}
}

// WantedConfig returns the configuration serve creates stream name with;
// ok is false for a stream that is not one of StreamConfigs.
func WantedConfig(name string) (cfg jetstream.StreamConfig, ok bool) {
	for _, c := range StreamConfigs() {
		if c.Name == name {
			return c, true
		}
	}
	return jetstream.StreamConfig{}, false
}

// EnsureOption is an option of EnsureStreams.
type EnsureOption func(*ensureOptions)

type ensureOptions struct {
	log      zerolog.Logger
	window   time.Duration
	replicas Replicas
}

// WithReplicas gives the streams r's replicas (see Replicas): new ones
// are created with them, existing ones scaled, and EnsureStreams says so.
func WithReplicas(r Replicas) EnsureOption {
	return func(o *ensureOptions) { o.replicas = r }
}

// DedupeWindow replaces the dedupe windows of the command and event
// streams: for tests of what happens once a repeat comes after them.
func DedupeWindow(d time.Duration) EnsureOption {
	return func(o *ensureOptions) { o.window = d }
}

// ReportRepairs makes EnsureStreams log, at error level, every setting of
// an existing stream it sets back to what serve creates: someone changed
// it, and what the stream lost meanwhile (a lower MaxMsgs drops events)
// is not coming back.
func ReportRepairs(log zerolog.Logger) EnsureOption {
	return func(o *ensureOptions) { o.log = log }
}

// EnsureStreams creates the command, event and dead-letter streams, or
// updates one whose settings differ from StreamConfigs (a setting this
// build adds, or one someone changed).
func EnsureStreams(ctx context.Context, js jetstream.JetStream, opts ...EnsureOption) error {
	o := ensureOptions{log: zerolog.Nop()}
	for _, opt := range opts {
		opt(&o)
	}
	for _, c := range StreamConfigs() {
		if o.window > 0 && c.Duplicates > 0 {
			c.Duplicates = o.window
		}
		if err := ensureStream(ctx, js, c, o.log, o.replicas); err != nil {
			return fmt.Errorf("stream %s: %w", c.Name, err)
		}
	}
	return nil
}

// ensureStream creates a missing stream and updates one only when its
// settings differ: a needless update from a second process racing the
// first one's consumer creation trips a data race inside nats-server 2.15.
// Replicas are r's; a default count the cluster cannot place falls back to
// what the stream has (1 for a new one), with a warning.
func ensureStream(ctx context.Context, js jetstream.JetStream, c jetstream.StreamConfig, log zerolog.Logger, r Replicas) error {
	s, err := js.Stream(ctx, c.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		c.Replicas = r.For(1)
		_, err = js.CreateStream(ctx, c)
		if err != nil && c.Replicas > 1 && !r.Explicit && insufficientReplicas(err) {
			log.Warn().Str("stream", c.Name).Int("replicas", c.Replicas).Err(err).Msg("the cluster cannot place the replicas; creating the stream with 1")
			c.Replicas = 1
			_, err = js.CreateStream(ctx, c)
		}
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return nil // another process created it first
		}
		return err
	}
	if err != nil {
		return err
	}
	cur := s.CachedInfo().Config
	have := max(1, cur.Replicas)
	c.Replicas = r.For(have)
	drift := ConfigDrift(cur, c)
	if len(drift) == 0 && cur.Description == c.Description && c.Replicas == have {
		return nil
	}
	if _, err = js.UpdateStream(ctx, c); err != nil && c.Replicas != have && !r.Explicit && insufficientReplicas(err) {
		log.Warn().Str("stream", c.Name).Int("replicas", have).Err(err).Msg("stream not scaled: the cluster cannot place the replicas")
		c.Replicas = have
		_, err = js.UpdateStream(ctx, c)
	}
	if err != nil {
		if len(drift) > 0 {
			return fmt.Errorf("differs from what serve creates (%s) and cannot be set back: %w", strings.Join(drift, "; "), err)
		}
		return err
	}
	if c.Replicas != have {
		log.Info().Str("stream", c.Name).Int("from", have).Int("to", c.Replicas).Msg("stream scaled to the replicas asked for")
	}
	for _, d := range drift {
		if strings.HasPrefix(d, "duplicate_window ") && cur.Duplicates == earlierWindows[c.Name] {
			log.Info().Str("stream", c.Name).Str("setting", d).Msg("stream setting of an earlier licensebus version updated")
			continue
		}
		log.Error().Str("stream", c.Name).Str("setting", d).Msg("stream setting changed by someone else; set back to what serve creates")
	}
	return nil
}

// ConfigDrift names each setting in which have, a stream's configuration
// as the server reports it, differs from want, the one serve creates it
// with: "max_msgs is 100, serve creates -1". Settings want leaves at zero
// compare with the server's defaults for them. The description, the
// metadata and the replicas (a deployment's choice: serve --replicas) are
// not compared.
func ConfigDrift(have, want jetstream.StreamConfig) []string {
	have, want = withDefaults(have), withDefaults(want)
	var out []string
	diff := func(name string, h, w any) {
		if hs, ws := setting(h), setting(w); hs != ws {
			out = append(out, fmt.Sprintf("%s is %s, serve creates %s", name, hs, ws))
		}
	}
	diff("subjects", sorted(have.Subjects), sorted(want.Subjects))
	diff("retention", have.Retention, want.Retention)
	diff("max_consumers", have.MaxConsumers, want.MaxConsumers)
	diff("max_msgs", have.MaxMsgs, want.MaxMsgs)
	diff("max_bytes", have.MaxBytes, want.MaxBytes)
	diff("discard", have.Discard, want.Discard)
	diff("discard_new_per_subject", have.DiscardNewPerSubject, want.DiscardNewPerSubject)
	diff("max_age", have.MaxAge, want.MaxAge)
	diff("max_msgs_per_subject", have.MaxMsgsPerSubject, want.MaxMsgsPerSubject)
	diff("max_msg_size", have.MaxMsgSize, want.MaxMsgSize)
	diff("storage", have.Storage, want.Storage)
	diff("no_ack", have.NoAck, want.NoAck)
	diff("duplicate_window", have.Duplicates, want.Duplicates)
	diff("mirror", have.Mirror, want.Mirror)
	diff("sources", have.Sources, want.Sources)
	diff("sealed", have.Sealed, want.Sealed)
	diff("deny_delete", have.DenyDelete, want.DenyDelete)
	diff("deny_purge", have.DenyPurge, want.DenyPurge)
	diff("allow_rollup_hdrs", have.AllowRollup, want.AllowRollup)
	diff("compression", have.Compression, want.Compression)
	diff("subject_transform", have.SubjectTransform, want.SubjectTransform)
	diff("republish", have.RePublish, want.RePublish)
	diff("allow_direct", have.AllowDirect, want.AllowDirect)
	diff("mirror_direct", have.MirrorDirect, want.MirrorDirect)
	diff("consumer_limits", have.ConsumerLimits, want.ConsumerLimits)
	diff("allow_msg_ttl", have.AllowMsgTTL, want.AllowMsgTTL)
	diff("subject_delete_marker_ttl", have.SubjectDeleteMarkerTTL, want.SubjectDeleteMarkerTTL)
	diff("allow_msg_counter", have.AllowMsgCounter, want.AllowMsgCounter)
	diff("allow_atomic", have.AllowAtomicPublish, want.AllowAtomicPublish)
	diff("allow_msg_schedules", have.AllowMsgSchedules, want.AllowMsgSchedules)
	diff("persist_mode", have.PersistMode, want.PersistMode)
	diff("allow_batched", have.AllowBatchPublish, want.AllowBatchPublish)
	return out
}

// withDefaults fills in what the server sets for settings left at zero.
func withDefaults(c jetstream.StreamConfig) jetstream.StreamConfig {
	for _, n := range []*int64{&c.MaxMsgs, &c.MaxBytes, &c.MaxMsgsPerSubject} {
		if *n == 0 {
			*n = -1
		}
	}
	if c.MaxConsumers == 0 {
		c.MaxConsumers = -1
	}
	if c.MaxMsgSize == 0 {
		c.MaxMsgSize = -1
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Duplicates == 0 {
		c.Duplicates = 2 * time.Minute
		if c.MaxAge > 0 && c.MaxAge < c.Duplicates {
			c.Duplicates = c.MaxAge
		}
	}
	return c
}

// setting prints a setting's value: JSON for structures, so that two equal
// ones print the same.
func setting(v any) string {
	switch v.(type) {
	case *jetstream.StreamSource, []*jetstream.StreamSource, *jetstream.SubjectTransformConfig, *jetstream.RePublish, jetstream.StreamConsumerLimits:
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Sprint(v)
		}
		if s := string(b); s != "null" {
			return s
		}
		return "none"
	}
	return fmt.Sprint(v)
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// PositionProblem says why a reader that has read stream up to seq (a
// checkpoint, a cursor) cannot be in step with the stream as it is now,
// state; "" when it can. The stream ends before seq: it was deleted and
// created again (or lost its tail), so what the reader built on is gone
// and what comes next takes sequences it has already passed. Or the
// stream's first message is past seq+1: messages it never read were
// removed.
func PositionProblem(stream string, state jetstream.StreamState, seq uint64) string {
	switch {
	case seq > state.LastSeq:
		return fmt.Sprintf("%s ends at seq %d, before seq %d read already: the stream was deleted and created again, or lost messages", stream, state.LastSeq, seq)
	case state.FirstSeq > seq+1:
		return fmt.Sprintf("%s starts at seq %d: seqs %d-%d were removed before they were read", stream, state.FirstSeq, seq+1, state.FirstSeq-1)
	}
	return ""
}

// StreamStatus is a stream as it is now, against what serve creates.
type StreamStatus struct {
	Name  string
	State jetstream.StreamState
	// Drift names each setting that differs from what serve creates.
	Drift []string
}

// CheckStream reads the stream want names and compares its configuration
// with want.
func CheckStream(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig) (StreamStatus, error) {
	st := StreamStatus{Name: want.Name}
	s, err := js.Stream(ctx, want.Name)
	if err != nil {
		return st, fmt.Errorf("stream %s: %w", want.Name, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return st, fmt.Errorf("stream %s: %w", want.Name, err)
	}
	st.State, st.Drift = info.State, ConfigDrift(info.Config, want)
	return st, nil
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
