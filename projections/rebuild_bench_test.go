package projections_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/licensebus/licensebus/internal/bustest"
	"github.com/licensebus/licensebus/projections"
	"github.com/licensebus/licensebus/projections/devices"
	"github.com/licensebus/licensebus/projections/licensing"
	"github.com/licensebus/licensebus/projections/rollouts"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// A rebuild of the product's models over the events of license purchases
// and activations on an embedded server: what `projections rebuild` costs
// per event, without the bench command's other phases. Run with:
// go test -run '^$' -bench RunnerRebuild -benchmem ./projections/
func BenchmarkRunnerRebuild(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	js := bustest.JetStream(b)
	n := publishPurchases(ctx, b, js, 2000) // 5 events each
	r := projections.NewRunner(js, zerolog.Nop(), licensing.New(time.Now), devices.New(), rollouts.New(), licensing.NewOutcomes())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	}()
	if err := r.CatchUp(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		if err := r.Rebuild(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/time.Since(start).Seconds(), "events/s")
}

// publishPurchases appends, per license, a registration, the license's
// purchase, binding and activation (each activation also the outcome of
// its command): 5 events each (the registration's own outcome included).
func publishPurchases(ctx context.Context, tb testing.TB, js jetstream.JetStream, licenses int) int {
	tb.Helper()
	customer := uuid.NewString()
	at := time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)
	var futures []jetstream.PubAckFuture
	add := func(t events.Type, d events.Data, corr string) {
		m, err := events.New(t, d, events.Meta{ID: uuid.NewString(), Source: events.DeviceSource, CorrelationID: corr, CausationID: corr,
			Actor: "bench", Time: at})
		if err != nil {
			tb.Fatal(err)
		}
		f, err := js.PublishMsgAsync(bus.Msg(m))
		if err != nil {
			tb.Fatal(err)
		}
		futures = append(futures, f)
	}
	for i := range licenses {
		ic, lid, cmd := fmt.Sprintf("SS-%05d", i), uuid.NewString(), uuid.NewString()
		add(events.RegisteredType, &events.Registered{InstallCode: ic, Name: "SC " + ic, Version: "3.4"}, uuid.NewString())
		add(events.LicenseAddedType, &events.LicenseAdded{LicenseID: lid, CustomerID: customer, Kind: events.Capacity, Devices: 50, AddedAt: at}, uuid.NewString())
		add(events.ActivationRequestedType, &events.ActivationRequested{InstallCode: ic, CustomerID: customer, LicenseID: lid}, cmd)
		add(events.LicenseBoundType, &events.LicenseBound{LicenseID: lid, CustomerID: customer, InstallCode: ic, Kind: events.Capacity, Devices: 50, BoundAt: at}, cmd)
		add(events.LicenseActivatedType, &events.LicenseActivated{InstallCode: ic, LicenseID: lid, Kind: events.Capacity, Devices: 50, ActivatedAt: at}, cmd)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			tb.Fatal(err)
		case <-ctx.Done():
			tb.Fatal(ctx.Err())
		}
	}
	return len(futures)
}
