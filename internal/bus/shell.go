package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/handlers"
	"github.com/licensebus/licensebus/internal/tracing"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// ShellConfig configures a Shell.
type ShellConfig struct {
	// Name names the handler in logs ("cloud", "device", "rollouts").
	Name string
	// Source is the CloudEvent source of the rejections it appends.
	Source string
	// Apply folds one event into the handler's state. The shell calls it
	// with its lock held, in stream order, for every event that decodes.
	// An event the handler appended itself is applied at once, and again
	// when the feed reads it: Apply must be idempotent per sequence,
	// unless FoldOwn is set.
	Apply ApplyFunc
	// FoldOwn has the handler's own events applied only as the feed reads
	// them (an append then waits for the feed): for a fold that cannot
	// tell an event it has applied.
	FoldOwn bool
	// Feed is the process's read of the event stream; required.
	Feed        *Feed
	DeadLetters *DeadLetters // default on the appender's JetStream
	Logger      zerolog.Logger
	// Horizon is how long the handled set remembers a command: a repeat
	// within it has no second effect and gets the first outcome; after
	// it the command is decided again, and the rules (derived ids,
	// expected-sequence appends, state checks) stop most second effects.
	// Default events.DefaultHorizon.
	Horizon time.Duration
	// Telemetry observes the shell's steps; the zero value observes
	// nothing and passes trace contexts on.
	Telemetry Telemetry
}

// Shell is what every handler shares, written once: it keeps the
// handler's folded state in step with the event stream and guards it, and
// turns a rule's Decision into an event on the stream — with the
// expected-sequence append that keeps an invariant across processes,
// deciding again when another writer got there first, catching up before a
// "not found", and remembering what it handled so that a repeated command
// has no second effect. Handlers supply the rules (pure functions) and
// say which aggregate a message is about.
type Shell struct {
	app  *Appender
	dl   *DeadLetters
	fold *Fold
	cfg  ShellConfig
	log  zerolog.Logger
	obs  Observer

	mu      sync.RWMutex
	handled events.Handled
}

// NewShell registers the shell's fold on cfg.Feed (before anything the
// handler registers after it, such as its reactors).
func NewShell(ctx context.Context, js jetstream.JetStream, cfg ShellConfig) (*Shell, error) {
	if cfg.Feed == nil || cfg.Apply == nil {
		return nil, errors.New("bus: a shell needs a Feed and an Apply")
	}
	app, err := NewAppender(ctx, js)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Name, err)
	}
	if cfg.Horizon <= 0 {
		cfg.Horizon = events.DefaultHorizon
	}
	sh := &Shell{app: app, dl: cfg.DeadLetters, cfg: cfg, log: cfg.Logger.With().Str("side", cfg.Name).Logger(),
		handled: events.Handled{Horizon: cfg.Horizon}, obs: cfg.Telemetry.Observer}
	if sh.obs == nil {
		sh.obs = nopObserver{}
	}
	if sh.dl == nil {
		sh.dl = NewDeadLetters(js)
	}
	sh.fold = cfg.Feed.Fold(sh.apply)
	return sh, nil
}

// Fold is the shell's fold of the event stream.
func (sh *Shell) Fold() *Fold { return sh.fold }

// Folded waits (at most 10 s) until the state includes the event at seq:
// what a reaction to it checks first, so that the handled set and the
// rules see the event they react to.
func (sh *Shell) Folded(ctx context.Context, seq uint64) error {
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return sh.fold.WaitFor(wctx, seq)
}

// DeadLetters is where the shell dead-letters what it cannot handle.
func (sh *Shell) DeadLetters() *DeadLetters { return sh.dl }

// Logger is the handler's logger.
func (sh *Shell) Logger() zerolog.Logger { return sh.log }

// Read runs f with the handler's state locked for reading: how a handler
// looks at its state outside a Step.
func (sh *Shell) Read(f func()) {
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	f()
}

