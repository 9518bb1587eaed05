package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/licensebus/licensebus/internal/bustest"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/licensebus/licensebus/projections"
	"github.com/licensebus/licensebus/projections/licensing"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Ensure WaitAny returns the outcome stored under any of its keys, also
// one stored while it waits, and ends with ctx when there is none.
func TestWaitAny(t *testing.T) {
	js := bustest.JetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: projections.Bucket(licensing.NewOutcomes())})
	if err != nil {
		t.Fatal(err)
	}
	put := func(key, status string) {
		b, _ := json.Marshal(licensing.Outcome{CorrelationID: key, Status: status})
		if _, err := kv.Put(ctx, key, b); err != nil {
			t.Fatal(err)
		}
	}
	// The outcome query, answered as serve answers it.
	sub, err := js.Conn().Subscribe(client.APIPrefix+client.ScopeFleet+"."+client.QueryOutcome, func(m *nats.Msg) {
		var p client.Params
		_ = json.Unmarshal(m.Data, &p)
		var r client.Response
		out, err := client.AwaitOutcome(ctx, kv, p)
		switch {
		case errors.Is(err, client.ErrPending):
			r.Error = &client.APIError{Code: client.CodePending, Message: err.Error()}
		case err != nil:
			r.Error = &client.APIError{Code: "internal", Message: err.Error()}
		default:
			r.Data, _ = json.Marshal(out)
		}
		b, _ := json.Marshal(r)
		_ = m.Respond(b)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	c, err := client.New(ctx, js.Conn(), "test")
	if err != nil {
		t.Fatal(err)
	}
	put("cmd-1", "accepted")
	if out, err := c.WaitAny(ctx, "cmd-1", client.RolloutID("cmd-1")); err != nil || out.CorrelationID != "cmd-1" {
		t.Fatalf("WaitAny=%+v, %v; want the outcome under cmd-1", out, err)
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		put(client.RolloutID("cmd-2"), "rejected")
	}()
	if out, err := c.WaitAny(ctx, "cmd-2", client.RolloutID("cmd-2")); err != nil || out.CorrelationID != client.RolloutID("cmd-2") || out.Status != "rejected" {
		t.Fatalf("WaitAny=%+v, %v; want the outcome stored under the rollout id while waiting", out, err)
	}
	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancelShort()
	if _, err := c.WaitAny(short, "cmd-3"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitAny without an outcome: %v, want the deadline", err)
	}
	if client.RolloutID("cmd-1") == client.RolloutID("cmd-2") || client.RolloutID("cmd-1") != client.RolloutID("cmd-1") {
		t.Fatal("RolloutID is not a function of the command id alone")
	}
}
