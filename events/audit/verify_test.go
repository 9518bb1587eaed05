package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// entryOf is the entry of a message of a source stream with no headers
// and data, as the auditor records one (without seq, cursor and chain).
func entryOf(stream string, seq uint64, subject string, t time.Time, data string) Entry {
	kind := KindEvent
	if stream == CommandsStream {
		kind = KindCommand
	}
	sum := sha256.Sum256([]byte("\r\n" + data))
	return Entry{Kind: kind, Stream: stream, StreamSeq: seq, StreamTime: t.UTC().Format(time.RFC3339Nano), Subject: subject,
		Data: []byte(data), MessageSHA256: hex.EncodeToString(sum[:])}
}

// chain builds n sealed entries as an export holds them.
func chain(tb testing.TB, n int) [][]byte {
	tb.Helper()
	lines := make([][]byte, 0, n)
	prev, cur := GenesisHash, Cursor{}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := 1; i <= n; i++ {
		stream := CommandsStream
		if i%2 == 0 {
			stream = EventsStream
		}
		seq := cur.Of(stream) + 1
		e := entryOf(stream, seq, "lb.cmd.cloud.customer_create", t0.Add(time.Duration(i)*time.Millisecond), fmt.Sprintf(`{"name":"customer %d"}`, i))
		e.Seq, e.Cursor = uint64(i), cur.Advance(stream, seq)
		raw, err := Seal(&e, prev)
		if err != nil {
			tb.Fatal(err)
		}
		lines = append(lines, raw)
		prev, cur = e.Hash, e.Cursor
	}
	return lines
}

// edit changes an entry's actor; with rehash it also recomputes its hash,
// as a forger who knows the format would.
func edit(tb testing.TB, raw []byte, rehash bool, change func(*Entry)) []byte {
	tb.Helper()
	e, ok, err := Open(raw)
	if err != nil || !ok {
		tb.Fatalf("Open: %v %v", ok, err)
	}
	change(e)
	if rehash {
		out, err := Seal(e, e.PrevHash)
		if err != nil {
			tb.Fatal(err)
		}
		return out
	}
	out, err := canonicalOf(e) // keeps the old hash
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// canonicalOf is the canonical form of e as it is, hash included.
func canonicalOf(e *Entry) ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	return Canonical(b)
}

func verifyLines(lines [][]byte) Report {
	var v Verifier
	for i, l := range lines {
		v.Add(l, fmt.Sprintf("line %d", i+1))
	}
	return v.Finish()
}

