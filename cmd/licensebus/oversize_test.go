package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/handlers/cloud"
	"github.com/licensebus/licensebus/handlers/device"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// hugeCommand is a structured command of exactly size bytes whose data is
// a JSON string instead of an object: not a valid command, so it is
// rejected and dead-lettered.
func hugeCommand(typ events.Type, id string, size int) []byte {
	head := `{"specversion":"1.0","id":"` + id + `","source":"/outsider","type":"` + string(typ) + `","datacontenttype":"application/json","data":"`
	tail := `"}`
	return []byte(head + strings.Repeat("x", size-len(head)-len(tail)) + tail)
}

// Ensure a command too large for its dead-letter copy to fit in a NATS
// message is dead-lettered once, as a reference (where it is, its size, its
// SHA-256, its first KiB and the error), and settled, so the stream flows
// behind it. The commands stream refuses such a command when it is
// published; one stored before that limit (as an older deployment's stream
// holds) must not be redelivered forever either, so the test then lifts
// the limit.
func TestOversizedCommandIsDeadLetteredAsReference(t *testing.T) {
	s := mustServe(t, t.TempDir())
	c, js := mustClient(t, s.URL())
	ctx := ctxFor(t, 2*time.Minute)
	// 8 MiB is the embedded server's payload limit: the body leaves room
	// for the headers only.
	const size = 8<<20 - 200
	big := &nats.Msg{Subject: "lb.cmd.device.IC-X.activate_license", Data: hugeCommand(events.ActivateLicenseType, uuid.NewString(), size),
		Header: nats.Header{"Content-Type": {events.ContentTypeStructured}}}
	var apiErr *jetstream.APIError
	if _, err := js.PublishMsg(ctx, big); !errors.As(err, &apiErr) || apiErr.ErrorCode != jetstream.JSErrCodeStreamMessageExceedsMaximum {
		t.Fatalf("publish of %d bytes: %v, want refused for its size", len(big.Data), err)
	}

	str, err := js.Stream(ctx, events.CommandsStream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := str.CachedInfo().Config
	cfg.MaxMsgSize = -1
	if _, err := mustService(t, s.URL()).UpdateStream(ctx, cfg); err != nil { // only serve may change a stream
		t.Fatal(err)
	}
	tests := []struct {
		name, subject, consumer string
		typ                     events.Type
	}{
		{"device side", "lb.cmd.device.IC-X.activate_license", device.CommandsConsumer, events.ActivateLicenseType},
		{"cloud side", "lb.cmd.cloud.license_add", cloud.CommandsConsumer, events.AddLicenseType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := uuid.NewString()
			body := hugeCommand(tt.typ, id, size)
			before := subjectCount(t, js, events.DeadLettersStream, "lb.dlq.commands")
			ack, err := js.PublishMsg(ctx, &nats.Msg{Subject: tt.subject, Data: body,
				Header: nats.Header{"Content-Type": {events.ContentTypeStructured}, nats.MsgIdHdr: {id}}})
			if err != nil {
				t.Fatalf("publish %d bytes: %v", len(body), err)
			}
			out, err := c.Wait(ctx, id)
			if err != nil {
				t.Fatalf("no outcome: %v", err)
			}
			if out.Status != "rejected" || out.Reason != string(events.ReasonInvalidData) {
				t.Fatalf("outcome=%s %s, want rejected %s", out.Status, out.Reason, events.ReasonInvalidData)
			}
			waitIdle(t, js, events.CommandsStream, tt.consumer)
			if got := subjectCount(t, js, events.DeadLettersStream, "lb.dlq.commands"); got != before+1 {
				t.Fatalf("dead letters=%d, want %d", got, before+1)
			}
			dls, err := js.Stream(ctx, events.DeadLettersStream)
			if err != nil {
				t.Fatal(err)
			}
			dl, err := dls.GetLastMsgForSubject(ctx, "lb.dlq.commands")
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(body)
			want := map[string]string{
				bus.HdrDLQStream:    events.CommandsStream,
				bus.HdrDLQSeq:       strconv.FormatUint(ack.Sequence, 10),
				bus.HdrDLQSubject:   tt.subject,
				bus.HdrDLQSize:      strconv.Itoa(len(body)),
				bus.HdrDLQSHA256:    hex.EncodeToString(sum[:]),
				bus.HdrDLQTruncated: "true",
			}
			for k, v := range want {
				if got := dl.Header.Get(k); got != v {
					t.Errorf("dead letter header %s=%q, want %q", k, got, v)
				}
			}
			if dl.Header.Get(bus.HdrDLQError) == "" {
				t.Error("dead letter without its error")
			}
			if string(dl.Data) != string(body[:1024]) {
				t.Errorf("dead letter payload is %d bytes, want the first KiB of the command", len(dl.Data))
			}
		})
	}
	// The stream flows behind them.
	f := mustFleet(t, c, "BIG", 1)
	mustLicense(t, c, f.customer, events.Capacity)
	for _, name := range []string{cloud.CommandsConsumer, device.CommandsConsumer} {
		cons, err := js.Consumer(ctx, events.CommandsStream, name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.NumRedelivered > 0 || info.NumAckPending > 0 {
			t.Fatalf("consumer %s: %d redelivered, %d awaiting ack", name, info.NumRedelivered, info.NumAckPending)
		}
	}
}
