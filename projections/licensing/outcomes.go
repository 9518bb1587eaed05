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
// in its bucket so a caller can watch the one key it waits for.
type Outcomes struct {
	mu   sync.Mutex
	seen events.IDSet
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
)

// NewOutcomes returns an empty Outcomes model.
func NewOutcomes() *Outcomes {
	o := &Outcomes{}
	o.Reset()
	return o
}

// Name implements projections.Model.
func (o *Outcomes) Name() string { return "outcomes" }

// Reset implements projections.Model.
func (o *Outcomes) Reset() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seen, o.pending, o.digests = events.IDSet{}, nil, nil
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
	if !o.seen.Add(corr) {
		return
	}
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
	o.seen.Grow(n)
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
	o.seen.Add(key)
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
