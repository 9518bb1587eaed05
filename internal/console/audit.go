package console

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/events/audit"
	auditlog "github.com/licensebus/licensebus/internal/audit"
)

// auditQuery is what the audit screen and GET /api/v1/audit filter by.
type auditQuery struct {
	Filter audit.Filter
	Until  time.Time
	Limit  int
	// Form holds the values as given, to draw the form again.
	Form url.Values
}

// maxAuditRows bounds what one audit listing returns (the newest matches).
const maxAuditRows = 1000

func parseAuditQuery(q url.Values, now time.Time) (auditQuery, error) {
	a := auditQuery{Limit: 100, Form: q}
	a.Filter.LicenseID = strings.TrimSpace(q.Get("license"))
	a.Filter.InstallCode = strings.TrimSpace(q.Get("smartserver"))
	a.Filter.CustomerID = strings.TrimSpace(q.Get("customer"))
	for _, t := range q["type"] {
		if t = strings.TrimSpace(t); t != "" {
			a.Filter.Types = append(a.Filter.Types, t)
		}
	}
	for _, k := range q["kind"] {
		if k == "" {
			continue
		}
		if !audit.Kind(k).Known() {
			return a, badRequest("kind must be command, event or rejection, not %q", k)
		}
		a.Filter.Kinds = append(a.Filter.Kinds, audit.Kind(k))
	}
	var err error
	if a.Filter.Since, err = parseTime("since", q.Get("since"), now); err != nil {
		return a, err
	}
	if a.Until, err = parseTime("until", q.Get("until"), now); err != nil {
		return a, err
	}
	if v := q.Get("limit"); v != "" {
		if _, err := fmt.Sscan(v, &a.Limit); err != nil || a.Limit < 1 || a.Limit > maxAuditRows {
			return a, badRequest("limit must be 1-%d, not %q", maxAuditRows, v)
		}
	}
	return a, nil
}

// parseTime reads a point in time as the CLI's --since does (RFC 3339, a
// date, a duration ago), and as a browser's datetime-local field gives it.
func parseTime(name, s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, badRequest("%s %q is not a time: use RFC 3339 (2026-01-02T15:04:05Z), a date (2026-01-02) or a duration ago (15m)", name, s)
}

// auditTail returns the newest q.Limit entries that match, oldest first,
// read from the trail's stream as x (a reader or an operator may; the NATS
// server refuses anyone else).
func (x *session) auditTail(ctx context.Context, q auditQuery) ([]*audit.Entry, error) {
	var held []*audit.Entry
	err := auditlog.Read(ctx, x.js, auditlog.ReadOptions{Since: q.Filter.Since}, func(r auditlog.Record) error {
		e := r.Entry
		if e == nil || !q.Filter.Match(e) {
			return nil
		}
		if !q.Until.IsZero() {
			if t, err := time.Parse(time.RFC3339Nano, e.StreamTime); err == nil && !t.Before(q.Until) {
				return auditlog.ErrStop
			}
		}
		if held = append(held, e); len(held) > q.Limit {
			held = held[1:]
		}
		return nil
	})
	return held, err
}

// TraceNode is one entry of a causal trace with what it caused.
type TraceNode struct {
	*audit.Entry
	Children []TraceNode `json:"children"`
}

func traceNodes(ns []*audit.Node) []TraceNode {
	out := make([]TraceNode, len(ns))
	for i, n := range ns {
		out[i] = TraceNode{Entry: n.Entry, Children: traceNodes(n.Children)}
	}
	return out
}

// auditTrace is the causal tree of the command with correlation id id, as
// audit trace builds it.
func (x *session) auditTrace(ctx context.Context, id string) ([]TraceNode, error) {
	tr := audit.NewTracer(id)
	err := auditlog.Read(ctx, x.js, auditlog.ReadOptions{}, func(r auditlog.Record) error {
		if r.Entry != nil {
			tr.Add(r.Entry)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	roots := tr.Roots()
	if len(roots) == 0 {
		return nil, events.Reject(events.ReasonNotFound, "no entry in the audit trail has correlation id %s", id)
	}
	return traceNodes(roots), nil
}

// auditContext bounds a read of the whole trail as x, which the NATS
// server's refusal ends at once.
func (x *session) auditContext(r *http.Request) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
	ctx, done := x.guard(ctx)
	return ctx, func() { done(); cancel() }
}

func (c *Console) apiAudit(w http.ResponseWriter, r *http.Request, x *session) error {
	q, err := parseAuditQuery(r.URL.Query(), c.cfg.Now())
	if err != nil {
		return err
	}
	ctx, cancel := x.auditContext(r)
	defer cancel()
	es, err := x.auditTail(ctx, q)
	if err != nil {
		return deniedOr(ctx, err)
	}
	if es == nil {
		es = []*audit.Entry{}
	}
	writeJSON(w, http.StatusOK, es)
	return nil
}

func (c *Console) apiTrace(w http.ResponseWriter, r *http.Request, x *session) error {
	ctx, cancel := x.auditContext(r)
	defer cancel()
	t, err := x.auditTrace(ctx, r.PathValue("id"))
	if err != nil {
		return deniedOr(ctx, err)
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

func (c *Console) verify(r *http.Request, x *session) (Verification, error) {
	if c.cfg.VerifyAudit == nil {
		return Verification{}, &httpError{status: http.StatusNotFound, reason: string(events.ReasonNotFound), msg: "this console cannot verify the trail"}
	}
	ctx, cancel := x.auditContext(r)
	defer cancel()
	v, err := c.cfg.VerifyAudit(ctx, x.js)
	return v, deniedOr(ctx, err)
}

// apiVerify checks the live trail: 200 with the report when intact, a
// tampered problem (409) carrying it otherwise.
func (c *Console) apiVerify(w http.ResponseWriter, r *http.Request, x *session) error {
	v, err := c.verify(r, x)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if !v.Intact {
		status = events.ReasonTampered.Class().HTTPStatus()
	}
	writeJSON(w, status, v)
	return nil
}

// apiExport streams the trail, or the part from ?since until before
// ?until, as audit export writes it (the same bytes).
func (c *Console) apiExport(w http.ResponseWriter, r *http.Request, x *session) error {
	q := r.URL.Query()
	now := c.cfg.Now()
	since, err := parseTime("since", q.Get("since"), now)
	if err != nil {
		return err
	}
	until, err := parseTime("until", q.Get("until"), now)
	if err != nil {
		return err
	}
	format := q.Get("format")
	ct := "application/jsonl"
	switch format {
	case "", auditlog.FormatJSONL:
		format = auditlog.FormatJSONL
	case auditlog.FormatCSV:
		ct = "text/csv; charset=utf-8"
	default:
		return badRequest("format must be jsonl or csv, not %q", format)
	}
	// Refusals (no trail, no permission) come before the first byte:
	// the stream's info is read first.
	ctx, cancel := x.auditContext(r)
	defer cancel()
	if _, err := x.js.Stream(ctx, audit.Stream); err != nil {
		return deniedOr(ctx, err)
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="licensebus-audit-%s.%s"`, now.UTC().Format("20060102T150405Z"), format))
	w.Header().Set("Cache-Control", "no-store")
	if err := auditlog.Export(ctx, x.js, w, auditlog.ExportOptions{Since: since, Until: until, Format: format}); err != nil {
		// The status is sent: the truncated body is all the client gets,
		// and verify names where it ends.
		c.cfg.Logger.Warn().Err(err).Msg("audit export stopped")
	}
	return nil
}
