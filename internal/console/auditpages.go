package console

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/events/audit"
	"github.com/licensebus/licensebus/internal/tracing"
)

// auditPage is the trail, filtered, newest last.
type auditPage struct {
	view
	Q        auditQuery
	Entries  []*audit.Entry
	LiveURL  string
	Export   string // the export links' query (since, until)
	Kinds    []string
	KindsSel map[string]bool
}

func (c *Console) auditPage(w http.ResponseWriter, r *http.Request, x *session) error {
	q, err := parseAuditQuery(r.URL.Query(), c.cfg.Now())
	if err != nil {
		return err
	}
	ctx, cancel := x.auditContext(r)
	defer cancel()
	d := auditPage{view: c.view(r, x, "Audit trail", "audit"), Q: q, Kinds: []string{"command", "event", "rejection"}, KindsSel: map[string]bool{}}
	for _, k := range q.Filter.Kinds {
		d.KindsSel[string(k)] = true
	}
	if d.Entries, err = x.auditTail(ctx, q); err != nil {
		return deniedOr(ctx, err)
	}
	live := url.Values{}
	for k, v := range r.URL.Query() {
		if k != "limit" && k != "until" {
			live[k] = v
		}
	}
	// Live entries follow the last one shown.
	if n := len(d.Entries); n > 0 {
		live.Set("after", strconv.FormatUint(d.Entries[n-1].Seq, 10))
		live.Set("after_time", d.Entries[n-1].StreamTime)
	}
	d.LiveURL = "/live/audit?" + live.Encode()
	ex := url.Values{}
	for _, k := range []string{"since", "until"} {
		if v := r.URL.Query().Get(k); v != "" {
			ex.Set(k, v)
		}
	}
	d.Export = ex.Encode()
	c.pages.render(w, http.StatusOK, "audit", d)
	return nil
}

// tracePage is the causal tree of one command.
type tracePage struct {
	view
	ID    string
	Roots []traceNode
}

// traceNode is a TraceNode with what the page shows beside it.
type traceNode struct {
	E        *audit.Entry
	TraceID  string
	Data     string
	Children []traceNode
}

func pageNodes(ns []TraceNode) []traceNode {
	out := make([]traceNode, len(ns))
	for i, n := range ns {
		out[i] = traceNode{E: n.Entry, TraceID: tracing.TraceID(n.Entry.TraceParent), Data: string(n.Entry.Data), Children: pageNodes(n.Children)}
	}
	return out
}

func (c *Console) tracePage(w http.ResponseWriter, r *http.Request, x *session) error {
	ctx, cancel := x.auditContext(r)
	defer cancel()
	id := r.PathValue("id")
	roots, err := x.auditTrace(ctx, id)
	if err != nil {
		return deniedOr(ctx, err)
	}
	c.pages.render(w, http.StatusOK, "trace", tracePage{view: c.view(r, x, "Trace "+id, "audit"), ID: id, Roots: pageNodes(roots)})
	return nil
}

// verifyPage is audit verify of the live trail.
type verifyPage struct {
	view
	V      Verification
	Report string
}

func (c *Console) verifyPage(w http.ResponseWriter, r *http.Request, x *session) error {
	v, err := c.verify(r, x)
	if err != nil {
		return err
	}
	b, _ := json.MarshalIndent(v.Report, "", "  ")
	status := http.StatusOK
	if !v.Intact {
		status = events.ReasonTampered.Class().HTTPStatus()
	}
	c.pages.render(w, status, "verify", verifyPage{view: c.view(r, x, "Verify the audit trail", "audit"), V: v, Report: string(b)})
	return nil
}

// exportDownload is the export links of the audit screen: the API's
// export, with the browser's session.
func (c *Console) exportDownload(w http.ResponseWriter, r *http.Request, x *session) error {
	return c.apiExport(w, r, x)
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
