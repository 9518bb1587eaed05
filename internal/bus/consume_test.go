package bus_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/licensebus/licensebus/internal/bustest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Ensure no message of a durable consumer is delivered without bound: one
// whose handler keeps failing and whose dead letter cannot be stored is
// settled at the delivery limit, and one that came back past the limit
// (the process died while handling it) is dead-lettered without being
// handled again.
func TestConsumeBoundsDeliveries(t *testing.T) {
	tests := []struct {
		name string
		// noDLQ deletes the dead-letter stream, so every dead letter fails.
		noDLQ bool
		// crashed is how often the message was delivered and never settled
		// before Consume starts.
		crashed   int
		wantCalls int64 // handler calls
		wantDead  uint64
	}{
		{"dead letter fails: settled at the limit", true, 0, 4, 0},
		{"delivered past the limit: dead-lettered unhandled", false, 5, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			js := bustest.JetStream(t)
			id := uuid.NewString()
			if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: "lb.cmd.cloud.customer_create", Data: []byte(`{}`),
				Header: nats.Header{nats.MsgIdHdr: {id}}}); err != nil {
				t.Fatal(err)
			}
			// As serve creates durables today: no delivery limit of their own.
			cons, err := js.CreateOrUpdateConsumer(ctx, events.CommandsStream, jetstream.ConsumerConfig{
				Durable: "limit", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 200 * time.Millisecond,
				FilterSubjects: []string{events.CloudCommands},
			})
			if err != nil {
				t.Fatal(err)
			}
			for range tt.crashed {
				msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
				if err != nil {
					t.Fatal(err)
				}
				_ = msg // never settled: AckWait brings it back
			}
			if tt.noDLQ {
				if err := js.DeleteStream(ctx, events.DeadLettersStream); err != nil {
					t.Fatal(err)
				}
			}
			var calls atomic.Int64
			cctx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() {
				done <- bus.Consume(cctx, cons, bus.PoolConfig{Name: "limit", Workers: 1, MaxDeliveries: 2, MaxDeliver: 4,
					DeadLetters: bus.NewDeadLetters(js), Logger: zerolog.Nop()},
					func(context.Context, *bus.Delivery) error { calls.Add(1); return errors.New("keeps failing") })
			}()
			for {
				info, err := cons.Info(ctx)
				if ctx.Err() != nil {
					t.Fatalf("never settled after %d handler calls", calls.Load())
				}
				if err != nil {
					t.Fatal(err)
				}
				if info.NumPending == 0 && info.NumAckPending == 0 && info.AckFloor.Stream == 1 {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			stop()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if got := calls.Load(); got != tt.wantCalls {
				t.Fatalf("handler calls=%d, want %d", got, tt.wantCalls)
			}
			if tt.noDLQ {
				return
			}
			st, err := bus.State(ctx, js, events.DeadLettersStream)
			if err != nil {
				t.Fatal(err)
			}
			if st.Msgs != tt.wantDead {
				t.Fatalf("dead letters=%d, want %d", st.Msgs, tt.wantDead)
			}
			dls, err := js.Stream(ctx, events.DeadLettersStream)
			if err != nil {
				t.Fatal(err)
			}
			dl, err := dls.GetMsg(ctx, st.LastSeq)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(dl.Header.Get(bus.HdrDLQError), bus.ErrDeliveryLimit.Error()) {
				t.Fatalf("dead letter error %q, want the delivery limit", dl.Header.Get(bus.HdrDLQError))
			}
		})
	}
}

// Ensure a reaction that keeps failing and cannot be dead-lettered ends at
// the delivery limit instead of holding its partition and the checkpoint
// for ever.
func TestReactorBoundsAttempts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	js := bustest.JetStream(t)
	m := must(events.New(events.ActivationRequestedType, &events.ActivationRequested{InstallCode: "IC-1", CustomerID: uuid.NewString(), LicenseID: uuid.NewString()},
		events.Meta{ID: uuid.NewString(), Source: "/test"}))
	ack, err := js.PublishMsg(ctx, bus.Msg(m))
	if err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteStream(ctx, events.DeadLettersStream); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	feed := bus.NewFeed(js, zerolog.Nop())
	fold := feed.Fold(func(uint64, *events.Message) {})
	r := feed.React(bus.ReactorConfig{
		Name: "test-limit", Workers: 1, MaxDeliveries: 2, MaxDeliver: 4, CheckpointEvery: 10 * time.Millisecond,
		Match:       func(*events.Message) bool { return true },
		Key:         func(m *events.Message) string { return m.Data.Key() },
		Handle:      func(context.Context, *bus.Delivery) error { calls.Add(1); return errors.New("keeps failing") },
		DeadLetters: bus.NewDeadLetters(js), Logger: zerolog.Nop(),
	})
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- bus.Serve(rctx, js, bus.Service{Fold: fold, Reactors: []*bus.Reactor{r}}) }()
	for r.Checkpoint() < ack.Sequence {
		if ctx.Err() != nil {
			t.Fatalf("checkpoint at %d after %d attempts, want %d", r.Checkpoint(), calls.Load(), ack.Sequence)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := calls.Load(); got != 4 {
		t.Fatalf("attempts=%d, want 4", got)
	}
}
