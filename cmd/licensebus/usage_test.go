package main

import (
	"io"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
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
		{[]string{"customer", "list", "-o", "yaml"}, `invalid argument "yaml" for "-o, --output" flag: must be one of table, json`},
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

// commandTree is every command of the CLI, the root first.
func commandTree() []*cobra.Command {
	a := &app{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }}
	var all []*cobra.Command
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		all = append(all, c)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(a.rootCmd())
	return all
}

// Ensure every flag that takes one of a fixed set of values refuses any
// other as a usage error listing the allowed ones, before anything runs
// (here: with no server to talk to), and that no such flag was missed.
func TestEnumFlagsRefuseUnknownValues(t *testing.T) {
	enums := map[string][]string{} // "command path --flag" → allowed
	for _, c := range commandTree() {
		for _, fs := range []*pflag.FlagSet{c.LocalNonPersistentFlags(), c.PersistentFlags()} {
			fs.VisitAll(func(f *pflag.Flag) {
				if e, ok := f.Value.(*enumValue); ok {
					enums[c.CommandPath()+" --"+f.Name] = e.allowed
				}
			})
		}
	}
	want := []string{
		"licensebus --output", "licensebus license add --kind", "licensebus license list --state", "licensebus device add --protocol",
		"licensebus serve --log-level", "licensebus audit tail --kind", "licensebus audit export --format",
	}
	for _, w := range want {
		if _, ok := enums[w]; !ok {
			t.Errorf("%s takes fixed values but does not refuse others (enum flags: %v)", w, slices.Sorted(maps.Keys(enums)))
		}
	}
	file := targetsFile(t, []string{"IC-1"})
	tests := []struct {
		args    []string
		allowed []string
	}{
		{[]string{"license", "list", "--state", "bogus"}, []string{"cloud", "activating", "active", "transferring"}},
		{[]string{"license", "add", "--kind", "perpetual", "--customer", "x", "--devices", "1"}, []string{"capacity", "maintenance"}},
		{[]string{"device", "add", "IC-1", "--protocol", "knx"}, []string{"lon", "bacnet", "modbus"}},
		{[]string{"customer", "list", "-o", "yaml"}, []string{"table", "json"}},
		{[]string{"-o", "wide", "fleet", "status"}, []string{"table", "json"}},
		{[]string{"serve", "--log-level", "loud"}, []string{"trace", "debug", "info", "warn", "error"}},
		{[]string{"audit", "tail", "--kind", "everything"}, []string{"command", "event", "rejection"}},
		{[]string{"audit", "export", "--format", "xml"}, []string{"jsonl", "csv"}},
		{[]string{"smartserver", "auto-provision", "IC-1", "maybe"}, []string{"on", "off"}},
		{[]string{"rollout", "start", "--customer", "00000000-0000-4000-8000-000000000000", "--targets", file, "--activate", "perpetual"}, []string{"capacity", "maintenance"}},
		{[]string{"rollout", "transfer", "--targets", file, "--rate", "5/week"}, []string{"s", "min", "h"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := cli(t, "nats://127.0.0.1:1", tt.args...)
			if r.code != exitUsage {
				t.Fatalf("exit %d, stderr %q; want %d", r.code, r.err, exitUsage)
			}
			for _, v := range tt.allowed {
				if !strings.Contains(r.err, v) {
					t.Fatalf("stderr %q does not list %q among the allowed values %v", r.err, v, tt.allowed)
				}
			}
		})
	}
}

