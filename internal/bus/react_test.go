package bus_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/licensebus/licensebus/internal/bustest"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// reactions records what a reactor handed over, and fails the first
// attempts at one event.
type reactions struct {
	mu       sync.Mutex
	seqs     []uint64
	failSeq  uint64
	failures uint64 // attempts at failSeq that fail
}

func (r *reactions) handle(_ context.Context, d *bus.Delivery) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if d.Seq == r.failSeq && d.Deliveries <= r.failures {
		return errors.New("transient")
	}
	r.seqs = append(r.seqs, d.Seq)
	return nil
}

func (r *reactions) handled() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := slices.Clone(r.seqs)
	slices.Sort(s)
	return s
}

// Ensure a reactor hands over every matching event once, whatever else the
// stream holds, retries a failing one and dead-letters it when it keeps
// failing, stores a checkpoint that covers the stream once all is done,
// and after a restart reacts only to what came after its checkpoint; and
// that on its first start it takes over from a durable it replaces at that
// durable's ack floor, and deletes it.
func TestReactor(t *testing.T) {
	tests := []struct {
		name     string
		failures uint64 // attempts at the second matching event that fail
		// replaced is the durable the reactor replaces: none, one that
		// acked the first two matching events, or one whose filter never
		// matched (its ack floor still 0, yet it has settled everything).
		replaced string
		shared   bool // another component started the feed and read it all first
		want     func(matching []uint64) []uint64
		dead     int
	}{
		{"every matching event once", 0, "", false, func(s []uint64) []uint64 { return s }, 0},
		{"a transient failure is retried", 2, "", false, func(s []uint64) []uint64 { return s }, 0},
		{"a lasting failure is dead-lettered", 99, "", false, func(s []uint64) []uint64 {
			return slices.DeleteFunc(slices.Clone(s), func(q uint64) bool { return q == s[1] })
		}, 1},
		{"takes over from a replaced durable", 0, "acked", false, func(s []uint64) []uint64 { return s[2:] }, 0},
		{"takes over from a durable that never matched", 0, "unmatched", false, func([]uint64) []uint64 { return nil }, 0},
		{"feed started by another component", 0, "", true, func(s []uint64) []uint64 { return s }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			js := bustest.JetStream(t)
			// Requests to react to, between events that are not.
			var matching []uint64
			publish := func(k int, from int) {
				for i := range k {
					ic := "IC-" + strconv.Itoa((from+i)%4)
					for _, m := range []*events.Message{
						must(events.New(events.RegisteredType, &events.Registered{InstallCode: ic, Name: "SC", Version: "3.4"}, events.Meta{ID: uuid.NewString(), Source: "/test"})),
						must(events.New(events.ActivationRequestedType, &events.ActivationRequested{InstallCode: ic, CustomerID: uuid.NewString(), LicenseID: uuid.NewString()}, events.Meta{ID: uuid.NewString(), Source: "/test"})),
					} {
						ack, err := js.PublishMsg(ctx, bus.Msg(m))
						if err != nil {
							t.Fatal(err)
						}
						if m.Type() == events.ActivationRequestedType {
							matching = append(matching, ack.Sequence)
						}
					}
				}
			}
			publish(6, 0)
			const old = "old-requests"
			if tt.replaced == "unmatched" {
				if _, err := js.CreateConsumer(ctx, events.EventsStream, jetstream.ConsumerConfig{Durable: old, AckPolicy: jetstream.AckExplicitPolicy,
					FilterSubjects: []string{"lb.evt.nothing.*.here"}}); err != nil {
					t.Fatal(err)
				}
			}
			if tt.replaced == "acked" {
				acked := matching[1]
				c, err := js.CreateConsumer(ctx, events.EventsStream, jetstream.ConsumerConfig{Durable: old, AckPolicy: jetstream.AckAllPolicy,
					FilterSubjects: []string{"lb.evt.smartserver.*.activation_requested"}})
				if err != nil {
					t.Fatal(err)
				}
				for {
					msg, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
					if err != nil {
						t.Fatal(err)
					}
					if md, _ := msg.Metadata(); md.Sequence.Stream == acked {
						if err := msg.DoubleAck(ctx); err != nil {
							t.Fatal(err)
						}
						break
					}
				}
			}
			rec := &reactions{failSeq: matching[1], failures: tt.failures}
			start := func() (*bus.Reactor, func()) {
				rctx, stop := context.WithCancel(ctx)
				feed := bus.NewFeed(js, zerolog.Nop())
				fold := feed.Fold(func(uint64, *events.Message) {})
				other := feed.Fold(func(uint64, *events.Message) {})
				r := feed.React(bus.ReactorConfig{
					Name: "test-requests", Workers: 3, MaxDeliveries: 3, Replaces: []string{old}, CheckpointEvery: 10 * time.Millisecond,
					Match:  func(m *events.Message) bool { return m.Type() == events.ActivationRequestedType },
					Key:    func(m *events.Message) string { return m.Data.Key() },
					Handle: rec.handle, DeadLetters: bus.NewDeadLetters(js), Logger: zerolog.Nop(),
				})
				done := make(chan error, 2)
				if tt.shared {
					go func() { done <- bus.Serve(rctx, js, bus.Service{Fold: other}) }()
					if err := other.CatchUp(ctx); err != nil {
						t.Fatal(err)
					}
				} else {
					done <- nil
				}
				go func() { done <- bus.Serve(rctx, js, bus.Service{Fold: fold, Reactors: []*bus.Reactor{r}}) }()
				return r, func() {
					stop()
					for range 2 {
						if err := <-done; err != nil {
							t.Errorf("Serve: %v", err)
						}
					}
				}
			}
			waitCheckpoint := func(r *bus.Reactor) {
				t.Helper()
				last := matching[len(matching)-1]
				for r.Checkpoint() < last {
					if ctx.Err() != nil {
						t.Fatalf("checkpoint at %d, want %d", r.Checkpoint(), last)
					}
					time.Sleep(20 * time.Millisecond)
				}
			}

			r, stop := start()
			waitCheckpoint(r)
			stop()
			want := tt.want(matching)
			if got := rec.handled(); !slices.Equal(got, want) {
				t.Fatalf("handled %v, want %v", got, want)
			}
			if tt.replaced != "" {
				if _, err := js.Consumer(ctx, events.EventsStream, old); !errors.Is(err, jetstream.ErrConsumerNotFound) {
					t.Fatalf("replaced durable: %v, want it deleted", err)
				}
			}
			st, err := bus.State(ctx, js, events.DeadLettersStream)
			if err != nil {
				t.Fatal(err)
			}
			if int(st.Msgs) != tt.dead {
				t.Fatalf("%d dead letters, want %d", st.Msgs, tt.dead)
			}

			// Restarted: only what came after the checkpoint.
			before := len(matching)
			publish(3, 1)
			r, stop = start()
			waitCheckpoint(r)
			stop()
			want = append(want, matching[before:]...)
			if got := rec.handled(); !slices.Equal(got, want) {
				t.Fatalf("after restart handled %v, want %v", got, want)
			}
		})
	}
}

func must(m *events.Message, err error) *events.Message {
	if err != nil {
		panic(fmt.Sprintf("build event: %v", err))
	}
	return m
}
