package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// Ensure a refused command says so once, on stderr (`Error: reason:
// message`, exit 1), with nothing on stdout; with -o json the outcome
// object goes to stdout (still exit 1). Of several commands sent at once,
// the table shows those that were not refused.
func TestRefusalSaidOnce(t *testing.T) {
	s := mustServe(t, t.TempDir())
	url := s.URL()
	cid := mustCLI(t, url, "customer", "create", "--name", "P-ONCE")
	lid := mustCLI(t, url, "license", "add", "--customer", cid, "--kind", "capacity", "--devices", "1")
	mustCLI(t, url, "smartserver", "register", "--install-code", "IC-ONCE", "--version", "3.4")
	mustCLI(t, url, "smartserver", "set-customer-id", "IC-ONCE", cid)
	mustCLI(t, url, "smartserver", "download-licenses", "IC-ONCE")
	unknown := uuid.NewString()

	tests := []struct {
		name   string
		args   []string
		reason string
	}{
		{"activate", []string{"smartserver", "activate", "IC-ONCE", unknown}, "unknown_license"},
		{"set-customer-id", []string{"smartserver", "set-customer-id", "IC-ONCE", unknown}, "unknown_customer"},
		{"provision", []string{"device", "provision", "IC-ONCE", unknown}, "unknown_device"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := cli(t, url, tt.args...)
			if r.code != exitRefused || r.out != "" {
				t.Fatalf("exit %d, stdout %q; want exit 1 and nothing on stdout", r.code, r.out)
			}
			if n := strings.Count(r.err, tt.reason); n != 1 || !strings.Contains(r.err, "Error: ") {
				t.Fatalf("stderr %q names %s %d times, want once in an Error line", r.err, tt.reason, n)
			}
			r = cli(t, url, append(tt.args, "-o", "json")...)
			if r.code != exitRefused || !json.Valid([]byte(r.out)) || !strings.Contains(r.out, `"rejected"`) || !strings.Contains(r.out, `"`+tt.reason+`"`) {
				t.Fatalf("-o json: exit %d, stdout %q; want exit 1 and the rejected outcome with %s on stdout", r.code, r.out, tt.reason)
			}
		})
	}

	// One activation of two refused: the table has the other, stderr the refusal.
	r := cli(t, url, "smartserver", "activate", "IC-ONCE", lid, unknown)
	if r.code != exitRefused || !strings.Contains(r.out, lid) || strings.Contains(r.out, unknown) {
		t.Fatalf("exit %d, stdout %q; want exit 1 and a table with %s only", r.code, r.out, lid)
	}
	if strings.Count(r.err, "unknown_license") != 1 || !strings.Contains(r.err, unknown) {
		t.Fatalf("stderr %q, want the one refusal naming %s", r.err, unknown)
	}
}
