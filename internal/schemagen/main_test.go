package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/licensebus/licensebus/events"
)

const root = "../.."

// Ensure the schemas in the repository are what the Go types generate: a
// changed data type without regenerated schemas fails here.
func TestSchemasAreCurrent(t *testing.T) {
	problems, err := drift(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// Ensure drift notices a changed, a missing and a stale file, and says
// how to fix it.
func TestDriftIsNoticed(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"events", "internal/audit"} { // the sources the docs come from
		if err := os.CopyFS(filepath.Join(dir, d), os.DirFS(filepath.Join(root, d))); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.RemoveAll(filepath.Join(dir, schemaDir)); err != nil {
		t.Fatal(err)
	}
	if err := run(dir); err != nil {
		t.Fatal(err)
	}
	if problems, err := drift(dir); err != nil || len(problems) != 0 {
		t.Fatalf("right after generating: %v %v", problems, err)
	}
	changed := filepath.Join(dir, schemaDir, string(events.RegisterType)+".json")
	if err := os.WriteFile(changed, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, auditEntryFile)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, schemaDir, "io.licensebus.gone.json"), []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	problems, err := drift(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) != 3 {
		t.Fatalf("problems %q, want the changed, the missing and the stale file", problems)
	}
	for _, p := range problems {
		if !strings.Contains(p, "go run ./internal/schemagen") {
			t.Fatalf("%q does not say how to fix it", p)
		}
	}
}

// schema is the part of a generated schema this test reads.
type schema struct {
	Schema     string                     `json:"$schema"`
	Title      string                     `json:"title"`
	Type       string                     `json:"type"`
	Properties map[string]json.RawMessage `json:"properties"`
	Required   []string                   `json:"required"`
	X          struct {
		Type    string `json:"cloudevent_type"`
		Kind    string `json:"kind"`
		Subject string `json:"subject"`
	} `json:"x-licensebus"`
}

// Ensure every type has a draft 2020-12 schema that describes every member
// its data encodes to and requires only members always written.
func TestSchemasDescribeTheData(t *testing.T) {
	files, err := generate(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range events.Types() {
		t.Run(string(typ), func(t *testing.T) {
			var s schema
			if err := json.Unmarshal(files["events/schemas/"+string(typ)+".json"], &s); err != nil {
				t.Fatal(err)
			}
			info, _ := events.Lookup(typ)
			if s.Schema != draft || s.Title != string(typ) || s.Type != "object" || s.X.Type != string(typ) || s.X.Subject == "" ||
				(s.X.Kind == "command") != info.Command {
				t.Fatalf("schema head %+v", s)
			}
			b, err := json.Marshal(info.New())
			if err != nil {
				t.Fatal(err)
			}
			var zero map[string]json.RawMessage
			if err := json.Unmarshal(b, &zero); err != nil {
				t.Fatal(err)
			}
			for k := range zero {
				if _, ok := s.Properties[k]; !ok {
					t.Errorf("member %q of the data has no property", k)
				}
			}
			for _, k := range s.Required {
				if _, ok := zero[k]; !ok {
					t.Errorf("required %q is omitted from a zero value", k)
				}
			}
		})
	}
}
