package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/licensebus/licensebus/events"
	trail "github.com/licensebus/licensebus/events/audit"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/nats-io/nats.go"
)

// mustMessage is a message as licensebus writes it (structured mode).
func mustMessage(tb testing.TB, t events.Type, d events.Data, meta events.Meta) *nats.Msg {
	return bus.Msg(mustEvent(tb, t, d, meta))
}

func mustEvent(tb testing.TB, t events.Type, d events.Data, meta events.Meta) *events.Message {
	tb.Helper()
	m, err := events.NewCommand(t, d, meta)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// Ensure an entry says who, what, when and why for every kind of message,
// including ones that are not CloudEvents, and never grows past its limits.
func TestDerive(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 890, time.UTC)
	lid, cid := uuid.NewString(), uuid.NewString()
	// A command as a client may send it: binary mode.
	activate := bus.BinaryMsg(mustEvent(t, events.ActivateLicenseType, &events.ActivateLicense{InstallCode: "IC-1", LicenseID: lid},
		events.Meta{ID: "cmd-1", Source: "/cli", CorrelationID: "cmd-1", Actor: "user:ann", Time: at}))
	rejected := mustMessage(t, events.RejectedType, &events.Rejected{CommandID: "cmd-1", CommandType: string(events.ActivateLicenseType),
		Reason: events.ReasonAlreadyActive, Message: "already active", InstallCode: "IC-1", LicenseID: lid},
		events.Meta{ID: "rej-1", Source: "/dev", CorrelationID: "cmd-1", CausationID: "cmd-1", Actor: "/dev", Time: at})
	transferred := mustMessage(t, events.LicensesTransferredType, &events.LicensesTransferred{InstallCode: "IC-1", LicenseIDs: []string{lid, "x"}},
		events.Meta{ID: "ev-2", Source: "/dev", CorrelationID: "cmd-9", CausationID: "ev-1", Actor: "/dev"})
	structured := fmt.Sprintf(`{"specversion":"1.0","id":"s-1","source":"/outsider","type":%q,"actor":"svc:x","time":"2026-03-04T06:06:07+01:00","data":{"install_code":"IC-2","customer_id":%q}}`,
		events.SetCustomerIDType, cid)
	badTime := nats.Header{"ce-specversion": {"1.0"}, "ce-id": {"b-1"}, "ce-source": {"/o"}, "ce-type": {string(events.RegisterType)},
		"ce-time": {"yesterday"}, "ce-actor": {"user:b%20c"}}
	huge := strings.Repeat("x", 3*trail.MaxData)

	tests := []struct {
		name   string
		stream string
		msg    *nats.Msg
		check  func(t *testing.T, e trail.Entry)
	}{
		{"command", events.CommandsStream, activate, func(t *testing.T, e trail.Entry) {
			want := trail.Entry{Kind: trail.KindCommand, Mode: "binary", ID: "cmd-1", Type: string(events.ActivateLicenseType), Source: "/cli",
				Time: "2026-03-04T05:06:07.00000089Z", Actor: "user:ann", CorrelationID: "cmd-1", InstallCode: "IC-1", LicenseID: lid}
			same(t, e, want)
		}},
		{"rejection", events.EventsStream, rejected, func(t *testing.T, e trail.Entry) {
			want := trail.Entry{Kind: trail.KindRejection, Mode: "structured", ID: "rej-1", Type: string(events.RejectedType), Source: "/dev", Actor: "/dev", Time: "2026-03-04T05:06:07.00000089Z",
				CorrelationID: "cmd-1", CausationID: "cmd-1", InstallCode: "IC-1", LicenseID: lid, Reason: string(events.ReasonAlreadyActive),
				Message: "already active", CommandID: "cmd-1", CommandType: string(events.ActivateLicenseType)}
			same(t, e, want)
		}},
		{"license ids", events.EventsStream, transferred, func(t *testing.T, e trail.Entry) {
			if e.Kind != trail.KindEvent || len(e.LicenseIDs) != 2 || e.LicenseIDs[0] != lid || e.CausationID != "ev-1" || e.CorrelationID != "cmd-9" {
				t.Fatalf("entry %+v", e)
			}
		}},
		{"structured", events.CommandsStream, &nats.Msg{Subject: "lb.cmd.device.IC-2.set_customer_id",
			Header: nats.Header{"Content-Type": {"application/cloudevents+json"}}, Data: []byte(structured)}, func(t *testing.T, e trail.Entry) {
			want := trail.Entry{Kind: trail.KindCommand, Mode: "structured", ID: "s-1", Type: string(events.SetCustomerIDType), Source: "/outsider",
				Time: "2026-03-04T05:06:07Z", Actor: "svc:x", CorrelationID: "s-1", InstallCode: "IC-2", CustomerID: cid}
			same(t, e, want)
		}},
		{"not a CloudEvent", events.CommandsStream, &nats.Msg{Subject: "lb.cmd.cloud.customer_create", Data: []byte(`{"name":"x"}`)}, func(t *testing.T, e trail.Entry) {
			if e.Mode != "" || e.ID != "" || !strings.HasPrefix(e.Invalid, string(events.ReasonMalformed)+": ") || string(e.Data) != `{"name":"x"}` ||
				e.RejectionID != events.DeriveID("lb.cmd.cloud.customer_create-7", "rejected") {
				t.Fatalf("entry %+v", e)
			}
		}},
		{"malformed envelope", events.CommandsStream, &nats.Msg{Subject: "lb.cmd.device.IC-3.register", Header: badTime, Data: []byte("not json")}, func(t *testing.T, e trail.Entry) {
			if e.ID != "b-1" || e.Actor != "user:b c" || e.Time != "yesterday" || e.Invalid == "" || e.Data != nil ||
				e.DataBase64 != "bm90IGpzb24=" || e.RejectionID == "" {
				t.Fatalf("entry %+v", e)
			}
		}},
		{"huge", events.CommandsStream, &nats.Msg{Subject: "lb.cmd.cloud.customer_create",
			Header: nats.Header{"ce-specversion": {"1.0"}, "ce-id": {huge}, "ce-source": {"/o"}, "ce-type": {string(events.CreateCustomerType)}},
			Data:   []byte(`{"name":"` + huge + `"}`)}, func(t *testing.T, e trail.Entry) {
			if !e.DataTruncated || e.Data != nil || len(e.ID) > trail.MaxField || !strings.HasSuffix(e.ID, "[truncated]") {
				t.Fatalf("entry data %d bytes, truncated %v, id %d bytes", len(e.Data), e.DataTruncated, len(e.ID))
			}
			raw, err := trail.Seal(&e, trail.GenesisHash)
			if err != nil || len(raw) > 2*trail.MaxData {
				t.Fatalf("sealed %d bytes, %v", len(raw), err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := SourceMsg{Stream: tt.stream, Seq: 7, Subject: tt.msg.Subject, Time: at, Header: tt.msg.Header, Data: tt.msg.Data}
			e := Derive(m)
			if e.Stream != tt.stream || e.StreamSeq != 7 || e.StreamTime != "2026-03-04T05:06:07.00000089Z" || e.Subject != tt.msg.Subject || len(e.MessageSHA256) != 64 {
				t.Fatalf("source fields of %+v", e)
			}
			tt.check(t, e)
			// The digest ignores transport headers a direct get adds.
			h := nats.Header{"Nats-Stream": {"X"}, "Nats-Sequence": {"7"}}
			for k, v := range tt.msg.Header {
				h[k] = v
			}
			if d := Derive(SourceMsg{Stream: m.Stream, Seq: 7, Subject: m.Subject, Time: at, Header: h, Data: m.Data}); d.MessageSHA256 != e.MessageSHA256 {
				t.Fatal("digest depends on Nats-* headers")
			}
		})
	}
}

// same compares the envelope, id and reason fields.
func same(t *testing.T, got, want trail.Entry) {
	t.Helper()
	got.Stream, got.StreamSeq, got.StreamTime, got.Subject, got.MessageSHA256, got.Data = "", 0, "", "", "", nil
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Fatalf("entry\n got %s\nwant %s", g, w)
	}
}

// Ensure a sealed entry opens as intact and any change to it shows.
func TestSealOpen(t *testing.T) {
	e := Derive(SourceMsg{Stream: events.CommandsStream, Seq: 1, Subject: "lb.cmd.cloud.customer_create", Data: []byte(`{"name":"a"}`)})
	e.Seq, e.Cursor = 1, trail.Cursor{Commands: 1}
	raw, err := trail.Seal(&e, trail.GenesisHash)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok, err := trail.Open(raw); err != nil || !ok || got.Hash != e.Hash {
		t.Fatalf("Open(sealed)=%v %v", ok, err)
	}
	for _, change := range []struct{ from, to string }{
		{`"seq":1`, `"seq":2`}, {`"name":"a"`, `"name":"b"`}, {`"kind":"command"`, `"kind":"command","extra":true`},
	} {
		if _, ok, err := trail.Open([]byte(strings.Replace(string(raw), change.from, change.to, 1))); err != nil || ok {
			t.Errorf("%s → %s: ok=%v err=%v, want a hash mismatch", change.from, change.to, ok, err)
		}
	}
	for _, junk := range []string{`[]`, `{"seq":1}`, `nope`} {
		if _, _, err := trail.Open([]byte(junk)); err == nil {
			t.Errorf("Open(%s) accepted", junk)
		}
	}
}

// Ensure the digest hashes exactly the bytes it always did (entries in
// existing trails are verified against it): the non-Nats headers sorted,
// one "key: value" line each, a blank line, the payload.
func TestDigestBytes(t *testing.T) {
	tests := []struct {
		name string
		h    nats.Header
		body string
		want string // what is hashed
	}{
		{"no headers", nats.Header{}, "{}", "\r\n{}"},
		{"sorted, Nats-* left out in any case", nats.Header{"ce-type": {"t"}, "Nats-Msg-Id": {"x"}, "NATS-Expected-Stream": {"s"},
			"ce-id": {"1"}, "natsx": {"kept"}}, "body", "ce-id: 1\r\nce-type: t\r\nnatsx: kept\r\n\r\nbody"},
		{"every value of a key", nats.Header{"k": {"a", "b"}}, "", "k: a\r\nk: b\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sum := sha256.Sum256([]byte(tt.want))
			if got, want := digest(tt.h, []byte(tt.body)), hex.EncodeToString(sum[:]); got != want {
				t.Fatalf("digest = %s, want the SHA-256 of %q = %s", got, tt.want, want)
			}
		})
	}
}