func (sh *Shell) apply(seq uint64, m *events.Message) {
	if m == nil {
		return
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if c := m.CausationID(); c != "" {
		sh.handled.Add(c, m.CommandDigest(), m.Event.Time())
	}
	sh.cfg.Apply(seq, m)
}

// Decided is a rule's Decision with the aggregate it was decided on: the
// filter of the aggregate's subjects and the sequence of its last event in
// the state the rule saw, the expectation of the append.
type Decided struct {
	handlers.Decision
	Filter string
	Expect uint64
}

// Step is one command or event a handler handles against one aggregate.
type Step struct {
	// Cause is the command or event handled.
	Cause *events.Message
	// Once says the cause has at most one effect, whatever state it meets
	// later: a cause that caused an event before is not decided again.
	// Commands are handled once; a reaction that causes several events
	// (one release per license of a transfer) relies on its rule instead.
	Once bool
	// Decide applies the rule to the state as it is now. The shell calls
	// it with the state locked for reading, again after losing a race or
	// catching up: it must not keep what it reads.
	Decide func() Decided
	// Source and Actor of the event appended.
	Source, Actor string
	// Aggregate and ID name what a refusal is about (its subject).
	Aggregate, ID string
	// Undo, if set, runs before a refusal is recorded: a command that
	// changed other aggregates before this step takes that back first, so
	// whoever sees the refusal sees nothing of it.
	Undo func(ctx context.Context) error
}

// maxConflicts bounds how often one step is decided again after losing a
// race before it is handed back for redelivery.
const maxConflicts = 8

// Handle decides a step and appends what the rule decided: an event with
// the expectation it was decided on, or a Rejected event saying why. When
// another writer got to the aggregate first it waits until the fold has
// that write and decides again; a refusal decided on a state older than the
// stream is decided again too, and a "not found" once more after catching
// up with the stream, so nobody is refused on stale state. A returned error
// is transient: the caller retries the step. The step is a span in its
// cause's trace, and what it appends carries that span's trace context.
func (sh *Shell) Handle(ctx context.Context, st Step) (err error) {
	m := st.Cause
	ctx, span := sh.cfg.Telemetry.Tracer.Step(ctx, "handle", m, 0)
	defer func() { span.End(err) }()
	if st.Once {
		sh.mu.RLock()
		found, digest := sh.handled.Lookup(m.ID())
		sh.mu.RUnlock()
		if found {
			return sh.repeated(ctx, st, digest)
		}
	}
	if m.Info.Command {
		sh.obs.Command(m)
	}
	caughtUp := false
	for range maxConflicts {
		sh.mu.RLock()
		d := st.Decide()
		sh.mu.RUnlock()
		if rej := d.Refuse; rej != nil {
			if rej.Reason.Class() == events.NotFound && !caughtUp {
				// A fact appended a moment ago elsewhere is not missed.
				caughtUp = true
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				err := sh.fold.CatchUp(cctx)
				cancel()
				if err == nil {
					continue
				}
			}
			if d.Filter != "" {
				last, err := sh.app.Last(ctx, d.Filter)
				if err != nil {
					return err
				}
				if last > d.Expect {
					if err := sh.fold.WaitFor(ctx, last); err != nil {
						return err
					}
					continue
				}
			}
			if st.Undo != nil {
				if err := st.Undo(ctx); err != nil {
					return err
				}
			}
			return sh.Reject(ctx, m, rej, st.Aggregate, st.ID, "")
		}
		if d.Event == nil {
			if m.Info.Command {
				sh.obs.Repeated(m) // nothing to do: what it asks is so already
			}
			tracing.Outcome(ctx, "nothing", "")
			return nil
		}
		meta := m.Next(d.Event.ID, st.Source, st.Actor)
		meta.CommandDigest = chainDigest(m)
		tracing.Inject(ctx, &meta)
		ev, err := events.New(d.Event.Type, d.Event.Data, meta)
		if err != nil {
			return fmt.Errorf("build %s: %w", d.Event.Type, err)
		}
		seq, repeat, err := sh.app.append(ctx, ev, d.Filter, d.Expect)
		var ce *ConflictError
		if errors.As(err, &ce) {
			if werr := sh.fold.WaitFor(ctx, ce.Actual); werr != nil {
				return werr
			}
			continue
		}
		if err != nil {
			return err
		}
		if !repeat {
			sh.obs.Appended(ev)
		}
		if err := sh.own(ctx, seq, ev); err != nil {
			return err
		}
		// One line per event only at debug: the audit trail records every
		// event; at fleet rates an info line each is a firehose.
		LogMsg(sh.log.Debug(), m).Str("event", string(ev.Type())).Uint64("event_seq", seq).Msg("appended")
		return nil
	}
	return fmt.Errorf("gave up after %d conflicts: %w", maxConflicts, ErrConcurrency)
}

// repeated handles a cause that caused an event before: a repeat of the
// same command has no second effect (its first outcome stands), a command
// id used again for another command is refused and recorded.
func (sh *Shell) repeated(ctx context.Context, st Step, first string) error {
	m := st.Cause
	if !m.Info.Command || first == "" {
		return nil
	}
	now := m.Digest()
	if now == first {
		sh.obs.Repeated(m)
		tracing.Outcome(ctx, "repeated", "")
		return nil
	}
	sh.obs.Command(m)
	rej := events.Reject(events.ReasonIDReused, "command id %s was used before for another command (digest %s, this one %s); nothing was done: send it with a new id", m.ID(), first, now)
	return sh.Reject(ctx, m, rej, st.Aggregate, st.ID, events.DeriveID(m.ID(), "reused/"+now))
}

// Reject appends a Rejected event for cause (nil when the message was not
// a CloudEvent), saying why with r; aggregate and id name what the command
// targeted. eventID is the rejection's id, "" for the usual one derived
// from the cause (a cause can get other rejections: a reused id).
func (sh *Shell) Reject(ctx context.Context, cause *events.Message, r *events.Rejection, aggregate, id, eventID string) error {
	data := &events.Rejected{Reason: r.Reason, Message: r.Message, Aggregate: aggregate, ID: id}
	source := sh.cfg.Source
	meta := events.Meta{ID: eventID, Source: source, Actor: source}
	if cause != nil {
		if eventID == "" {
			eventID = events.DeriveID(cause.ID(), "rejected")
		}
		data.CommandID = cause.ID()
		data.CommandType = string(cause.Type())
		meta = cause.Next(eventID, source, source)
		meta.CommandDigest = chainDigest(cause)
		if f, ok := cause.Data.(interface {
			RejectionFields() (string, string, string)
		}); ok {
			data.InstallCode, data.LicenseID, data.CustomerID = f.RejectionFields()
		}
		if cause.Info.Command {
			sh.obs.Command(cause)
		}
	} else {
		sh.obs.Unparsed()
	}
	tracing.Inject(ctx, &meta)
	tracing.Outcome(ctx, "rejected", r.Reason)
	m, err := events.New(events.RejectedType, data, meta)
	if err != nil {
		return fmt.Errorf("build rejection: %w", err)
	}
	seq, repeat, err := sh.app.append(ctx, m, "", 0)
	if err != nil {
		return err
	}
	if !repeat {
		sh.obs.Appended(m)
	}
	if err := sh.own(ctx, seq, m); err != nil {
		return err
	}
	LogMsg(sh.log.Info(), cause).Str("reason", string(r.Reason)).Str("why", r.Message).Msg("rejected")
	return nil
}

// Screen checks that a command delivery is a well-formed command of the
// handler (accept) on the subject of its type and data. If not — not a
// CloudEvent, unknown type, bad data, a type of another handler — it
// dead-letters the message with the error, appends a Rejected event saying
// why, and returns false; a command on a subject that is not its own is
// refused without a dead letter (a caller's mistake, not poison). An error
// return is transient (the appends failed) and means "redeliver".
func (sh *Shell) Screen(ctx context.Context, d *Delivery, accept func(events.Info) bool) (ok bool, err error) {
	rej := events.AsRejection(d.Err)
	if d.Err != nil && rej == nil {
		rej = events.Reject(events.ReasonMalformed, "%v", d.Err)
	}
	if rej == nil && !accept(d.Message.Info) {
		rej = events.Reject(events.ReasonUnknownType, "%s is not a command handled on %s", d.Message.Type(), d.Msg.Subject())
	}
	if rej == nil {
		want := events.CommandSubject(d.Message.Info, d.Message.Data)
		if got := d.Msg.Subject(); got != want {
			ctx, span := sh.cfg.Telemetry.Tracer.Step(ctx, "screen", d.Message, d.Seq)
			defer func() { span.End(err) }()
			return false, sh.Reject(ctx, d.Message, events.Reject(events.ReasonSubjectMismatch,
				"%s of %s belongs on subject %s, not %s", d.Message.Type(), d.Message.Data.Key(), want, got),
				d.Message.Info.Aggregate, d.Message.Data.Key(), "")
		}
		return true, nil
	}
	if d.Message != nil {
		sh.mu.RLock()
		found, first := sh.handled.Lookup(d.Message.ID())
		sh.mu.RUnlock()
		if found && first == d.Message.Digest() {
			sh.obs.Repeated(d.Message)
			return false, nil // refused before: the first outcome stands
		}
	}
	ctx, span := sh.cfg.Telemetry.Tracer.Step(ctx, "screen", d.Message, d.Seq)
	defer func() { span.End(err) }()
	if err := sh.dl.Put(ctx, d, rej); err != nil {
		return false, err
	}
	aggregate, id := "", ""
	if d.Message != nil {
		aggregate = d.Message.Info.Aggregate
		if d.Message.Data != nil {
			id = d.Message.Data.Key()
		}
	}
	eventID := ""
	if d.Message == nil {
		// Nothing to derive from but where the message is stored.
		eventID = events.DeriveID(d.Msg.Subject()+"-"+strconv.FormatUint(d.Seq, 10), "rejected")
	}
	return false, sh.Reject(ctx, d.Message, rej, aggregate, id, eventID)
}

// Append appends an event the handler built itself, with no expectation
// (a process manager's record of what it did; its id makes a repeat a
// duplicate), and applies it to the state.
func (sh *Shell) Append(ctx context.Context, m *events.Message) error {
	tracing.Link(ctx, m)
	seq, repeat, err := sh.app.append(ctx, m, "", 0)
	if err != nil {
		return err
	}
	if !repeat {
		sh.obs.Appended(m)
	}
	return sh.own(ctx, seq, m)
}

// AppendOn is Append with an expectation: it stores m only if the last
// event on filter (an aggregate's subjects) is still expect, the sequence
// the handler's state has for it. A singleton's records use it so that a
// writer that lost its job cannot write after the one that has it; a
// conflict is a *ConflictError.
func (sh *Shell) AppendOn(ctx context.Context, m *events.Message, filter string, expect uint64) error {
	seq, err := sh.app.Append(ctx, m, filter, expect)
	if err != nil {
		return err
	}
	return sh.own(ctx, seq, m)
}

// own brings an event the handler appended into its state: at once, or
// (FoldOwn) when the feed has read it.
func (sh *Shell) own(ctx context.Context, seq uint64, m *events.Message) error {
	if sh.cfg.FoldOwn {
		return sh.fold.WaitFor(ctx, seq)
	}
	sh.apply(seq, m)
	return nil
}

// Reasons are the refusals the shell gives, whatever the rules: a message
// that is no command of the handler, on the wrong subject, too large, or
// a command id used again for another command.
func Reasons() []events.Reason {
	return []events.Reason{events.ReasonMalformed, events.ReasonUnknownType, events.ReasonInvalidData, events.ReasonBadUUID,
		events.ReasonBadInstallCode, events.ReasonSubjectMismatch, events.ReasonTooLarge, events.ReasonIDReused}
}

// chainDigest is the commanddigest of an event caused by m: the digest of
// m if it is a command, else the one m carries. Passed along the chain, the
// outcome (its last event) names its command's digest even when the view
// that writes it restarted between the command's first event and its last.
func chainDigest(m *events.Message) string {
	if m.Info.Command {
		return m.Digest()
	}
	return m.CommandDigest()
}
