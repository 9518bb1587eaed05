package grant_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/licensebus/licensebus/events/grant"
)

// recipe returns the Python verification recipe of docs/license-files.md,
// the code block after its marker.
func recipe(tb testing.TB) string {
	tb.Helper()
	doc, err := os.ReadFile("../../docs/license-files.md")
	if err != nil {
		tb.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "<!-- recipe: verify-license -->\n```python\n")
	code, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		tb.Fatal("no recipe block in docs/license-files.md")
	}
	return code
}

// Ensure the documented recipe verifies a file licensebus signed with a
// standard library, and refuses an edited one and an unknown key: the
// format is verifiable without licensebus. Skipped without python3 and
// its cryptography package.
func TestPythonRecipe(t *testing.T) {
	if err := exec.Command("python3", "-c", "import cryptography").Run(); err != nil {
		t.Skip("python3 with cryptography is not installed")
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "verify_license.py")
	if err := os.WriteFile(script, []byte(recipe(t)), 0o644); err != nil {
		t.Fatal(err)
	}
	k, other := seeded(1), seeded(2)
	keys := func(key grant.Key) string {
		raw, _ := json.Marshal([]map[string]any{{"key_id": key.ID, "algorithm": grant.Algorithm, "public_key": grant.EncodePublicKey(key.Public().Key), "current": true}})
		p := filepath.Join(dir, key.ID+"-keys.json")
		if err := os.WriteFile(p, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := sampleFile(k)
	tests := []struct {
		name string
		file []byte
		keys string
		want string // "" for success
	}{
		{"valid", good, keys(k), ""},
		{"edited terms", bytes.Replace(good, []byte(`"devices": 200`), []byte(`"devices": 201`), 1), keys(k), "bad_signature"},
		{"edited install code", bytes.Replace(good, []byte(`IC-0001`), []byte(`IC-0002`), 1), keys(k), "bad_signature"},
		{"another key", good, keys(other), "unknown_key"},
		{"not a license file", []byte(`{"format":"other"}`), keys(k), "malformed_license_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(dir, "f.lic")
			if err := os.WriteFile(file, tt.file, 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("python3", script, file, tt.keys).CombinedOutput()
			switch {
			case tt.want == "" && (err != nil || !strings.Contains(string(out), "c0ffee00-1111-4222-8333-444455556666 maintenance 200 2027-12-31 on IC-0001")):
				t.Fatalf("recipe: %v\n%s", err, out)
			case tt.want != "" && (err == nil || !strings.Contains(string(out), tt.want)):
				t.Fatalf("recipe: %v\n%s, want %s", err, out, tt.want)
			}
		})
	}
}