// Ensure each kind of tampering of an export is caught and named, at the
// right entry, and that an untouched export or a contiguous part of one is
// intact.
func TestVerifyNamesTampering(t *testing.T) {
	const n = 12
	actor := func(e *Entry) { e.Actor = "user:mallory" }
	move := func(ls [][]byte, from, to int) [][]byte { // 0-based
		l := ls[from]
		ls = slices.Delete(ls, from, from+1)
		return slices.Insert(ls, to, l)
	}
	tests := []struct {
		name   string
		tamper func(tb testing.TB, ls [][]byte) [][]byte
		want   []Tamper // kinds, in order
		seq    uint64   // seq of the first problem
	}{
		{"intact", func(_ testing.TB, ls [][]byte) [][]byte { return ls }, nil, 0},
		{"part of the chain", func(_ testing.TB, ls [][]byte) [][]byte { return ls[3:9] }, nil, 0},
		{"edited", func(tb testing.TB, ls [][]byte) [][]byte { ls[4] = edit(tb, ls[4], false, actor); return ls }, []Tamper{Edited}, 5},
		{"edited and re-hashed", func(tb testing.TB, ls [][]byte) [][]byte { ls[4] = edit(tb, ls[4], true, actor); return ls }, []Tamper{Edited}, 5},
		{"edited last", func(tb testing.TB, ls [][]byte) [][]byte { ls[n-1] = edit(tb, ls[n-1], false, actor); return ls }, []Tamper{Edited}, n},
		{"edited first", func(tb testing.TB, ls [][]byte) [][]byte { ls[0] = edit(tb, ls[0], false, actor); return ls }, []Tamper{Edited}, 1},
		{"seq edited and re-hashed", func(tb testing.TB, ls [][]byte) [][]byte {
			ls[4] = edit(tb, ls[4], true, func(e *Entry) { e.Seq = 50 })
			return ls
		}, []Tamper{Edited}, 50},
		{"mangled", func(_ testing.TB, ls [][]byte) [][]byte { ls[4] = ls[4][:40]; return ls }, []Tamper{Edited}, 5},
		{"dropped", func(_ testing.TB, ls [][]byte) [][]byte { return slices.Delete(ls, 4, 5) }, []Tamper{Dropped}, 5},
		{"dropped run", func(_ testing.TB, ls [][]byte) [][]byte { return slices.Delete(ls, 4, 7) }, []Tamper{Dropped}, 5},
		{"two dropped", func(_ testing.TB, ls [][]byte) [][]byte { return slices.Delete(slices.Delete(ls, 8, 9), 2, 3) }, []Tamper{Dropped, Dropped}, 3},
		{"swapped", func(_ testing.TB, ls [][]byte) [][]byte { ls[4], ls[5] = ls[5], ls[4]; return ls }, []Tamper{Reordered}, 5},
		{"moved later", func(_ testing.TB, ls [][]byte) [][]byte { return move(ls, 2, 8) }, []Tamper{Reordered}, 3},
		{"moved earlier", func(_ testing.TB, ls [][]byte) [][]byte { return move(ls, 8, 2) }, []Tamper{Reordered}, 3},
		{"inserted forgery", func(tb testing.TB, ls [][]byte) [][]byte {
			return slices.Insert(ls, 4, edit(tb, ls[4], true, actor)) // a re-hashed variant of entry 5, before it
		}, []Tamper{Inserted}, 5},
		{"inserted without hash", func(tb testing.TB, ls [][]byte) [][]byte {
			return slices.Insert(ls, 4, edit(tb, ls[4], false, actor))
		}, []Tamper{Inserted}, 5},
		{"inserted copy", func(_ testing.TB, ls [][]byte) [][]byte { return slices.Insert(ls, 4, bytes.Clone(ls[3])) }, []Tamper{Inserted}, 4},
		{"inserted garbage", func(_ testing.TB, ls [][]byte) [][]byte { return slices.Insert(ls, 4, []byte(`{"hello":"world"}`)) }, []Tamper{Inserted}, 0},
		{"appended forgery", func(tb testing.TB, ls [][]byte) [][]byte {
			return append(ls, edit(tb, ls[n-1], true, func(e *Entry) { e.Seq = n + 1 })) // still names entry 11 as its predecessor
		}, []Tamper{Inserted}, n + 1},
		{"inserted forgery with another seq", func(tb testing.TB, ls [][]byte) [][]byte {
			return slices.Insert(ls, 4, edit(tb, ls[4], true, func(e *Entry) { e.Seq = 99 }))
		}, []Tamper{Inserted}, 99},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := verifyLines(tt.tamper(t, chain(t, n)))
			var kinds []Tamper
			for _, p := range rep.Problems {
				kinds = append(kinds, p.Kind)
			}
			if !slices.Equal(kinds, tt.want) || rep.Intact != (len(tt.want) == 0) {
				t.Fatalf("problems %+v, want kinds %v", rep.Problems, tt.want)
			}
			if len(tt.want) > 0 && rep.Problems[0].Seq != tt.seq {
				t.Fatalf("first problem %+v, want seq %d", rep.Problems[0], tt.seq)
			}
			for _, p := range rep.Problems {
				if !strings.HasPrefix(p.Where, "line ") || p.Detail == "" {
					t.Fatalf("problem %+v does not say where and what", p)
				}
			}
		})
	}
}

// Ensure the report pins down what an intact input covers.
func TestVerifyReport(t *testing.T) {
	ls := chain(t, 6)
	full := verifyLines(ls)
	if !full.Intact || !full.Anchored || full.Chained != 6 || full.FirstSeq != 1 || full.LastSeq != 6 || full.Cursor != (Cursor{Commands: 3, Events: 3}) {
		t.Fatalf("full report %+v", full)
	}
	part := verifyLines(ls[2:])
	if !part.Intact || part.Anchored || part.FirstSeq != 3 || part.HeadHash != full.HeadHash {
		t.Fatalf("part report %+v, want intact, not anchored, from 3, same head", part)
	}
	if empty := verifyLines(nil); !empty.Intact || empty.Chained != 0 {
		t.Fatalf("empty report %+v", empty)
	}
	// A forger who appends a correctly chained entry to a file is only
	// caught by comparing the head hash with the live trail's (or by the
	// live check against the source streams): the report gives the head.
	last, _, _ := Open(ls[5])
	forged := entryOf(EventsStream, 4, "lb.evt.x", time.Now(), `{}`)
	forged.Seq, forged.Cursor = 7, last.Cursor.Advance(EventsStream, 4)
	raw, err := Seal(&forged, last.Hash)
	if err != nil {
		t.Fatal(err)
	}
	if rep := verifyLines(append(ls, raw)); !rep.Intact || rep.HeadHash == full.HeadHash || rep.LastSeq != 7 {
		t.Fatalf("appended chained entry: %+v, want intact with another head", rep)
	}
}
