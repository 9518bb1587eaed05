package main

import (
	"strings"
	"testing"
)

// Ensure a command line cobra refuses before running anything exits with
// the usage code and names what is wrong, whichever check refused it.
func TestCommandLineRefusedIsUsage(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"license", "add", "--customer", "x", "--kind", "capacity"}, `"devices" not set`},
		{[]string{"license", "add", "--devices", "1", "--bogus"}, "--bogus"},
		{[]string{"smartserver", "activate"}, "requires at least 2 arg(s)"},
		{[]string{"no-such-command"}, "no-such-command"},
		{[]string{"smartserver", "nope"}, `unknown command "nope" for "licensebus smartserver"`},
		{[]string{"customer", "list", "-o", "yaml"}, "-o must be table or json"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := cli(t, "nats://127.0.0.1:1", tt.args...)
			if r.code != exitUsage || !strings.Contains(r.err, tt.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", r.code, r.err, exitUsage, tt.want)
			}
		})
	}
}
