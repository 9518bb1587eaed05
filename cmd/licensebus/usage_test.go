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

// Ensure a mistyped command is named as such, with the closest commands
// suggested, whether or not flags follow it: `customer craete --name X`
// is an unknown command, not an unknown flag.
func TestUnknownCommandSuggestsClosest(t *testing.T) {
	tests := []struct {
		args       []string
		unknown    string // the `unknown command "x" for "y"` part
		suggestion string
	}{
		{[]string{"customer", "craete", "--name", "X"}, `unknown command "craete" for "licensebus customer"`, "create"},
		{[]string{"customer", "craete"}, `unknown command "craete" for "licensebus customer"`, "create"},
		{[]string{"smartserver", "activte", "IC-1", "--no-wait"}, `unknown command "activte" for "licensebus smartserver"`, "activate"},
		{[]string{"ss", "licences", "IC-1"}, `unknown command "licences" for "licensebus smartserver"`, "licenses"},
		{[]string{"rollout", "stat", "R-1", "--watch"}, `unknown command "stat" for "licensebus rollout"`, "status"},
		{[]string{"custmer", "list"}, `unknown command "custmer" for "licensebus"`, "customer"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := cli(t, "nats://127.0.0.1:1", tt.args...)
			if r.code != exitUsage || !strings.Contains(r.err, tt.unknown) || !strings.Contains(r.err, "Did you mean this?") || !strings.Contains(r.err, "\t"+tt.suggestion+"\n") {
				t.Fatalf("exit %d, stderr %q; want %d, %q and the suggestion %q", r.code, r.err, exitUsage, tt.unknown, tt.suggestion)
			}
			if strings.Contains(r.err, "unknown flag") {
				t.Fatalf("stderr %q blames a flag; the command is what is unknown", r.err)
			}
		})
	}
	// A noun alone still shows its help.
	if r := cli(t, "nats://127.0.0.1:1", "customer"); r.code != exitOK || !strings.Contains(r.out, "Available Commands") {
		t.Fatalf("customer alone: exit %d, stdout %q; want its help", r.code, r.out)
	}
}
