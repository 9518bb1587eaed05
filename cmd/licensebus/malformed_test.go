package main

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/nats-io/nats.go"
)

// binaryCE builds ce-* headers by hand, as an outside client would.
func binaryCE(typ, id string) nats.Header {
	return nats.Header{
		"ce-specversion":     {"1.0"},
		"ce-id":              {id},
		"ce-source":          {"/outsider"},
		"ce-type":            {typ},
		"ce-datacontenttype": {"application/json"},
		nats.MsgIdHdr:        {id},
	}
}

// Ensure every kind of bad input gets its own reason — as a rejection event
// the caller can wait for, plus a dead letter for what is not a valid
// command — and that the stream keeps flowing behind it.
func TestBadInputIsRejectedWithReason(t *testing.T) {
	s := mustServe(t, t.TempDir())
	url := s.URL()
	c, js := mustClient(t, url)
	f := mustFleet(t, c, "BAD", 1)
	ic := f.servers[0]
	lid := mustLicense(t, c, f.customer, events.Capacity)
	other := mustCustomer(t, c, "other")
	foreign := mustLicense(t, c, other, events.Capacity)
	mustDo(t, c, events.RegisterType, &events.Register{InstallCode: "OLD", Name: "old", Version: "3.2"})
	mustDo(t, c, events.SetCustomerIDType, &events.SetCustomerID{InstallCode: "OLD", CustomerID: f.customer})
	mustDo(t, c, events.DownloadLicensesType, &events.DownloadLicenses{InstallCode: "OLD"})
	mustDo(t, c, events.RegisterType, &events.Register{InstallCode: "NOCUST", Name: "new", Version: "3.4"})
	act := func(ic, lid string) string { return `{"install_code":"` + ic + `","license_id":"` + lid + `"}` }

	tests := []struct {
		name    string
		subject string
		header  nats.Header // nil: not a CloudEvent
		body    string
		reason  events.Reason
		dlq     bool
	}{
		{"not a CloudEvent", "lb.cmd.cloud.customer_create", nil, `{"name":"x"}`, events.ReasonMalformed, true},
		{"unknown type", "lb.cmd.cloud.customer_create", binaryCE("io.example.unknown", uuid.NewString()), `{}`, events.ReasonUnknownType, true},
		{"event type on the command stream", "lb.cmd.device." + ic + ".activate_license", binaryCE(string(events.LicenseActivatedType), uuid.NewString()), act(ic, lid), events.ReasonUnknownType, true},
		{"data not JSON", "lb.cmd.cloud.license_add", binaryCE(string(events.AddLicenseType), uuid.NewString()), `{"kind":`, events.ReasonInvalidData, true},
		{"bad UUID", "lb.cmd.device." + ic + ".activate_license", binaryCE(string(events.ActivateLicenseType), uuid.NewString()), act(ic, "12345"), events.ReasonBadUUID, true},
		{"subject names another SmartServer", "lb.cmd.device." + ic + ".activate_license", binaryCE(string(events.ActivateLicenseType), uuid.NewString()), act("OLD", lid), events.ReasonSubjectMismatch, false},
		{"unknown SmartServer", "lb.cmd.device.NOPE.activate_license", binaryCE(string(events.ActivateLicenseType), uuid.NewString()), act("NOPE", lid), events.ReasonUnknownServer, false},
		{"unknown license", "lb.cmd.device." + ic + ".activate_license", binaryCE(string(events.ActivateLicenseType), uuid.NewString()), act(ic, uuid.NewString()), events.ReasonUnknownLicense, false},
		{"unknown customer", "lb.cmd.device." + ic + ".set_customer_id", binaryCE(string(events.SetCustomerIDType), uuid.NewString()), `{"install_code":"` + ic + `","customer_id":"` + uuid.NewString() + `"}`, events.ReasonUnknownCustomer, false},
		{"no Customer ID yet", "lb.cmd.device.NOCUST.activate_license", binaryCE(string(events.ActivateLicenseType), uuid.NewString()), act("NOCUST", lid), events.ReasonCustomerNotSet, false},
		{"license of another customer", "lb.cmd.device." + ic + ".activate_license", binaryCE(string(events.ActivateLicenseType), uuid.NewString()), act(ic, foreign), events.ReasonCustomerMismatch, false},
		{"SmartServer below 3.3", "lb.cmd.device.OLD.activate_license", binaryCE(string(events.ActivateLicenseType), uuid.NewString()), act("OLD", lid), events.ReasonNotRequired, false},
		{"nothing to transfer", "lb.cmd.device." + ic + ".transfer_to_cloud", binaryCE(string(events.TransferToCloudType), uuid.NewString()), `{"install_code":"` + ic + `"}`, events.ReasonNoActiveLicenses, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := ctxFor(t, 30*time.Second)
			dlqBefore := subjectCount(t, js, events.DeadLettersStream, "lb.dlq.>")
			rejBefore := subjectCount(t, js, events.EventsStream, "lb.evt.rejected.>")
			if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: tt.subject, Header: tt.header, Data: []byte(tt.body)}); err != nil {
				t.Fatalf("publish: %v", err)
			}
			if tt.header != nil {
				out, err := c.Wait(ctx, tt.header.Get("ce-id"))
				if err != nil {
					t.Fatal(err)
				}
				if out.Status != "rejected" || out.Reason != string(tt.reason) || out.Message == "" {
					t.Fatalf("outcome=%s %s %q, want rejected %s with a message", out.Status, out.Reason, out.Message, tt.reason)
				}
			} else {
				for subjectCount(t, js, events.EventsStream, "lb.evt.rejected.>") == rejBefore {
					if ctx.Err() != nil {
						t.Fatal("no rejection event for a message that is not a CloudEvent")
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
			if got := subjectCount(t, js, events.EventsStream, "lb.evt.rejected.>"); got != rejBefore+1 {
				t.Fatalf("rejection events=%d, want %d", got, rejBefore+1)
			}
			wantDLQ := dlqBefore
			if tt.dlq {
				wantDLQ++
			}
			if got := subjectCount(t, js, events.DeadLettersStream, "lb.dlq.>"); got != wantDLQ {
				t.Fatalf("dead letters=%d, want %d", got, wantDLQ)
			}
		})
	}

	// The dead letter keeps the message and says why.
	ctx := ctxFor(t, 10*time.Second)
	dl, err := js.Stream(ctx, events.DeadLettersStream)
	if err != nil {
		t.Fatal(err)
	}
	first, err := dl.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if string(first.Data) != `{"name":"x"}` || !strings.Contains(first.Header.Get("Licensebus-Error"), "not a CloudEvent") {
		t.Fatalf("dead letter=%q %v, want the original body and the error", first.Data, first.Header)
	}

	// Nothing is stuck behind the bad input: a good command still works.
	if _, err := c.Do(ctx, events.ActivateLicenseType, &events.ActivateLicense{InstallCode: ic, LicenseID: lid}, client.SendOptions{}); err != nil {
		t.Fatalf("activation after bad input: %v", err)
	}
	// And the CLI reports a refusal on stderr with a non-zero exit.
	r := cli(t, url, "smartserver", "set-customer-id", ic, "not-a-uuid")
	if r.code != exitRefused || !strings.Contains(r.err, "bad_uuid") {
		t.Fatalf("CLI bad UUID: exit %d stderr %q, want exit 1 with bad_uuid", r.code, r.err)
	}
}
