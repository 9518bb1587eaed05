package bus

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Ensure a consumer that replaces a durable (one split up or renamed)
// starts after what the durable had settled, keeps that start when the
// process starts again, and the replaced durable is gone; with nothing to
// replace, it starts at the beginning of the stream. A durable that never
// matched anything (its ack floor still 0) has settled the whole stream.
func TestEnsureConsumersTakesOverReplaced(t *testing.T) {
	tests := []struct {
		name    string
		old     []string // the replaced durable's subjects; none: no durable
		acked   int      // how many of its deliveries it acked, in order
		want    string   // the first message the new consumer gets
		wantSeq uint64
	}{
		{"nothing to replace", nil, 0, "a0", 1},
		{"replaced durable acked nothing", []string{"t.a", "t.b"}, 0, "a0", 1},
		{"replaced durable acked four", []string{"t.a", "t.b"}, 4, "a2", 5},
		{"replaced durable never matched", []string{"t.c"}, 0, "a3", 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			ns, err := StartServer(ServerConfig{StoreDir: t.TempDir(), Listen: "127.0.0.1:-1", Logger: zerolog.Nop()})
			if err != nil {
				t.Fatal(err)
			}
			nc, err := nats.Connect(ns.ClientURL())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { nc.Close(); ns.Shutdown(); ns.WaitForShutdown() })
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
				t.Fatal(err)
			}
			// a0 b0 a1 b1 a2 b2: sequences 1..6.
			for i := range 3 {
				for _, s := range []string{"a", "b"} {
					if _, err := js.Publish(ctx, "t."+s, []byte(s+string(rune('0'+i)))); err != nil {
						t.Fatal(err)
					}
				}
			}
			if tt.old != nil {
				old, err := js.CreateConsumer(ctx, "T", jetstream.ConsumerConfig{Durable: "old", FilterSubjects: tt.old, AckPolicy: jetstream.AckExplicitPolicy})
				if err != nil {
					t.Fatal(err)
				}
				if tt.acked > 0 {
					batch, err := old.Fetch(tt.acked)
					if err != nil {
						t.Fatal(err)
					}
					for m := range batch.Messages() {
						if err := m.DoubleAck(ctx); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			ep := Endpoint{Stream: "T", Consumer: jetstream.ConsumerConfig{Durable: "new-a", FilterSubjects: []string{"t.a"}}, Replaces: []string{"old"}}
			for start := range 2 { // a second start finds the new consumer and keeps its start
				cs, err := ensureConsumers(ctx, js, []Endpoint{ep})
				if err != nil {
					t.Fatalf("start %d: %v", start+1, err)
				}
				info, err := cs[0].Info(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if info.NumPending+uint64(info.NumAckPending) == 0 && start == 0 && tt.wantSeq <= 6 {
					t.Fatalf("new consumer has nothing pending")
				}
			}
			// Taken over: a message after it comes next when nothing before.
			if _, err := js.Publish(ctx, "t.a", []byte("a3")); err != nil {
				t.Fatal(err)
			}
			if _, err := js.Consumer(ctx, "T", "old"); !errors.Is(err, jetstream.ErrConsumerNotFound) {
				t.Fatalf("replaced durable: %v, want it deleted", err)
			}
			c, err := js.Consumer(ctx, "T", "new-a")
			if err != nil {
				t.Fatal(err)
			}
			m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
			if err != nil {
				t.Fatal(err)
			}
			md, _ := m.Metadata()
			if string(m.Data()) != tt.want || md.Sequence.Stream != tt.wantSeq {
				t.Fatalf("first delivery %q at seq %d, want %q at %d", m.Data(), md.Sequence.Stream, tt.want, tt.wantSeq)
			}
		})
	}
}
