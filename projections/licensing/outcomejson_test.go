package licensing

import (
	"bytes"
	"testing"
	"time"

	"github.com/licensebus/licensebus/projections"
	"github.com/segmentio/encoding/json"
)

func TestAppendOutcomeMatchesMarshal(t *testing.T) {
	at := time.Date(2026, 11, 26, 4, 5, 6, 789000000, time.UTC)
	accepted := Outcome{CorrelationID: "10000000-0000-4000-8000-000000000001", Status: "accepted",
		EventID: "20000000-0000-4000-8000-000000000001", EventType: "io.licensebus.smartserver.license_activated",
		Time: at, Seq: 42, Data: json.RawMessage(`{"install_code":"SS-1","license_id":"00000000-0000-4000-8000-000000000001","devices":200}`)}
	with := func(f func(*Outcome)) Outcome { o := accepted; f(&o); return o }
	tests := []struct {
		name  string
		o     Outcome
		typed bool // the typed encoder takes it; otherwise the generic one does
	}{
		{"accepted", accepted, true},
		{"rejected with a reason", with(func(o *Outcome) { o.Status, o.Reason, o.Message = "rejected", "wrong_state", "already_bound" }), true},
		{"no data", with(func(o *Outcome) { o.Data = nil }), true},
		{"zero time", with(func(o *Outcome) { o.Time = time.Time{} }), true},
		{"time with an offset", with(func(o *Outcome) { o.Time = at.In(time.FixedZone("x", 5*3600+1800)) }), true},
		{"largest seq", with(func(o *Outcome) { o.Seq = 1<<64 - 1 }), true},
		{"message with spaces and quotes", with(func(o *Outcome) { o.Message = `license "x" is bound to SS-2` }), false},
		{"message with HTML characters", with(func(o *Outcome) { o.Message = "a<b>&c" }), false},
		{"non-ASCII message", with(func(o *Outcome) { o.Message = "gerät\u2028" }), false},
		{"control character in an id", with(func(o *Outcome) { o.CorrelationID = "a\tb" }), false},
		{"data with spaces in its strings", with(func(o *Outcome) { o.Data = json.RawMessage(`{"name":"Building 7 ","a":[" ",1]}`) }), true},
		{"data with spaces between tokens", with(func(o *Outcome) { o.Data = json.RawMessage(`{ "a" : "b c" }`) }), false},
		{"data with a space after a string", with(func(o *Outcome) { o.Data = json.RawMessage(`{"a":"b" }`) }), false},
		{"data with an escape", with(func(o *Outcome) { o.Data = json.RawMessage(`{"a":"\u00e9"}`) }), false},
		{"data with HTML characters", with(func(o *Outcome) { o.Data = json.RawMessage(`{"a":"<&>"}`) }), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := projections.MarshalEntry(tt.o)
			got, ok := appendOutcome(nil, &tt.o)
			if ok != tt.typed {
				t.Fatalf("typed = %v, want %v", ok, tt.typed)
			}
			if ok && !bytes.Equal(got, want) {
				t.Errorf("typed encoder:\n got %s\nwant %s", got, want)
			}
		})
	}
}

// Whatever the strings, the typed encoder either declines or writes what
// the generic encoder writes.
func FuzzAppendOutcome(f *testing.F) {
	f.Add("10000000-0000-4000-8000-000000000001", "wrong_state", "no such license", `{"a":1}`, uint64(7), int64(0))
	f.Add("x", "", "<&>", `{"b":[1,"c"]}`, uint64(0), int64(-1))
	f.Add("y", "r", "m", `{"n":"a b", "m":[" x" , "y "]}`, uint64(3), int64(5))
	f.Fuzz(func(t *testing.T, id, reason, msg, data string, seq uint64, nanos int64) {
		if !json.Valid([]byte(data)) {
			return // outcomes only hold decoded events' data
		}
		o := Outcome{CorrelationID: id, Status: "rejected", EventID: id, EventType: "t", Reason: reason, Message: msg,
			Time: time.Unix(0, nanos).UTC(), Seq: seq, Data: json.RawMessage(data)}
		got, ok := appendOutcome(nil, &o)
		if want := projections.MarshalEntry(o); ok && !bytes.Equal(got, want) {
			t.Errorf("typed encoder:\n got %s\nwant %s", got, want)
		}
	})
}
