package licensing

import (
	"sync"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/projections"
	"github.com/segmentio/encoding/json"
)

// Outcome is how a command ended: the first terminal event of its
// correlation id. A repeated command finds the outcome of the first.
type Outcome struct {
	CorrelationID string `json:"correlation_id"`
	Status        string `json:"status"` // accepted | rejected
	EventID       string `json:"event_id"`
	EventType     string `json:"event_type"`
	Reason        string `json:"reason,omitempty"`
	Message       string `json:"message,omitempty"`
	// CommandDigest is the digest of the command the outcome is of
	// (events.CommandDigest): a client that sent another command under the
	// same id learns that this outcome is not its command's.
	CommandDigest string          `json:"command_digest,omitempty"`
	Time          time.Time       `json:"time"`
	Seq           uint64          `json:"seq"`
	Data          json.RawMessage `json:"data"`
}

// Outcomes is the read model of command outcomes, keyed by correlation id
// in its bucket so a caller can watch the one key it waits for. An outcome
// is kept for the horizon of the handlers' handled sets (the time a repeat
// of its command still gets it), and then forgotten: its bucket has that
// TTL.
type Outcomes struct {
	mu      sync.Mutex
	horizon time.Duration
	now     func() time.Time
	seen    events.Handled
	expired []string // forgotten since the runner last asked
	// digests are the command digests of the commands whose first event
	// was not their outcome (an activation's request), until it comes.
	digests map[string]string
	// pending are the outcomes since the last EachChange, encoded only
	// then, into buf: a replay finds most of them in the bucket already.
	// Each holds its event's data, a slice of the message read.
	pending []Outcome
	buf     []byte
}

var (
	_ projections.Model   = (*Outcomes)(nil)
	_ projections.Emitter = (*Outcomes)(nil)
	_ projections.Expirer = (*Outcomes)(nil)
)

// NewOutcomes returns an empty Outcomes model that keeps outcomes for
// events.DefaultHorizon.
func NewOutcomes() *Outcomes { return OutcomesWithin(events.DefaultHorizon, time.Now) }

// OutcomesWithin returns an empty Outcomes model that keeps outcomes for
// horizon; now is the clock that says which are older (replays skip them).
func OutcomesWithin(horizon time.Duration, now func() time.Time) *Outcomes {
	o := &Outcomes{horizon: horizon, now: now}
	o.Reset()
	return o
}

// TTL implements projections.Expirer.
func (o *Outcomes) TTL() time.Duration { return o.horizon }

// Expired implements projections.Expirer.
func (o *Outcomes) Expired(forget func(key string)) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, k := range o.expired {
		forget(k)
	}
	o.expired = o.expired[:0]
}

// Name implements projections.Model.
func (o *Outcomes) Name() string { return "outcomes" }

// Reset implements projections.Model.
func (o *Outcomes) Reset() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seen = events.Handled{Horizon: o.horizon, OnForget: func(id string) { o.expired = append(o.expired, id) }}
	o.pending, o.digests, o.expired = nil, nil, nil
}

// Apply implements projections.Model.
func (o *Outcomes) Apply(seq uint64, m *events.Message) {
	if !m.Info.Terminal {
		if d := m.CommandDigest(); d != "" && m.CausationID() == m.CorrelationID() {
			o.mu.Lock()
			if o.digests == nil {
				o.digests = map[string]string{}
			}
			o.digests[m.CorrelationID()] = d
			o.mu.Unlock()
		}
		return
	}
	corr := m.CorrelationID()
	if !validKey(corr) {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	digest := m.CommandDigest()
	if d, ok := o.digests[corr]; ok {
		if digest == "" {
			digest = d
		}
		delete(o.digests, corr)
	}
	at := m.Event.Time()
	if at.Before(o.now().Add(-o.horizon)) {
		return // past the horizon: its entry has expired, or will at once
	}
	if found, _ := o.seen.Lookup(corr); found {
		return
	}
	o.seen.Add(corr, "", at)
	out := Outcome{CorrelationID: corr, Status: "accepted", EventID: m.ID(), EventType: string(m.Type()),
		Time: m.Event.Time(), Seq: seq, Data: json.RawMessage(m.Event.Data()), CommandDigest: digest}
	if r, ok := m.Data.(*events.Rejected); ok {
		out.Status, out.Reason, out.Message = "rejected", string(r.Reason), r.Message
	}
	o.pending = append(o.pending, out)
}

// Grow implements projections.Grower: one entry per command outcome.
func (o *Outcomes) Grow(n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seen.Grow(n, o.now())
}

// Changes implements projections.Model.
func (o *Outcomes) Changes() map[string][]byte { return projections.Collect(o) }

// EachChange implements projections.Emitter.
func (o *Outcomes) EachChange(emit func(key string, value []byte)) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := range o.pending {
		out := &o.pending[i]
		var ok bool
		if o.buf, ok = appendOutcome(o.buf[:0], out); !ok {
			o.buf = projections.AppendEntry(o.buf[:0], out)
		}
		emit(out.CorrelationID, o.buf)
	}
	clear(o.pending) // let go of the events' data
	o.pending = o.pending[:0]
}

// Restore implements projections.Model.
func (o *Outcomes) Restore(key string, _ []byte) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	// Its time is in the value; now is later, which keeps it no shorter.
	o.seen.Add(key, "", o.now())
	return nil
}

// validKey keeps correlation ids that can be KV keys; ids we create are
// UUIDs, outsiders' ids may be anything.
func validKey(k string) bool {
	if k == "" || k[0] == '.' || k[len(k)-1] == '.' || k[0] == '_' {
		return false
	}
	for i := 0; i < len(k); i++ {
		if !keyByte[k[i]] {
			return false
		}
	}
	return true
}

// keyByte marks the bytes a KV key may hold.
var keyByte = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '=' || c == '.' || c == '/'
	}
	return t
}()
