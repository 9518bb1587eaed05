package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/events/audit"
	auditlog "github.com/licensebus/licensebus/internal/audit"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/licensebus/licensebus/internal/console"
	"github.com/licensebus/licensebus/projections/devices"
	"github.com/licensebus/licensebus/projections/licensing"
	"github.com/licensebus/licensebus/projections/rollouts"
)

// TestConsoleAPI calls every endpoint of /api/v1 as the operator and
// checks the status codes, the problem+json reasons (the status from the
// reason's class), idempotency by Idempotency-Key, and each answer against
// openapi.json.
func TestConsoleAPI(t *testing.T) {
	s := mustServe(t, t.TempDir())
	a := mustAPI(t, s)
	op := tokenOf(t, s.credsFiles().admin)

	// The document needs no sign-in; everything else does.
	a.call("", "GET", "/api/v1/openapi.json", nil).want(t, 200, "")
	if r := a.call("", "GET", "/api/v1/smartservers", nil).want(t, 401, "permission_denied"); r.header.Get("WWW-Authenticate") == "" {
		t.Fatalf("401 without WWW-Authenticate")
	}
	a.call(console.Token([]byte("not a creds file")), "GET", "/api/v1/smartservers", nil).want(t, 401, "permission_denied")
	a.call(op, "GET", "/api/v1/nothing", nil).want(t, 404, "not_found")

	// The License Partner Portal's side: a customer and its licenses.
	var o console.Outcome
	a.call(op, "POST", "/api/v1/customers", map[string]string{"name": "P2022-0208"}).want(t, 200, "").into(t, &o)
	var cc events.CustomerCreated
	mustUnmarshal(t, o.Data, &cc)
	a.call(op, "POST", "/api/v1/customers", map[string]any{"name": "x", "color": "blue"}).want(t, 422, "bad_request")
	var lids []string
	for _, l := range []map[string]any{
		{"customer_id": cc.CustomerID, "kind": "capacity", "devices": 200},
		{"customer_id": cc.CustomerID, "kind": "maintenance", "devices": 200, "expires": "2099-01-31"},
		{"customer_id": cc.CustomerID, "kind": "capacity", "devices": 200},
	} {
		a.call(op, "POST", "/api/v1/licenses", l).want(t, 200, "").into(t, &o)
		var la events.LicenseAdded
		mustUnmarshal(t, o.Data, &la)
		lids = append(lids, la.LicenseID)
	}
	a.call(op, "POST", "/api/v1/licenses", map[string]any{"customer_id": cc.CustomerID, "kind": "capacity", "devices": 0}).want(t, 422, "invalid_data")
	var inv []licensing.LicenseRow
	a.call(op, "GET", "/api/v1/licenses?customer_id="+cc.CustomerID, nil).want(t, 200, "").into(t, &inv)
	if len(inv) != 3 {
		t.Fatalf("inventory %d licenses, want 3", len(inv))
	}
	var cs []licensing.Customer
	if a.call(op, "GET", "/api/v1/customers", nil).want(t, 200, "").into(t, &cs); len(cs) != 1 {
		t.Fatalf("customers %+v", cs)
	}

	// Registering: a repeat with the same Idempotency-Key gets the first
	// outcome; the same key for another body is id_reused.
	var first, again console.Outcome
	a.call(op, "POST", "/api/v1/smartservers", map[string]string{"install_code": "IC-A", "name": "SC-A", "version": "3.4"}, "Idempotency-Key", "reg-a").want(t, 200, "").into(t, &first)
	a.call(op, "POST", "/api/v1/smartservers", map[string]string{"install_code": "IC-A", "name": "SC-A", "version": "3.4"}, "Idempotency-Key", "reg-a").want(t, 200, "").into(t, &again)
	if first.CommandID != "reg-a" || again.Data == nil || string(first.Data) != string(again.Data) || first.EventType != again.EventType {
		t.Fatalf("repeat: first %+v, again %+v", first, again)
	}
	if p := a.call(op, "POST", "/api/v1/smartservers", map[string]string{"install_code": "IC-B", "name": "SC-B", "version": "3.4"}, "Idempotency-Key", "reg-a").want(t, 409, "id_reused").problem(t); p.CommandID != "reg-a" {
		t.Fatalf("id_reused problem names command %q", p.CommandID)
	}
	a.call(op, "POST", "/api/v1/smartservers", map[string]string{"install_code": "IC-B", "name": "SC-B", "version": "3.4"}).want(t, 200, "")
	a.call(op, "POST", "/api/v1/smartservers", map[string]string{"install_code": "IC-C", "version": "3.4"}, "Idempotency-Key", "has a space").want(t, 422, "bad_request")

	// The fleet, a page at a time.
	var page client.FleetPage
	a.call(op, "GET", "/api/v1/smartservers?q=ic-a", nil).want(t, 200, "").into(t, &page)
	if page.Total != 1 || page.SmartServers[0].Account.InstallCode != "IC-A" {
		t.Fatalf("search ic-a: %+v", page)
	}
	a.call(op, "GET", "/api/v1/smartservers?limit=1&offset=1", nil).want(t, 200, "").into(t, &page)
	if page.Total != 2 || len(page.SmartServers) != 1 || page.SmartServers[0].Account.InstallCode != "IC-B" {
		t.Fatalf("second page: %+v", page)
	}
	a.call(op, "GET", "/api/v1/smartservers?limit=0", nil).want(t, 422, "bad_request")
	var ss client.SmartServer
	a.call(op, "GET", "/api/v1/smartservers/IC-A", nil).want(t, 200, "").into(t, &ss)
	if ss.Account.SegmentController != "SC-A" {
		t.Fatalf("IC-A: %+v", ss)
	}
	a.call(op, "GET", "/api/v1/smartservers/IC-Z", nil).want(t, 404, "unknown_smartserver")
	a.call(op, "GET", "/api/v1/smartservers/IC.A", nil).want(t, 422, "bad_install_code")

	// Manage Customer Accounts.
	a.call(op, "PUT", "/api/v1/smartservers/IC-A/customer-id", map[string]string{"customer_id": "not-a-uuid"}).want(t, 422, "bad_uuid")
	a.call(op, "PUT", "/api/v1/smartservers/IC-A/customer-id", map[string]string{"customer_id": "2133c667-af41-4518-94df-a2bb3b775330"}).want(t, 404, "unknown_customer")
	a.call(op, "PUT", "/api/v1/smartservers/IC-A/customer-id", map[string]string{"customer_id": cc.CustomerID}).want(t, 200, "")

	// Download Licenses from the Cloud, ACTIVATE.
	a.call(op, "GET", "/api/v1/smartservers/IC-A/downloads", nil).want(t, 409, "licenses_not_downloaded")
	var dl struct {
		Outcome  console.Outcome        `json:"outcome"`
		Licenses []licensing.LicenseRow `json:"licenses"`
	}
	if a.call(op, "POST", "/api/v1/smartservers/IC-A/downloads", nil).want(t, 200, "").into(t, &dl); len(dl.Licenses) != 3 {
		t.Fatalf("downloaded %+v", dl)
	}
	var rows []licensing.LicenseRow
	if a.call(op, "GET", "/api/v1/smartservers/IC-A/downloads", nil).want(t, 200, "").into(t, &rows); len(rows) != 3 {
		t.Fatalf("downloads view: %d rows", len(rows))
	}
	a.call(op, "POST", "/api/v1/smartservers/IC-A/activations", map[string]any{"license_ids": []string{}}).want(t, 422, "bad_request")
	var batch struct {
		Results []console.Outcome `json:"results"`
	}
	a.call(op, "POST", "/api/v1/smartservers/IC-A/activations", map[string]any{"license_ids": lids[:2]}, "Idempotency-Key", "act-a").want(t, 200, "").into(t, &batch)
	if len(batch.Results) != 2 || batch.Results[0].CommandID != "act-a-1" || batch.Results[1].CommandID != "act-a-2" || batch.Results[1].Status != console.Accepted {
		t.Fatalf("activations: %+v", batch)
	}
	// The same key again: the same outcomes, nothing activated twice.
	a.call(op, "POST", "/api/v1/smartservers/IC-A/activations", map[string]any{"license_ids": lids[:2]}, "Idempotency-Key", "act-a").want(t, 200, "").into(t, &batch)
	if a.call(op, "GET", "/api/v1/smartservers/IC-A/licenses", nil).want(t, 200, "").into(t, &rows); len(rows) != 2 {
		t.Fatalf("Manage Licenses: %d rows, want 2", len(rows))
	}
	// Activated elsewhere: refused with its reason, each outcome listed.
	a.call(op, "PUT", "/api/v1/smartservers/IC-B/customer-id", map[string]string{"customer_id": cc.CustomerID}).want(t, 200, "")
	a.call(op, "POST", "/api/v1/smartservers/IC-B/downloads", nil).want(t, 200, "")
	if p := a.call(op, "POST", "/api/v1/smartservers/IC-B/activations", map[string]any{"license_ids": []string{lids[0]}}).want(t, 409, "").problem(t); len(p.Results) != 1 || p.Results[0].Status != console.Rejected {
		t.Fatalf("activation of a license active elsewhere: %+v", p)
	}

	// The Devices widget.
	a.call(op, "POST", "/api/v1/smartservers/IC-A/devices", map[string]string{"name": "AHU-1", "protocol": "bacnet"}).want(t, 200, "")
	a.call(op, "POST", "/api/v1/smartservers/IC-A/devices", map[string]string{"name": "X", "protocol": "zigbee"}).want(t, 422, "invalid_data")
	var devs []devices.Row
	if a.call(op, "GET", "/api/v1/smartservers/IC-A/devices", nil).want(t, 200, "").into(t, &devs); len(devs) != 1 || devs[0].Colour != "blue" {
		t.Fatalf("devices: %+v", devs)
	}
	a.call(op, "POST", "/api/v1/smartservers/IC-A/provisioning", map[string]any{}).want(t, 422, "bad_request")
	a.call(op, "POST", "/api/v1/smartservers/IC-A/provisioning", map[string]any{"all": true}).want(t, 200, "")
	if a.call(op, "GET", "/api/v1/smartservers/IC-A/devices", nil).want(t, 200, "").into(t, &devs); devs[0].Colour != "green" {
		t.Fatalf("after provisioning: %+v", devs)
	}
	a.call(op, "PUT", "/api/v1/smartservers/IC-A/auto-provision", map[string]bool{"enabled": true}).want(t, 200, "")

	// Transfer to Cloud; again, nothing is left to transfer.
	a.call(op, "POST", "/api/v1/smartservers/IC-A/transfer", nil).want(t, 200, "")
	a.call(op, "POST", "/api/v1/smartservers/IC-A/transfer", nil).want(t, 409, "no_active_licenses")

	// Rollouts: the plan, the start (idempotent: the same rollout), the
	// actions.
	spec := events.RolloutSpec{Kind: events.RolloutActivate, CustomerID: cc.CustomerID, Targets: []string{"IC-A", "IC-Z"},
		Activate: []events.LicenseWant{{Kind: events.Capacity}}, Concurrency: 2, Retries: 0}
	var plan struct {
		Targets, Ready, Refused int
	}
	if a.call(op, "POST", "/api/v1/rollouts?dry_run=true", spec).want(t, 200, "").into(t, &plan); plan.Targets != 2 || plan.Refused != 1 {
		t.Fatalf("plan: %+v", plan)
	}
	r := a.call(op, "POST", "/api/v1/rollouts", spec, "Idempotency-Key", "ro-1").want(t, 200, "")
	loc := r.header.Get("Location")
	if loc != "/api/v1/rollouts/"+client.RolloutID("ro-1") {
		t.Fatalf("Location %q", loc)
	}
	if r2 := a.call(op, "POST", "/api/v1/rollouts", spec, "Idempotency-Key", "ro-1").want(t, 200, ""); r2.header.Get("Location") != loc {
		t.Fatalf("a repeated start names %q, not %q", r2.header.Get("Location"), loc)
	}
	var ros []rollouts.Rollout
	if a.call(op, "GET", "/api/v1/rollouts", nil).want(t, 200, "").into(t, &ros); len(ros) != 1 {
		t.Fatalf("rollouts: %+v", ros)
	}
	var det rollouts.Detail
	if a.call(op, "GET", loc, nil).want(t, 200, "").into(t, &det); len(det.Targets) != 2 {
		t.Fatalf("rollout: %+v", det)
	}
	a.call(op, "GET", "/api/v1/rollouts/nope", nil).want(t, 404, "unknown_rollout")
	a.call(op, "POST", loc+"/explode", nil).want(t, 404, "not_found")
	if pr := a.call(op, "POST", loc+"/pause", nil); pr.status != 200 {
		pr.want(t, 409, "rollout_state") // it may have ended already
	}
	a.call(op, "POST", "/api/v1/rollouts", map[string]any{"kind": "activate"}).want(t, 422, "")

	// command wait, over HTTP.
	var co console.Outcome
	if a.call(op, "GET", "/api/v1/commands/reg-a", nil).want(t, 200, "").into(t, &co); co.Status != console.Accepted {
		t.Fatalf("command reg-a: %+v", co)
	}
	if a.call(op, "GET", "/api/v1/commands/ro-1", nil).want(t, 200, "").into(t, &co); co.EventType != string(events.RolloutStartedType) {
		t.Fatalf("command ro-1 (a rollout start): %+v", co)
	}
	a.call(op, "GET", "/api/v1/commands/never-sent", nil).want(t, 202, "")
	a.call(op, "GET", "/api/v1/commands/reg-a?wait=forever", nil).want(t, 422, "bad_request")

	// The audit trail: filtered entries, a trace, verify, export.
	_, js := mustClient(t, s.URL())
	waitAudited(t, js)
	var es []audit.Entry
	a.call(op, "GET", "/api/v1/audit?smartserver=IC-A&kind=command&type=activate_license", nil).want(t, 200, "").into(t, &es)
	var got []string
	for _, e := range es {
		got = append(got, e.ID)
	}
	if len(es) != 3 || got[0] != "act-a-1" || got[1] != "act-a-2" { // the third is the rollout's
		t.Fatalf("audit: activations of IC-A %v, want act-a-1, act-a-2 and the rollout's", got)
	}
	a.call(op, "GET", "/api/v1/audit?kind=gossip", nil).want(t, 422, "bad_request")
	var tree []console.TraceNode
	if a.call(op, "GET", "/api/v1/audit/trace/act-a-1", nil).want(t, 200, "").into(t, &tree); len(tree) != 1 || len(tree[0].Children) == 0 {
		t.Fatalf("trace: %+v", tree)
	}
	a.call(op, "GET", "/api/v1/audit/trace/nothing-by-this-id", nil).want(t, 404, "not_found")
	var v console.Verification
	if a.call(op, "GET", "/api/v1/audit/verify", nil).want(t, 200, "").into(t, &v); !v.Intact {
		t.Fatalf("verify: %+v", v)
	}
	jl := a.call(op, "GET", "/api/v1/audit/export", nil).want(t, 200, "")
	sc := bufio.NewScanner(bytes.NewReader(jl.body))
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		var e audit.Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Seq != uint64(n+1) {
			t.Fatalf("export line %d: %v %q", n+1, err, sc.Text())
		}
		n++
	}
	if n == 0 || !strings.HasPrefix(jl.header.Get("Content-Disposition"), "attachment;") {
		t.Fatalf("export: %d lines, %v", n, jl.header)
	}
	csv := a.call(op, "GET", "/api/v1/audit/export?format=csv", nil).want(t, 200, "")
	if line, _, _ := strings.Cut(string(csv.body), "\n"); line != strings.Join(auditlog.CSVHeader, ",") {
		t.Fatalf("CSV header %q", line)
	}
	a.call(op, "GET", "/api/v1/audit/export?format=xml", nil).want(t, 422, "bad_request")
}

