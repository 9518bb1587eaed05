package audit_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/licensebus/licensebus/events"
	trail "github.com/licensebus/licensebus/events/audit"
	"github.com/licensebus/licensebus/events/grant"
	"github.com/licensebus/licensebus/internal/audit"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// looseJetStream is an embedded server with the licensebus streams, the
// event stream without deny delete: the rights someone with the service
// identity has, who can also delete a stream and create it again.
func looseJetStream(tb testing.TB) jetstream.JetStream {
	tb.Helper()
	ns, err := bus.StartServer(bus.ServerConfig{StoreDir: tb.TempDir(), Listen: "127.0.0.1:-1", Logger: zerolog.Nop()})
	if err != nil {
		tb.Fatal(err)
	}
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { nc.Close(); ns.Shutdown(); ns.WaitForShutdown() })
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	for _, c := range bus.StreamConfigs() {
		c.DenyDelete, c.DenyPurge = false, false
		if _, err := js.CreateStream(context.Background(), c); err != nil {
			tb.Fatal(err)
		}
	}
	return js
}

// anchoredTrail writes a trail of 40 source messages with the auditor
// checkpointing every 7 entries (acks settled two at a time), stops it (a last checkpoint), and returns
// the key that signed.
func anchoredTrail(tb testing.TB, js jetstream.JetStream) grant.Key {
	tb.Helper()
	_, priv, _ := ed25519.GenerateKey(nil)
	key := grant.NewKey(priv)
	publishMany(tb, js, 20)
	signingAuditor(tb, js, key)
	return key
}

// signingAuditor runs an auditor that signs checkpoints with key until the
// trail has caught up, then stops it.
func signingAuditor(tb testing.TB, js jetstream.JetStream, key grant.Key) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- audit.New(audit.Config{JS: js, Logger: logger(tb), Key: func() grant.Key { return key }, CheckpointEvery: 7, InFlight: 2}).Run(ctx)
	}()
	waitCaughtUp(tb, js)
	cancel()
	if err := <-done; err != nil {
		tb.Fatal(err)
	}
}

// verifyAnchored verifies the live trail against its sources and its
// latest checkpoint, as audit verify does.
func verifyAnchored(tb testing.TB, js jetstream.JetStream, key grant.Key) (trail.Report, []trail.Checkpoint) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stored, err := audit.ReadCheckpoints(ctx, js)
	if err != nil {
		tb.Fatal(err)
	}
	good, probs := audit.CheckSignatures(stored, func(id string) (ed25519.PublicKey, string, bool) {
		return key.Public().Key, "", id == key.ID
	})
	if len(probs) > 0 || len(good) == 0 {
		tb.Fatalf("checkpoints: %d good, problems %v", len(good), probs)
	}
	var v trail.Verifier
	latest := audit.Latest(good)
	v.SetCheckpoints(latest)
	var checker *audit.SourceChecker
	err = audit.Read(ctx, js, audit.ReadOptions{}, func(r audit.Record) error {
		if checker == nil {
			var err error
			if checker, err = audit.NewSourceChecker(ctx, js); err != nil {
				return err
			}
			v.Check = checker.Check
		}
		v.Add(r.Raw, fmt.Sprintf("audit stream seq %d", r.StreamSeq))
		return nil
	})
	if err != nil && err != audit.ErrNoTrail {
		tb.Fatal(err)
	}
	rep := v.Finish()
	if checker != nil {
		checker.Close()
	}
	srcProbs, err := audit.CheckSources(ctx, js, latest[0])
	if err != nil {
		tb.Fatal(err)
	}
	rep.Add(srcProbs...)
	return rep, good
}

func kinds(rep trail.Report) []trail.Tamper {
	var ks []trail.Tamper
	for _, p := range rep.Problems {
		if !slices.Contains(ks, p.Kind) {
			ks = append(ks, p.Kind)
		}
	}
	return ks
}

// replaceTrail deletes the audit stream and creates it again holding
// entries, as someone with the service identity's rights can.
func replaceTrail(tb testing.TB, js jetstream.JetStream, entries [][]byte) {
	tb.Helper()
	ctx := context.Background()
	if err := js.DeleteStream(ctx, trail.Stream); err != nil {
		tb.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, audit.StreamConfig()); err != nil {
		tb.Fatal(err)
	}
	for _, raw := range entries {
		if _, err := js.Publish(ctx, trail.Subject, raw); err != nil {
			tb.Fatal(err)
		}
	}
}

