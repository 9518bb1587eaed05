package bench

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/licensebus/licensebus/projections"
	"github.com/licensebus/licensebus/projections/licensing"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Ensure the soak waits for a command's outcome, not its first event: a
// transfer has ended at licenses_transferred, not at transfer_requested
// (when the Manage Licenses view already stops showing the license active,
// and the SmartServer still refuses an activation), and a refused command
// stops the soak at once with the reason, not after a 30 s stall.
func TestSoakOutcomes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ns, err := InProcess(ctx, t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Stop()
	nc, err := nats.Connect(ns.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureStreams(ctx, js); err != nil {
		t.Fatal(err)
	}
	runner := projections.NewRunner(js, zerolog.Nop(), licensing.New(nil))
	ran := make(chan error, 1)
	go func() { ran <- runner.Run(ctx) }()
	defer func() { cancel(); <-ran }()

	b := &run{js: js, p: &Product{Projections: runner}}
	tgt := &target{ic: "SOAK-000000", lid: uuid.NewString()}
	outs, err := b.followOutcomes(ctx, []*target{tgt})
	if err != nil {
		t.Fatal(err)
	}
	defer outs.stop()
	appendEvent := func(typ events.Type, data events.Data) {
		t.Helper()
		id := uuid.NewString()
		m, err := events.New(typ, data, events.Meta{ID: id, Source: "/test", CorrelationID: id, CausationID: id, Actor: "test"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.PublishMsg(ctx, bus.Msg(m)); err != nil {
			t.Fatal(err)
		}
	}
	// pending says await has not returned after a while: it would have at
	// once, had it taken the event for the outcome.
	pending := func(n int) {
		t.Helper()
		wctx, wcancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer wcancel()
		if err := outs.await(wctx, tgt, n, "transfer_to_cloud"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("await(%d): %v; want it still waiting", n, err)
		}
	}

	appendEvent(events.LicenseActivatedType, &events.LicenseActivated{InstallCode: tgt.ic, LicenseID: tgt.lid, Kind: events.Capacity, Devices: 10, ActivatedAt: time.Now()})
	if err := outs.await(ctx, tgt, 1, "activate_license"); err != nil {
		t.Fatalf("await after license_activated: %v", err)
	}
	appendEvent(events.TransferRequestedType, &events.TransferRequested{InstallCode: tgt.ic, LicenseIDs: []string{tgt.lid}})
	appendEvent(events.LicenseReleasedType, &events.LicenseReleased{LicenseID: tgt.lid, InstallCode: tgt.ic, TransferredAt: time.Now()})
	pending(2)
	appendEvent(events.LicensesTransferredType, &events.LicensesTransferred{InstallCode: tgt.ic, LicenseIDs: []string{tgt.lid}, TransferredAt: time.Now()})
	if err := outs.await(ctx, tgt, 2, "transfer_to_cloud"); err != nil {
		t.Fatalf("await after licenses_transferred: %v", err)
	}
	if applied, head := runner.Applied(), mustLastSeq(t, js); applied < head {
		t.Errorf("await returned with the projections at %d of %d", applied, head)
	}
	appendEvent(events.RejectedType, &events.Rejected{CommandID: uuid.NewString(), CommandType: string(events.ActivateLicenseType),
		Reason: events.ReasonTransferInFlight, Message: "a transfer to the cloud is in progress", Aggregate: "smartserver", ID: tgt.ic, InstallCode: tgt.ic})
	err = outs.await(ctx, tgt, 3, "activate_license")
	if err == nil || !strings.Contains(err.Error(), string(events.ReasonTransferInFlight)) {
		t.Fatalf("await after a rejection: %v; want the rejection's reason", err)
	}
}

func mustLastSeq(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	seq, err := bus.LastSeq(context.Background(), js, events.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	return seq
}