// TestConsoleAPIIdentities: each identity sees and does what the NATS
// server lets it, through the API as on the bus: a SmartServer's token
// only its own SmartServer, a reader's no command.
func TestConsoleAPIIdentities(t *testing.T) {
	s := mustServe(t, t.TempDir())
	a := mustAPI(t, s)
	op := tokenOf(t, s.credsFiles().admin)
	for _, ic := range []string{"IC-A", "IC-B"} {
		a.call(op, "POST", "/api/v1/smartservers", map[string]string{"install_code": ic, "version": "3.4"}).want(t, 200, "")
	}
	ssCreds := issue(t, s.URL(), "smartserver", "IC-A")
	ssA := mustCLI(t, s.URL(), "creds", "token", ssCreds) // what a person pastes or a script sends
	reader := tokenOf(t, issue(t, s.URL(), "reader", "audit-team"))

	a.call(ssA, "GET", "/api/v1/smartservers/IC-A", nil).want(t, 200, "")
	a.call(ssA, "GET", "/api/v1/smartservers/IC-A/devices", nil).want(t, 200, "")
	a.call(ssA, "GET", "/api/v1/smartservers/IC-B", nil).want(t, 403, "permission_denied")
	a.call(ssA, "GET", "/api/v1/smartservers", nil).want(t, 403, "permission_denied")
	a.call(ssA, "GET", "/api/v1/audit", nil).want(t, 403, "permission_denied")
	// Its own commands, with their outcomes asked in its own scope.
	a.call(ssA, "POST", "/api/v1/smartservers/IC-A/devices", map[string]string{"name": "AHU-1", "protocol": "lon"}).want(t, 200, "")
	a.call(ssA, "PUT", "/api/v1/smartservers/IC-B/auto-provision", map[string]bool{"enabled": true}).want(t, 403, "permission_denied")
	a.call(ssA, "POST", "/api/v1/customers", map[string]string{"name": "mine"}).want(t, 403, "permission_denied")

	a.call(reader, "GET", "/api/v1/smartservers", nil).want(t, 200, "")
	a.call(reader, "GET", "/api/v1/smartservers/IC-B/licenses", nil).want(t, 200, "")
	a.call(reader, "GET", "/api/v1/audit?limit=5", nil).want(t, 200, "")
	a.call(reader, "POST", "/api/v1/customers", map[string]string{"name": "not mine"}).want(t, 403, "permission_denied")
	a.call(reader, "PUT", "/api/v1/smartservers/IC-A/auto-provision", map[string]bool{"enabled": true}).want(t, 403, "permission_denied")
	// Nothing a refused identity tried happened.
	var cs []licensing.Customer
	if a.call(op, "GET", "/api/v1/customers", nil).want(t, 200, "").into(t, &cs); len(cs) != 0 {
		t.Fatalf("customers %+v after refused creates", cs)
	}
	// Serve's own credentials do not sign in to the console.
	a.call(tokenOf(t, s.credsFiles().service), "GET", "/api/v1/smartservers", nil).want(t, http.StatusUnauthorized, "permission_denied")
}
