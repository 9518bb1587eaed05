package events_test

import (
	"strings"
	"testing"

	"github.com/licensebus/licensebus/events"
)

func TestNeedsLicense(t *testing.T) {
	tests := []struct {
		name    string
		version string
		want    bool
	}{
		{"below 3.3", "3.2", false},
		{"exactly 3.3", "3.3", true},
		{"3.4", "3.4", true},
		{"next major", "4.0", true},
		{"older major", "2.9", false},
		// Minor versions compare as numbers, not strings: 3.10 > 3.3.
		{"two-digit minor", "3.10", true},
		{"with patch below", "3.2.9", false},
		{"with patch", "3.3.0", true},
		// An unreadable version must not let a SmartServer skip licensing.
		{"garbage", "garbage", true},
		{"empty", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := events.NeedsLicense(tt.version); got != tt.want {
				t.Fatalf("NeedsLicense(%q)=%v, want %v", tt.version, got, tt.want)
			}
		})
	}
}

func TestParseVersion(t *testing.T) {
	tests := []struct {
		name         string
		version      string
		major, minor int
		ok           bool
	}{
		{"major.minor", "3.4", 3, 4, true},
		{"with patch", "3.4.1", 3, 4, true},
		{"multi-digit", "10.12", 10, 12, true},
		{"zeros", "0.0", 0, 0, true},
		{"major only", "3", 0, 0, false},
		{"four parts", "3.4.5.6", 0, 0, false},
		{"empty", "", 0, 0, false},
		{"trailing dot", "3.", 0, 0, false},
		{"letters", "a.b", 0, 0, false},
		{"negative minor", "3.-1", 0, 0, false},
		{"bad patch", "3.4.x", 0, 0, false},
		{"spaces", " 3.4", 0, 0, false},
		{"suffix", "3.4-beta", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			major, minor, ok := events.ParseVersion(tt.version)
			if ok != tt.ok {
				t.Fatalf("ParseVersion(%q) ok=%v, want %v", tt.version, ok, tt.ok)
			}
			if major != tt.major || minor != tt.minor {
				t.Fatalf("ParseVersion(%q)=%v.%v, want %v.%v", tt.version, major, minor, tt.major, tt.minor)
			}
		})
	}
}

func TestValidUUID(t *testing.T) {
	tests := []struct {
		name string
		s    string
		want bool
	}{
		{"canonical", "123e4567-e89b-12d3-a456-426614174000", true},
		{"upper case", "123E4567-E89B-12D3-A456-426614174000", true},
		{"nil uuid", "00000000-0000-0000-0000-000000000000", true},
		// uuid.Parse accepts these other spellings; ids must be canonical
		// so one license has one id string everywhere.
		{"no dashes", "123e4567e89b12d3a456426614174000", false},
		{"braces", "{123e4567-e89b-12d3-a456-426614174000}", false},
		{"urn", "urn:uuid:123e4567-e89b-12d3-a456-426614174000", false},
		{"empty", "", false},
		{"not hex", "123e4567-e89b-12d3-a456-42661417400g", false},
		{"misplaced dash", "123e45670-e89b-12d3-a456-42661417400", false},
		{"words", "not-a-uuid", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := events.ValidUUID(tt.s); got != tt.want {
				t.Fatalf("ValidUUID(%q)=%v, want %v", tt.s, got, tt.want)
			}
		})
	}
}

func TestValidInstallCode(t *testing.T) {
	tests := []struct {
		name string
		s    string
		want bool
	}{
		{"letters digits dash underscore", "SS-0001_a", true},
		{"one char", "a", true},
		{"64 chars", strings.Repeat("x", 64), true},
		{"65 chars", strings.Repeat("x", 65), false},
		{"empty", "", false},
		// Each of these would split or wildcard the NATS subject token.
		{"dot", "SS.0001", false},
		{"star", "SS*", false},
		{"gt", "SS>", false},
		{"space", "bad code!", false},
		{"trailing newline", "SS-0001\n", false},
		{"non-ASCII", "naïve", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := events.ValidInstallCode(tt.s); got != tt.want {
				t.Fatalf("ValidInstallCode(%q)=%v, want %v", tt.s, got, tt.want)
			}
		})
	}
}
