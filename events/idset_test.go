package events

import (
	"strings"
	"testing"

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
