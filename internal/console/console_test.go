package console

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/nats-io/nats.go"
)

// Ensure every refusal answers with the HTTP status of its reason's class
// (the one mapping events.Class.HTTPStatus), and failures on the way with
// theirs.
func TestClassify(t *testing.T) {
	for _, tt := range []struct {
		name   string
		err    error
		status int
		reason string
	}{
		{"rejection", events.Reject(events.ReasonBadUUID, "x"), 422, "bad_uuid"},
		{"not found", events.Reject(events.ReasonUnknownServer, "x"), 404, "unknown_smartserver"},
		{"conflict", fmt.Errorf("wrapped: %w", events.Reject(events.ReasonAlreadyActive, "x")), 409, "license_already_active"},
		{"query refused", &client.APIError{Code: "licenses_not_downloaded", Message: "x"}, 409, "licenses_not_downloaded"},
		{"permission", fmt.Errorf("%w: Publish to x", nats.ErrPermissionViolation), 403, "permission_denied"},
		{"no server", nats.ErrNoResponders, 503, "no_outcome"},
		{"timeout", context.DeadlineExceeded, 503, "no_outcome"},
		{"web layer", badRequest("no"), 422, "bad_request"},
		{"anything else", errors.New("boom"), 500, "internal"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, reason, _ := classify(tt.err)
			if status != tt.status || reason != tt.reason {
				t.Fatalf("classify = %d %s, want %d %s", status, reason, tt.status, tt.reason)
			}
			for _, r := range events.Reasons() {
				if string(r) == reason && r.Class().HTTPStatus() != status {
					t.Fatalf("%s answered %d, its class says %d", r, status, r.Class().HTTPStatus())
				}
			}
		})
	}
}

// Ensure command ids come from Idempotency-Key (or a form's command_id),
// batches get key-1…key-n as the CLI's, and keys that cannot be an id are
// refused.
func TestCommandIDs(t *testing.T) {
	req := httptest.NewRequest("POST", "/", nil)
	req.Header.Set("Idempotency-Key", "k1")
	if id, err := commandID(req); err != nil || id != "k1" {
		t.Fatalf("commandID = %q, %v", id, err)
	}
	form := httptest.NewRequest("POST", "/", strings.NewReader("command_id=f1"))
	form.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id, _ := commandID(form); id != "f1" {
		t.Fatalf("form's command id = %q", id)
	}
	for _, bad := range []string{"with space", strings.Repeat("x", maxKey+1), "é"} {
		req.Header.Set("Idempotency-Key", bad)
		if _, err := commandID(req); err == nil {
			t.Fatalf("Idempotency-Key %q accepted", bad)
		}
	}
	if got := batchIDs("k", 1); len(got) != 1 || got[0] != "k" {
		t.Fatalf("batchIDs(k, 1) = %v", got)
	}
	if got := batchIDs("k", 2); got[0] != "k-1" || got[1] != "k-2" {
		t.Fatalf("batchIDs(k, 2) = %v", got)
	}
}

// Ensure a sign-in sends back only to this site, and tokens read in every
// base64 form and as text.
func TestSafeNextAndTokens(t *testing.T) {
	for in, want := range map[string]string{"/audit": "/audit", "//evil.example": "/", "https://evil.example": "/", "/\\evil": "/", "": "/"} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
	creds := []byte("-----BEGIN NATS USER JWT-----\nabc\n------END NATS USER JWT------\n")
	if got := decodeToken(Token(creds)); string(got) != string(creds) {
		t.Fatalf("token round trip: %q", got)
	}
	if got := decodeToken(string(creds)); string(got) != strings.TrimSpace(string(creds)) {
		t.Fatalf("text token: %q", got)
	}
}