// Ensure every command's help has an Examples section that uses it, and
// that --id and --timeout are offered exactly by the commands that send
// commands (and --timeout by those that wait for outcomes).
func TestEveryCommandHasExamples(t *testing.T) {
	senders := map[string]bool{}
	for _, p := range []string{"customer create", "license add", "smartserver register", "smartserver set-version", "smartserver set-customer-id", "smartserver download-licenses",
		"smartserver activate", "smartserver transfer-to-cloud", "smartserver auto-provision", "device add", "device remove", "device provision",
		"rollout start", "rollout transfer", "rollout pause", "rollout resume", "rollout cancel", "rollout retry-failed",
		"license fulfil", "license rotate-key", "license revoke-key", "smartserver import-licenses"} {
		senders["licensebus "+p] = true
	}
	// Commands that wait for outcomes, and those that read what the server
	// stores and honour --timeout (readContext).
	waiters := map[string]bool{"licensebus command wait": true, "licensebus projections status": true, "licensebus projections rebuild": true,
		"licensebus reactors status": true, "licensebus cluster status": true, "licensebus audit tail": true, "licensebus audit export": true, "licensebus audit verify": true, "licensebus audit trace": true,
		"licensebus audit checkpoints": true, "licensebus license pubkey": true, "licensebus license grant": true, "licensebus license verify": true}
	for _, c := range commandTree() {
		path := c.CommandPath()
		if c.Hidden {
			continue
		}
		if c.Example == "" || !strings.Contains(c.Example, path) {
			t.Errorf("%s: Examples %q, want examples that use it", path, c.Example)
		}
		hasID, hasTimeout := c.Flags().Lookup("id") != nil, c.Flags().Lookup("timeout") != nil
		if hasID != senders[path] || hasTimeout != (senders[path] || waiters[path]) {
			t.Errorf("%s: --id %v, --timeout %v; want --id only on commands that send, --timeout on those and on those that wait or read", path, hasID, hasTimeout)
		}
	}
	if r := cli(t, "nats://127.0.0.1:1", "customer", "list", "--id", "x"); r.code != exitUsage || !strings.Contains(r.err, "unknown flag: --id") {
		t.Fatalf("customer list --id: exit %d, stderr %q; want a usage error", r.code, r.err)
	}
}

// Ensure `smartserver register` takes the install code as an argument, as
// every other smartserver command does, and still takes --install-code.
func TestRegisterTakesInstallCodeArgument(t *testing.T) {
	s := mustServe(t, t.TempDir())
	url := s.URL()
	if out := mustCLI(t, url, "smartserver", "register", "IC-ARG", "--name", "SC-ARG", "--version", "3.4"); !strings.Contains(out, "SmartServer IC-ARG (SC-ARG, version 3.4) registered") {
		t.Fatalf("register IC-ARG printed %q", out)
	}
	mustCLI(t, url, "smartserver", "register", "--install-code", "IC-FLAG", "--version", "3.4")
	mustCLI(t, url, "smartserver", "register", "IC-BOTH", "--install-code", "IC-BOTH", "--version", "3.4")
	var accounts []struct {
		InstallCode string `json:"install_code"`
	}
	mustJSON(t, url, &accounts, "smartserver", "accounts")
	if len(accounts) != 3 || accounts[0].InstallCode != "IC-ARG" || accounts[1].InstallCode != "IC-BOTH" || accounts[2].InstallCode != "IC-FLAG" {
		t.Fatalf("accounts=%+v, want IC-ARG, IC-BOTH and IC-FLAG", accounts)
	}
	for _, args := range [][]string{
		{"smartserver", "register", "--version", "3.4"},
		{"smartserver", "register", "IC-A", "--install-code", "IC-B", "--version", "3.4"},
		{"smartserver", "register", "IC-A", "IC-B", "--version", "3.4"},
	} {
		if r := cli(t, url, args...); r.code != exitUsage {
			t.Errorf("%v: exit %d, stderr %q; want a usage error", args, r.code, r.err)
		}
	}
}

// Ensure a SmartServer's version changes with `smartserver set-version`,
// the command a refused second register points to.
func TestSetVersionFromTheCLI(t *testing.T) {
	s := mustServe(t, t.TempDir())
	url := s.URL()
	mustCLI(t, url, "smartserver", "register", "IC-VER", "--version", "3.4")
	if r := cli(t, url, "smartserver", "register", "IC-VER", "--version", "3.5"); r.code != exitRefused || !strings.Contains(r.err, "set-version") {
		t.Fatalf("register with another version: exit %d, stderr %q; want a refusal pointing to set-version", r.code, r.err)
	}
	if out := mustCLI(t, url, "smartserver", "set-version", "IC-VER", "3.5"); out != "SmartServer IC-VER runs version 3.5 (was 3.4)" {
		t.Fatalf("set-version printed %q", out)
	}
	var accounts []struct {
		Version string `json:"version"`
	}
	mustJSON(t, url, &accounts, "smartserver", "accounts")
	if len(accounts) != 1 || accounts[0].Version != "3.5" {
		t.Fatalf("accounts=%+v, want version 3.5", accounts)
	}
}
