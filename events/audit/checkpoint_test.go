package audit

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"testing"
)

// rechain changes entry k (1-based) of lines and seals every entry from
// it on again, as someone who can write the trail but not sign would.
func rechain(tb testing.TB, lines [][]byte, k int) [][]byte {
	tb.Helper()
	out := make([][]byte, len(lines))
	copy(out, lines)
	prev := GenesisHash
	if k > 1 {
		e, _, _ := Open(lines[k-2])
		prev = e.Hash
	}
	for i := k - 1; i < len(lines); i++ {
		e, _, err := Open(lines[i])
		if err != nil {
			tb.Fatal(err)
		}
		if i == k-1 {
			e.Actor = "user:mallory"
		}
		raw, err := Seal(e, prev)
		if err != nil {
			tb.Fatal(err)
		}
		out[i], prev = raw, e.Hash
	}
	return out
}

// checkpointOf signs a checkpoint of entry seq of lines.
func checkpointOf(tb testing.TB, lines [][]byte, seq int, priv ed25519.PrivateKey) Checkpoint {
	tb.Helper()
	e, _, _ := Open(lines[seq-1])
	c := Checkpoint{Seq: e.Seq, Hash: e.Hash, Cursor: e.Cursor, Time: "2026-12-02T10:00:00Z",
		Sources: []SourceRef{{Stream: e.Stream, Seq: e.StreamSeq, MessageSHA256: e.MessageSHA256}}}
	if err := c.Sign("k1", priv); err != nil {
		tb.Fatal(err)
	}
	return c
}

// Ensure a trail is held against its signed checkpoints: intact when it
// reaches and matches them; truncated when it ends before one; rewritten
// when an entry up to one was changed and everything after it chained
// again — which the chain alone finds intact.
func TestCheckpointsAnchorTheTrail(t *testing.T) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32))
	lines := chain(t, 20)
	cps := []Checkpoint{checkpointOf(t, lines, 10, priv), checkpointOf(t, lines, 18, priv)}
	tests := []struct {
		name  string
		lines [][]byte
		cps   []Checkpoint
		want  []Tamper
	}{
		{"intact, past the last checkpoint", lines, cps, nil},
		{"intact, ending at it", lines[:18], cps, nil},
		{"no checkpoints: the chain alone", rechain(t, lines, 5), nil, nil},
		{"cut before the last checkpoint", lines[:15], cps, []Tamper{Truncated}},
		{"cut to nothing", nil, cps, []Tamper{Truncated}},
		{"rewritten and chained again", rechain(t, lines, 5), cps, []Tamper{Rewritten, Rewritten}},
		{"rewritten after the first checkpoint", rechain(t, lines, 12), cps, []Tamper{Rewritten}},
		{"rewritten after the last: not seen", rechain(t, lines, 19), cps, nil},
		{"a part of the trail within the checkpoints", lines[8:12], cps, []Tamper{Truncated}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v Verifier
			v.SetCheckpoints(tt.cps)
			for i, l := range tt.lines {
				v.Add(l, fmt.Sprintf("line %d", i+1))
			}
			rep := v.Finish()
			var got []Tamper
			for _, p := range rep.Problems {
				got = append(got, p.Kind)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("problems %v, want %v: %+v", got, tt.want, rep.Problems)
			}
			if rep.Intact != (len(tt.want) == 0) {
				t.Fatalf("intact=%v with problems %v", rep.Intact, got)
			}
		})
	}
}

// Ensure a checkpoint verifies only under its key, and not once changed.
func TestCheckpointSignature(t *testing.T) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32))
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{4}, 32))
	c := checkpointOf(t, chain(t, 3), 2, priv)
	if err := c.Verify(priv.Public().(ed25519.PublicKey)); err != nil {
		t.Fatal(err)
	}
	if err := c.Verify(other.Public().(ed25519.PublicKey)); !errors.Is(err, ErrCheckpointSignature) {
		t.Fatalf("under another key: %v", err)
	}
	c.Seq++
	if err := c.Verify(priv.Public().(ed25519.PublicKey)); !errors.Is(err, ErrCheckpointSignature) {
		t.Fatalf("changed: %v", err)
	}
}
