package projections

import (
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/rs/zerolog"
)

// scripted is a model whose changes the test hands over one flush at a time.
type scripted struct{ next map[string][]byte }

func (s *scripted) Name() string                  { return "scripted" }
func (s *scripted) Apply(uint64, *events.Message) {}
func (s *scripted) Restore(string, []byte) error  { return nil }
func (s *scripted) Reset()                        {}
func (s *scripted) Changes() map[string][]byte    { c := s.next; s.next = nil; return c }
func (s *scripted) set(c map[string]string)       { s.next = bytesOf(c) }
func bytesOf(c map[string]string) map[string][]byte {
	out := make(map[string][]byte, len(c))
	for k, v := range c {
		if v != del {
			out[k] = []byte(v)
		} else {
			out[k] = nil
		}
	}
	return out
}

const del = "<deleted>"

// emitting is scripted handing its changes over as an Emitter does: each
// value in one buffer, overwritten by the next and spoiled after the call,
// so a value the runner keeps without copying shows up wrong.
type emitting struct{ scripted }

func (e *emitting) EachChange(emit func(string, []byte)) {
	var buf []byte
	for k, v := range e.scripted.Changes() {
		if v == nil {
			emit(k, nil)
			continue
		}
		buf = append(buf[:0], v...)
		emit(k, buf)
		for i := range buf {
			buf[i] = '#'
		}
	}
}

// scriptedModel is what the batch test drives: scripted or emitting.
type scriptedModel interface {
	Model
	set(map[string]string)
}

// Ensure a replay from the first event writes nothing before the head,
// and at the head exactly what differs from the bucket: a value held while
// it differed is dropped once it comes back to the bucket's, a key the
// model made and removed again is never written, entries the replay did
// not write are deleted; and a second replay, starting from the marks the
// first one left, deletes nothing it writes again.
func TestBatchWritesOnlyWhatDiffersAtTheHead(t *testing.T) {
	for _, m := range []scriptedModel{&scripted{}, &emitting{}} {
		t.Run(fmt.Sprintf("%T", m), func(t *testing.T) { testBatch(t, m) })
	}
}

func testBatch(t *testing.T, m scriptedModel) {
	r := NewRunner(nil, zerolog.Nop(), m)
	for k, v := range map[string]string{"same": "1", "changed": "1", "flip": "final", "removed": "1", "stale": "1"} {
		r.stored[0][k] = r.hash([]byte(v))
	}
	r.replayFromStart(0, m)
	sent := []uint64{0}
	steps := []struct {
		name    string
		changes map[string]string
		last    uint64
		quiet   bool
		want    map[string]string // written at this flush: value, or del
	}{
		{"first window", map[string]string{"same": "1", "changed": "0", "flip": "old", "gone": "v", "removed": "1"}, 10, false, map[string]string{}},
		{"second window", map[string]string{"flip": "final", "gone": del, "changed": "2", "removed": del}, 20, false, map[string]string{}},
		{"head", map[string]string{"new": "n"}, 30, true,
			map[string]string{"changed": "2", "new": "n", "removed": del, "stale": del, CheckpointKey: "30"}},
		{"after the head", map[string]string{"new": "n2"}, 40, true, map[string]string{"new": "n2", CheckpointKey: "40"}},
	}
	for _, st := range steps {
		m.set(st.changes)
		if got := written(r.batch(st.last, st.quiet, false, sent), m); !maps.Equal(got, st.want) {
			t.Fatalf("%s: wrote %v, want %v", st.name, got, st.want)
		}
	}
	if len(r.held[0]) != 0 || r.replaying[0] {
		t.Fatalf("after the head: held %v, replaying %v", r.held[0], r.replaying[0])
	}

	// Again, the model coming out as the bucket holds it.
	r.replayFromStart(0, m)
	m.set(map[string]string{"same": "1", "changed": "2"})
	if got := written(r.batch(50, false, false, sent), m); len(got) != 0 {
		t.Fatalf("second replay, first window: wrote %v", got)
	}
	m.set(map[string]string{"flip": "final", "new": "n2"})
	want := map[string]string{CheckpointKey: "60"}
	if got := written(r.batch(60, true, false, sent), m); !maps.Equal(got, want) {
		t.Fatalf("second replay, head: wrote %v, want %v", got, want)
	}
}

// written is what a batch writes, by key: the value, or del.
func written(b batch, m Model) map[string]string {
	out := map[string]string{}
	for _, msg := range b.msgs {
		k := strings.TrimPrefix(msg.Subject, "$KV."+Bucket(m)+".")
		if msg.Header.Get("KV-Operation") == "DEL" {
			out[k] = del
		} else {
			out[k] = string(msg.Data)
		}
	}
	return out
}

// AppendEntry writes what MarshalEntry writes: an entry encoded either way
// hashes the same against the bucket.
func TestAppendEntryMatchesMarshalEntry(t *testing.T) {
	type entry struct {
		Name string         `json:"name"`
		N    int            `json:"n,omitempty"`
		M    map[string]int `json:"m"`
		L    []string       `json:"l"`
	}
	for _, v := range []any{
		entry{Name: "a <b> & c", M: map[string]int{"z": 1, "a": 2}, L: []string{}},
		&entry{Name: "zoë"},
		[]entry{},
		map[string]string{"b": "1", "a": "2"},
	} {
		want := MarshalEntry(v)
		if got := AppendEntry([]byte("prefix"), v); string(got) != "prefix"+string(want) {
			t.Errorf("AppendEntry(%#v) = %s, want prefix%s", v, got, want)
		}
	}
}

// expiring is scripted with entries that expire (an Expirer).
type expiring struct {
	scripted
	gone []string
}

func (e *expiring) TTL() time.Duration { return time.Hour }
func (e *expiring) Expired(forget func(string)) {
	for _, k := range e.gone {
		forget(k)
	}
	e.gone = nil
}

// Ensure the writer forgets the revision of an entry its model let expire,
// and keeps the others': the fence must not grow by one key per command
// for ever (the outcomes view expires an outcome after the horizon).
func TestFenceForgetsExpiredEntries(t *testing.T) {
	m := &expiring{}
	r := NewRunner(nil, zerolog.Nop(), m)
	prefix := "$KV." + Bucket(m) + "."
	r.fence = &fence{revs: []map[uint64]uint64{{r.keyHash(prefix + "old"): 7, r.keyHash(prefix + "kept"): 9}}, tips: []uint64{9}}
	r.stored[0]["old"], r.stored[0]["kept"] = 1, 2
	m.gone = []string{"old"}
	b := r.batch(10, true, false, []uint64{0})
	if err := r.write(t.Context(), batch{expired: b.expired}); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.stored[0]["old"]; ok {
		t.Error("the expired entry is still in stored")
	}
	revs := r.fence.revs[0]
	if _, ok := revs[r.keyHash(prefix+"old")]; ok || len(revs) != 1 || revs[r.keyHash(prefix+"kept")] != 9 {
		t.Errorf("fence revisions after the expiry: %v", revs)
	}
}
