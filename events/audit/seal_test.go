package audit

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// genericCanonical is the definition Seal must meet: the entry marshalled by
// encoding/json, without its hash member, in the generic JCS form.
func genericCanonical(t *testing.T, e *Entry, withHash bool) []byte {
	t.Helper()
	raw, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	v, err := decodeJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !withHash {
		delete(v.(map[string]any), "hash")
	}
	var b bytes.Buffer
	if err := writeCanonical(&b, v); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// Ensure the typed encoder writes, byte for byte, what the generic
// canonicaliser makes of the entry, for sparse, full and awkward entries.
func TestEntryCanonicalMatchesGeneric(t *testing.T) {
	full := Entry{Seq: 7, Kind: KindRejection, Stream: "LICENSEBUS_EVENTS", StreamSeq: 1 << 40, StreamTime: "2026-01-02T03:04:05.000000006Z",
		Subject: "lb.evt.x", Mode: "binary", ID: "id", Type: "t", Source: "/s", Time: "2026-01-02T03:04:05Z", Actor: "user:ann",
		CorrelationID: "c", CausationID: "k", LicenseID: "l", LicenseIDs: []string{"a", "b"}, InstallCode: "IC", CustomerID: "cu",
		DeviceID: "d", DeviceIDs: []string{"d1"}, Reason: "r", Message: "m", CommandID: "ci", CommandType: "ct", Invalid: "inv",
		RejectionID: "rj", Data: json.RawMessage(`{"b":1,"a":[1.50,"x"]}`), DataBase64: "AA==", DataTruncated: true,
		MessageSHA256: "00ff", Cursor: Cursor{Commands: 3, Events: 9}, PrevHash: GenesisHash, Hash: "abc"}
	tests := []struct {
		name string
		e    Entry
	}{
		{"empty", Entry{}},
		{"full", full},
		{"escapes", Entry{Kind: KindCommand, Actor: "a\"b\\c\n\t\x01<&>\u2028é\U0001F600\xff\xfe!\x7f", Message: strings.Repeat("ü", 5),
			DeviceIDs: []string{"", "<x>"}, Data: json.RawMessage(` { "z" : "\u00e9" , "a" : 1e3 } `)}},
		{"huge sequence", Entry{Seq: 1<<53 + 1, StreamSeq: 1<<64 - 1}},
		{"empty lists", Entry{LicenseIDs: []string{}, DeviceIDs: []string{}}},
		{"every field", everyField()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, withHash := range []bool{false, true} {
				e := tt.e
				var got bytes.Buffer
				if err := appendEntry(&got, &e, withHash); err != nil {
					t.Fatal(err)
				}
				if want := genericCanonical(t, &e, withHash); !bytes.Equal(got.Bytes(), want) {
					t.Errorf("withHash=%v:\n got %s\nwant %s", withHash, got.Bytes(), want)
				}
			}
		})
	}
}

// everyField returns an entry with every field set, found by reflection,
// so a field added to Entry and forgotten by the typed encoder fails the
// comparison above.
func everyField() Entry {
	var e Entry
	v := reflect.ValueOf(&e).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		if !v.Type().Field(i).IsExported() {
			continue
		}
		switch {
		case f.Type() == reflect.TypeFor[json.RawMessage]():
			f.SetBytes([]byte(`{"k":[true,null]}`))
		case f.Kind() == reflect.String:
			f.SetString(v.Type().Field(i).Name)
		case f.Kind() == reflect.Uint64:
			f.SetUint(uint64(i + 1))
		case f.Kind() == reflect.Bool:
			f.SetBool(true)
		case f.Kind() == reflect.Slice:
			f.Set(reflect.ValueOf([]string{"x", "y"}))
		case f.Kind() == reflect.Struct:
			for j := range f.NumField() {
				f.Field(j).SetUint(uint64(j + 2))
			}
		}
	}
	return e
}

func BenchmarkSeal(b *testing.B) {
	e := everyField()
	e.canonical = true // as Derive makes it
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Seal(&e, GenesisHash); err != nil {
			b.Fatal(err)
		}
	}
}

// Ensure a Sealer seals as Seal does, entry after entry, and that what it
// returned before stays as it was when its buffer is used again.
func TestSealerReusesNothingItReturned(t *testing.T) {
	var s Sealer
	prevS, prevP := GenesisHash, GenesisHash
	var kept [][]byte
	var want [][]byte
	for i := range 5 {
		e := everyField()
		e.Seq = uint64(i + 1)
		e.Actor = strings.Repeat("a", 50*i) // entries of different sizes
		p := e
		got, err := s.Seal(&e, prevS)
		if err != nil {
			t.Fatal(err)
		}
		w, err := Seal(&p, prevP)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, w) || e.Hash != p.Hash {
			t.Fatalf("entry %d: Sealer gave %s (hash %s), Seal %s (hash %s)", i+1, got, e.Hash, w, p.Hash)
		}
		kept, want = append(kept, got), append(want, bytes.Clone(w))
		prevS, prevP = e.Hash, p.Hash
	}
	for i := range kept {
		if !bytes.Equal(kept[i], want[i]) {
			t.Fatalf("entry %d changed after later seals: %s", i+1, kept[i])
		}
		if _, ok, err := Open(kept[i]); err != nil || !ok {
			t.Fatalf("entry %d does not open: ok %v, %v", i+1, ok, err)
		}
	}
}

func BenchmarkSealer(b *testing.B) {
	e := everyField()
	e.canonical = true // as Derive makes it
	var s Sealer
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Seal(&e, GenesisHash); err != nil {
			b.Fatal(err)
		}
	}
}
