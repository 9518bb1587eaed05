package audit

import (
	"os/exec"
	"strings"
	"testing"
)

// Ensure the package stays importable without NATS: a verifier outside
// licensebus needs nothing but it.
func TestImportsNothingFromNATS(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "github.com/nats-io/") {
			t.Errorf("imports %s", dep)
		}
	}
}
