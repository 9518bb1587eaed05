package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/nats-io/nats.go"
)

// problemType is the URI of a reason's problem type (RFC 9457 "type"): a
// URN, so it names the reason without promising a page to dereference.
func problemType(reason string) string { return "urn:licensebus:reason:" + reason }

// Problem is an RFC 9457 problem detail with licensebus's reason code.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail"`
	Instance string `json:"instance,omitempty"`
	// Reason is the refusal's code (events.Reason), as the CLI prints it.
	Reason string `json:"reason"`
	// CommandID is the CloudEvent id of the command refused, if one was
	// sent: repeating it with the same Idempotency-Key gets this answer.
	CommandID string `json:"command_id,omitempty"`
	// Results are the outcomes of each command of a batch.
	Results []Outcome `json:"results,omitempty"`
}

// httpError is a refusal the web layer makes itself: a request it cannot
// read, a missing session, a bad CSRF token.
type httpError struct {
	status int
	reason string
	msg    string
}

func (e *httpError) Error() string { return e.reason + ": " + e.msg }

func badRequest(format string, args ...any) error {
	return &httpError{status: http.StatusUnprocessableEntity, reason: string(events.ReasonBadRequest), msg: fmt.Sprintf(format, args...)}
}

// classify is the status, reason and message of err: a refusal's reason
// and the status of its class (events.Class.HTTPStatus, the one mapping
// the CLI's exit codes come from too), or what went wrong on the way.
func classify(err error) (status int, reason, msg string) {
	var he *httpError
	var ae *client.APIError
	if errors.As(err, &he) {
		return he.status, he.reason, he.msg
	}
	if r := events.AsRejection(err); r != nil {
		return r.Reason.Class().HTTPStatus(), string(r.Reason), r.Message
	}
	if errors.As(err, &ae) {
		return events.Reason(ae.Code).Class().HTTPStatus(), ae.Code, ae.Message
	}
	switch {
	case errors.Is(err, nats.ErrPermissionViolation) || strings.Contains(err.Error(), "Permissions Violation"):
		return http.StatusForbidden, string(events.ReasonPermissionDenied), err.Error()
	case errors.Is(err, nats.ErrNoResponders):
		return http.StatusServiceUnavailable, string(events.ReasonNoOutcome), "no licensebus server answers: " + err.Error()
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return http.StatusServiceUnavailable, string(events.ReasonNoOutcome), err.Error()
	}
	return http.StatusInternalServerError, string(events.ReasonInternal), err.Error()
}

// writeProblem answers err as application/problem+json.
func writeProblem(w http.ResponseWriter, r *http.Request, err error, p Problem) {
	p.Status, p.Reason, p.Detail = classify(err)
	p.Type, p.Title, p.Instance = problemType(p.Reason), http.StatusText(p.Status), r.URL.Path
	if p.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="licensebus"`)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// fail answers err: problem+json to the API, an error page to a browser.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error) {
	if strings.HasPrefix(r.URL.Path, "/api/") || strings.Contains(r.Header.Get("Accept"), "json") {
		writeProblem(w, r, err, Problem{})
		return
	}
	status, reason, msg := classify(err)
	if status >= 500 {
		c.cfg.Logger.Warn().Err(err).Str("path", r.URL.Path).Msg("console request failed")
	}
	c.pages.render(w, status, "error", errorPage{view: view{Title: http.StatusText(status)}, Status: status, Reason: reason, Message: msg})
}

func sprintf(format string, args ...any) string {
	if len(args) == 0 {
		return format
	}
	return fmt.Sprintf(format, args...)
}
