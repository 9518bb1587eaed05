package projections

import (
	"bytes"
	"fmt"
	"maps"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/segmentio/encoding/json"
)

// CheckpointKey is the key of a model's checkpoint in its bucket.
const CheckpointKey = "_checkpoint"

// Model is an in-memory read model. The Runner calls Apply, Changes, Restore
// and Reset from one goroutine; readers call the model's own query methods
// concurrently, so a Model guards its state itself.
type Model interface {
	// Name names the model; its bucket is "licensebus_view_<name>".
	Name() string
	// Apply folds one event at stream sequence seq.
	Apply(seq uint64, m *events.Message)
	// Changes returns the entries changed since the last call (a nil value
	// deletes the key) and forgets them.
	Changes() map[string][]byte
	// Restore loads one entry persisted earlier.
	Restore(key string, value []byte) error
	// Reset empties the model.
	Reset()
}

// Emitter is a Model that can hand its changes over one at a time, each
// value encoded in a buffer it reuses: value (nil deletes the key) is
// valid only during the call to emit. A replay recomputes every entry and
// most come out as the bucket holds them, so the runner copies only the
// values it keeps (to write or to hold): the others cost no allocation.
type Emitter interface {
	EachChange(emit func(key string, value []byte))
}

// eachChange hands m's changes to emit, through EachChange if m is an
// Emitter; owned says emit may keep the value without copying it.
func eachChange(m Model, emit func(key string, value []byte, owned bool)) {
	if e, ok := m.(Emitter); ok {
		e.EachChange(func(k string, v []byte) { emit(k, v, false) })
		return
	}
	for k, v := range m.Changes() {
		emit(k, v, true)
	}
}

// Collect gathers an Emitter's changes in a map of copies, as Changes
// returns them.
func Collect(e Emitter) map[string][]byte {
	out := map[string][]byte{}
	e.EachChange(func(k string, v []byte) {
		if v != nil {
			v = bytes.Clone(v)
		}
		out[k] = v
	})
	return out
}

// AppendEntry appends a model entry's encoding (MarshalEntry's) to b.
func AppendEntry(b []byte, v any) []byte {
	b, err := json.Append(b, v, json.EscapeHTML|json.SortMapKeys)
	if err != nil {
		panic(fmt.Sprintf("projections: entry does not encode: %v", err)) // our own structs: a bug
	}
	return b
}

// Grower is a Model that can make room for its entries before a replay
// from the first event: the Runner passes how many its bucket holds, so
// its maps do not grow step by step during the replay, rehashing as they
// go.
type Grower interface {
	Grow(entries int)
}

// Grown is m with room for n more entries: how a Grower sizes its maps.
func Grown[K comparable, V any](m map[K]V, n int) map[K]V {
	g := make(map[K]V, len(m)+n)
	maps.Copy(g, m)
	return g
}

// Restorer is a Model with values derived from several of its entries
// (counts kept beside the items they count). The entries of one flush are
// not stored atomically: a process that dies in the middle of one leaves
// some of them newer than the others and than the checkpoint, and the
// events replayed from the checkpoint do not mend a derived value whose
// entry was the older one. The Runner calls Restored once every entry is
// restored, before any event is applied, so the model can derive those
// values again; entries it marks changed are written.
type Restorer interface {
	Restored()
}

// Expirer is a Model whose entries expire on their own: its bucket keeps
// an entry for TTL (a KV TTL, so expiry costs no write), and Expired names
// the keys the model has forgotten, which the runner forgets too. The
// bucket's checkpoint expires with the entries when nothing happens for
// TTL: a restart then replays, and the model skips what is past its TTL.
type Expirer interface {
	TTL() time.Duration
	Expired(forget func(key string))
}

// Bucket returns the KV bucket name of a model.
func Bucket(m Model) string { return "licensebus_view_" + m.Name() }

// MarshalEntry encodes a model entry; models use JSON so outsiders can read
// the buckets.
func MarshalEntry(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("projections: entry does not encode: %v", err)) // our own structs: a bug
	}
	return b
}