// trailEntries reads the stored entries of the audit stream.
func trailEntries(tb testing.TB, js jetstream.JetStream) [][]byte {
	tb.Helper()
	var out [][]byte
	err := audit.Read(context.Background(), js, audit.ReadOptions{}, func(r audit.Record) error {
		out = append(out, r.Raw)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// Ensure the signed audit head holds the trail to what it was, where the
// chain alone cannot: a trail cut short is truncated; an entry changed and
// everything after it chained again is rewritten (the chain itself is
// intact); a source message the latest checkpoint names, deleted, is
// source_missing. An untouched trail is intact against it.
func TestCheckpointsAnchorTheLiveTrail(t *testing.T) {
	t.Run("intact", func(t *testing.T) {
		js := looseJetStream(t)
		key := anchoredTrail(t, js)
		rep, good := verifyAnchored(t, js, key)
		if !rep.Intact || rep.Anchor == nil || rep.Anchor.Seq != rep.LastSeq || len(good) < 5 {
			t.Fatalf("report %+v with %d checkpoints; want intact and anchored at its last entry", rep, len(good))
		}
	})
	t.Run("cut", func(t *testing.T) {
		js := looseJetStream(t)
		key := anchoredTrail(t, js)
		entries := trailEntries(t, js)
		replaceTrail(t, js, entries[:len(entries)-5])
		rep, _ := verifyAnchored(t, js, key)
		if !slices.Contains(kinds(rep), trail.Truncated) {
			t.Fatalf("problems %v, want truncated: %+v", kinds(rep), rep.Problems)
		}
		replaceTrail(t, js, nil) // deleted and started again
		if rep, _ := verifyAnchored(t, js, key); !slices.Contains(kinds(rep), trail.Truncated) {
			t.Fatalf("an empty trail: problems %v, want truncated", kinds(rep))
		}
	})
	t.Run("rewritten", func(t *testing.T) {
		js := looseJetStream(t)
		key := anchoredTrail(t, js)
		entries := trailEntries(t, js)
		prev := trail.GenesisHash
		for i := range entries {
			e, _, err := trail.Open(entries[i])
			if err != nil {
				t.Fatal(err)
			}
			if i == 3 {
				e.Actor = "user:mallory"
			}
			if entries[i], err = trail.Seal(e, prev); err != nil {
				t.Fatal(err)
			}
			prev = e.Hash
		}
		var chainOnly trail.Verifier
		for i, raw := range entries {
			chainOnly.Add(raw, fmt.Sprint(i))
		}
		if rep := chainOnly.Finish(); !rep.Intact {
			t.Fatalf("the re-chained trail does not verify as a chain: %+v", rep.Problems)
		}
		replaceTrail(t, js, entries)
		rep, good := verifyAnchored(t, js, key)
		if !slices.Contains(kinds(rep), trail.Rewritten) {
			t.Fatalf("problems %v, want rewritten: %+v", kinds(rep), rep.Problems)
		}
		// The auditor, run on over the rewritten trail, signs no head of it.
		publishMany(t, js, 5)
		signingAuditor(t, js, key)
		stored, err := audit.ReadCheckpoints(context.Background(), js)
		if err != nil || len(stored) != len(good) {
			t.Fatalf("%d checkpoints after the auditor ran on a rewritten trail (%v), want still %d", len(stored), err, len(good))
		}
	})
	t.Run("source missing", func(t *testing.T) {
		js := looseJetStream(t)
		key := anchoredTrail(t, js)
		_, good := verifyAnchored(t, js, key)
		latest := audit.Latest(good)[0]
		str, err := js.Stream(context.Background(), events.EventsStream)
		if err != nil {
			t.Fatal(err)
		}
		if err := str.DeleteMsg(context.Background(), latest.Cursor.Events); err != nil {
			t.Fatal(err)
		}
		rep, _ := verifyAnchored(t, js, key)
		if !slices.Contains(kinds(rep), trail.SourceMissing) {
			t.Fatalf("problems %v, want source_missing: %+v", kinds(rep), rep.Problems)
		}
	})
}

// Ensure a checkpoint nobody with the key signed is not taken.
func TestForgedCheckpointRefused(t *testing.T) {
	js := looseJetStream(t)
	key := anchoredTrail(t, js)
	forged := trail.Checkpoint{Seq: 1_000_000, Hash: "00", Time: "2030-01-01T00:00:00Z", KeyID: key.ID, Signature: "AAAA"}
	raw := fmt.Sprintf(`{"seq":%d,"hash":%q,"cursor":{"commands":0,"events":0},"sources":[],"time":%q,"key_id":%q,"signature":%q}`,
		forged.Seq, forged.Hash, forged.Time, forged.KeyID, forged.Signature)
	if _, err := js.Publish(context.Background(), trail.CheckpointSubject, []byte(raw)); err != nil {
		t.Fatal(err)
	}
	stored, err := audit.ReadCheckpoints(context.Background(), js)
	if err != nil {
		t.Fatal(err)
	}
	good, probs := audit.CheckSignatures(stored, func(id string) (ed25519.PublicKey, string, bool) { return key.Public().Key, "", id == key.ID })
	if len(probs) != 1 || probs[0].Kind != trail.Inserted || len(good) != len(stored)-1 {
		t.Fatalf("good %d of %d, problems %+v; want the forged one refused", len(good), len(stored), probs)
	}
}
