package bus_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/licensebus/licensebus/internal/bustest"
	"github.com/nats-io/nats.go/jetstream"
)

// mustJetStream starts an embedded server with the licensebus streams.
func mustJetStream(tb testing.TB) jetstream.JetStream { return bustest.JetStream(tb) }

func bound(tb testing.TB, lid, ic string) *events.Message {
	tb.Helper()
	m, err := events.New(events.LicenseBoundType, &events.LicenseBound{LicenseID: lid, InstallCode: ic, Kind: events.Capacity, Devices: 1},
		events.Meta{ID: uuid.NewString(), Source: "/test"})
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// Ensure expected-sequence appends let exactly one of many concurrent
// writers with the same expectation through.
func TestAppendConcurrentExpectation(t *testing.T) {
	js := mustJetStream(t)
	ctx := context.Background()
	app, err := bus.NewAppender(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	lid := uuid.NewString()
	filter := events.AggregateFilter("license", lid)
	const writers = 32
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, conflicts := 0, 0
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := app.Append(ctx, bound(t, lid, "IC"+string(rune('A'+i%26))), filter, 0)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, bus.ErrConcurrency):
				conflicts++
			default:
				t.Errorf("Append: %v", err)
			}
		}()
	}
	wg.Wait()
	if ok != 1 || conflicts != writers-1 {
		t.Fatalf("ok=%d conflicts=%d, want 1 and %d", ok, conflicts, writers-1)
	}
}

// Ensure a retried append returns the stored sequence whether JetStream
// answers "duplicate" or, because the expectation is checked first, "wrong
// last sequence" — and that a different message is a conflict.
func TestAppendRetryIsNotAConflict(t *testing.T) {
	js := mustJetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	app, err := bus.NewAppender(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	lid := uuid.NewString()
	filter := events.AggregateFilter("license", lid)
	first := bound(t, lid, "IC1")
	seq, err := app.Append(ctx, first, filter, 0)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		msg    *events.Message
		expect uint64
		want   uint64
		err    error
	}{
		{"same expectation (stale)", first, 0, seq, nil},
		{"expectation of its own seq", first, seq, seq, nil},
		{"another message, stale", bound(t, lid, "IC2"), 0, 0, bus.ErrConcurrency},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := app.Append(ctx, tt.msg, filter, tt.expect)
			if !errors.Is(err, tt.err) || (tt.err == nil && got != tt.want) {
				t.Fatalf("Append=(%d, %v), want (%d, %v)", got, err, tt.want, tt.err)
			}
		})
	}
}
