package events

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// Ensure only the lowercase canonical UUID form is compacted, to the UUID's
// own bytes, and that ids differing as strings never meet in the set.
func TestIDSet(t *testing.T) {
	u := uuid.New()
	canon := u.String()
	tests := []struct {
		name    string
		id      string
		compact bool
	}{
		{"canonical", canon, true},
		{"upper case", strings.ToUpper(canon), false},
		{"braces", "{" + canon + "}", false},
		{"no hyphens", strings.ReplaceAll(canon, "-", ""), false},
		{"hyphen moved", canon[:7] + "-" + canon[7:8] + canon[9:], false},
		{"not hex", "g" + canon[1:], false},
		{"any string", "cmd-1", false},
		{"empty", "", false},
	}
	var s IDSet
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := compactUUID(tt.id)
			if ok != tt.compact {
				t.Fatalf("compactUUID(%q) ok=%v, want %v", tt.id, ok, tt.compact)
			}
			if ok && got != [16]byte(u) {
				t.Fatalf("compactUUID(%q)=%x, want %x", tt.id, got, u)
			}
			if s.Has(tt.id) {
				t.Fatalf("%q is in the set before it was added", tt.id)
			}
			if !s.Add(tt.id) {
				t.Fatalf("Add(%q)=false the first time, want true", tt.id)
			}
			if !s.Has(tt.id) {
				t.Fatalf("%q is not in the set after it was added", tt.id)
			}
			if s.Add(tt.id) {
				t.Fatalf("Add(%q)=true the second time, want false", tt.id)
			}
		})
	}
	if s.Len() != len(tests) {
		t.Fatalf("Len=%d, want %d", s.Len(), len(tests))
	}
	// Making room keeps what the set holds.
	s.Grow(100)
	s.Grow(0)
	if s.Len() != len(tests) {
		t.Fatalf("after Grow: Len=%d, want %d", s.Len(), len(tests))
	}
	for _, tt := range tests {
		if !s.Has(tt.id) {
			t.Fatalf("after Grow: %q is not in the set", tt.id)
		}
	}
}

// Ensure Handled remembers ids with their digests for its horizon and
// forgets what is older, whole generations at a time.
func TestHandledHorizon(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var forgotten []string
	h := Handled{Horizon: 8 * time.Hour, OnForget: func(id string) { forgotten = append(forgotten, id) }}
	old, kept, other := "0b7e3f5c-3c1d-4e2a-9a0b-1d2e3f405162", "1b7e3f5c-3c1d-4e2a-9a0b-1d2e3f405162", "not-a-uuid"
	h.Add(old, "00112233445566ff", t0)
	h.Add(other, "aabbccddeeff0011", t0.Add(30*time.Minute))
	h.Add(kept, "", t0.Add(5*time.Hour))
	if h.Len() != 3 {
		t.Errorf("Len=%d after three ids, want 3 (an id with a digest counted once)", h.Len())
	}
	tests := []struct {
		name   string
		id     string
		found  bool
		digest string
	}{
		{"a command with its digest", old, true, "00112233445566ff"},
		{"an id that is no UUID", other, true, "aabbccddeeff0011"},
		{"an event's id: no digest", kept, true, ""},
		{"never seen", "2b7e3f5c-3c1d-4e2a-9a0b-1d2e3f405162", false, ""},
	}
	for _, tt := range tests {
		if found, d := h.Lookup(tt.id); found != tt.found || d != tt.digest {
			t.Errorf("%s: Lookup=(%v, %q), want (%v, %q)", tt.name, found, d, tt.found, tt.digest)
		}
	}
	// Nine hours on: the first hour's generation is past the horizon.
	h.Add("3b7e3f5c-3c1d-4e2a-9a0b-1d2e3f405162", "", t0.Add(9*time.Hour+30*time.Minute))
	if found, _ := h.Lookup(old); found {
		t.Errorf("an id older than the horizon is still remembered")
	}
	if found, _ := h.Lookup(kept); !found {
		t.Errorf("an id within the horizon was forgotten")
	}
	if h.Len() != 2 {
		t.Errorf("Len=%d, want 2", h.Len())
	}
	slices.Sort(forgotten)
	if want := []string{old, other}; !slices.Equal(forgotten, want) {
		t.Errorf("forgotten %v, want %v", forgotten, want)
	}
}

// Ensure Each gives back every id as it was added.
func TestIDSetEach(t *testing.T) {
	var s IDSet
	want := []string{uuid.NewString(), uuid.NewString(), "ro-x-IC-1-1-customer"}
	for _, id := range want {
		s.Add(id)
	}
	var got []string
	s.Each(func(id string) { got = append(got, id) })
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("Each=%v, want %v", got, want)
	}
}
