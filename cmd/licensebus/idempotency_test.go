package main

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/handlers/device"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/nats-io/nats.go"
)

// Ensure a repeated command (same CloudEvent id) has exactly one effect and
// gets the first outcome back: within JetStream's dedupe window, where the
// stream drops the repeat, and after it, where the handler recognises the id.
func TestRepeatedCommandHasOneEffect(t *testing.T) {
	repeatedCommand(t, mustServe(t, t.TempDir()).URL())
}

// repeatedCommand is TestRepeatedCommandHasOneEffect against the licensebus
// that url reaches.
func repeatedCommand(t *testing.T, url string) {
	c, js := mustClient(t, url)
	f := mustFleet(t, c, "DUP", 1)
	ic := f.servers[0]
	lid := mustLicense(t, c, f.customer, events.Capacity)
	ctx := ctxFor(t, 30*time.Second)

	tests := []struct {
		name    string
		cmd     events.Data
		want    string // first outcome status
		aggSubj string
	}{
		{"accepted activation", &events.ActivateLicense{InstallCode: ic, LicenseID: lid}, "accepted", "lb.evt.smartserver." + ic + ".>"},
		{"rejected activation", &events.ActivateLicense{InstallCode: ic, LicenseID: uuid.NewString()}, "rejected", "lb.evt.rejected.>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := uuid.NewString()
			first, err := c.Send(ctx, events.ActivateLicenseType, tt.cmd, client.SendOptions{ID: id})
			if err != nil {
				t.Fatal(err)
			}
			out1, err := c.Wait(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if out1.Status != tt.want {
				t.Fatalf("first outcome=%s (%s), want %s", out1.Status, out1.Message, tt.want)
			}
			before := subjectCount(t, js, events.EventsStream, "lb.evt.>")

			// Within the window: JetStream reports a duplicate of the first.
			again, err := c.Send(ctx, events.ActivateLicenseType, tt.cmd, client.SendOptions{ID: id})
			if err != nil {
				t.Fatal(err)
			}
			if !again.Duplicate || again.Seq != first.Seq {
				t.Fatalf("repeat: duplicate=%v seq=%d, want duplicate of seq %d", again.Duplicate, again.Seq, first.Seq)
			}
			// After the window: the same CloudEvent is stored again (as a
			// new Nats-Msg-Id would be); the handler must still ignore it.
			m, err := events.NewCommand(events.ActivateLicenseType, tt.cmd, events.Meta{ID: id, Source: "/test"})
			if err != nil {
				t.Fatal(err)
			}
			msg := bus.Msg(m)
			msg.Header.Set(nats.MsgIdHdr, id+"-after-window")
			if _, err := js.PublishMsg(ctx, msg); err != nil {
				t.Fatal(err)
			}
			waitIdle(t, js, events.CommandsStream, device.CommandsConsumer)
			waitReacted(t, js, device.AnswersReactor)

			if after := subjectCount(t, js, events.EventsStream, "lb.evt.>"); after != before {
				t.Fatalf("events after repeats=%d, want %d (no second effect)", after, before)
			}
			out2, err := c.Wait(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if out2.EventID != out1.EventID || out2.Status != out1.Status {
				t.Fatalf("repeat outcome=%+v, want the first %+v", out2, out1)
			}
		})
	}
}
