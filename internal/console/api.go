package console

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/handlers/rollout"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/licensebus/licensebus/projections/devices"
	"github.com/licensebus/licensebus/projections/licensing"
	"github.com/licensebus/licensebus/projections/rollouts"
)

// apiHandler answers an API request as session x; an error is answered as
// problem+json.
type apiHandler func(w http.ResponseWriter, r *http.Request, x *session) error

// maxBody bounds a request body: a rollout of 10,000 targets is ~200 kB.
const maxBody = 4 << 20

// apiRoute is one endpoint of /api/v1.
type apiRoute struct {
	pattern string // "METHOD /path", as http.ServeMux takes it
	h       apiHandler
}

// apiRoutes are the API's endpoints; openapi.json describes each, and a
// test holds the two against each other.
func (c *Console) apiRoutes() []apiRoute {
	return []apiRoute{
		{"GET /api/v1/smartservers", c.apiFleet},
		{"POST /api/v1/smartservers", c.apiRegister},
		{"GET /api/v1/smartservers/{ic}", c.apiSmartServer},
		{"GET /api/v1/smartservers/{ic}/licenses", c.apiLicenses},
		{"GET /api/v1/smartservers/{ic}/downloads", c.apiDownloads},
		{"POST /api/v1/smartservers/{ic}/downloads", c.apiDownload},
		{"POST /api/v1/smartservers/{ic}/activations", c.apiActivate},
		{"PUT /api/v1/smartservers/{ic}/customer-id", c.apiSetCustomerID},
		{"POST /api/v1/smartservers/{ic}/transfer", c.apiTransfer},
		{"GET /api/v1/smartservers/{ic}/devices", c.apiDevices},
		{"POST /api/v1/smartservers/{ic}/devices", c.apiAddDevice},
		{"POST /api/v1/smartservers/{ic}/provisioning", c.apiProvision},
		{"PUT /api/v1/smartservers/{ic}/auto-provision", c.apiAutoProvision},
		{"GET /api/v1/customers", c.apiCustomers},
		{"POST /api/v1/customers", c.apiCreateCustomer},
		{"GET /api/v1/licenses", c.apiInventory},
		{"POST /api/v1/licenses", c.apiAddLicense},
		{"GET /api/v1/rollouts", c.apiRollouts},
		{"POST /api/v1/rollouts", c.apiStartRollout},
		{"GET /api/v1/rollouts/{id}", c.apiRollout},
		{"POST /api/v1/rollouts/{id}/{action}", c.apiRolloutAction},
		{"GET /api/v1/commands/{id}", c.apiCommand},
		{"GET /api/v1/audit", c.apiAudit},
		{"GET /api/v1/audit/trace/{id}", c.apiTrace},
		{"GET /api/v1/audit/verify", c.apiVerify},
		{"GET /api/v1/audit/export", c.apiExport},
	}
}

func (c *Console) routeAPI() {
	c.mux.HandleFunc("GET /api/v1/openapi.json", serveOpenAPI)
	for _, rt := range c.apiRoutes() {
		c.mux.Handle(rt.pattern, c.api(rt.h))
	}
	c.mux.Handle("/api/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, &httpError{status: http.StatusNotFound, reason: string(events.ReasonNotFound), msg: "no such endpoint: see /api/v1/openapi.json"}, Problem{})
	}))
}

// api resolves the session of an API request: a bearer token (the
// credentials, base64), else the console's session cookie (with its CSRF
// token on anything that changes something), else, with auth off, the
// open API session.
func (c *Console) api(h apiHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		x, err := c.apiSession(r)
		if err == nil {
			err = h(w, r, x)
		}
		if err != nil {
			writeProblem(w, r, err, Problem{})
		}
	})
}

func (c *Console) apiSession(r *http.Request) (*session, error) {
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && c.cfg.SignIn != nil {
		x, err := c.sessions.bearer(r.Context(), tok)
		if err != nil {
			return nil, &httpError{status: http.StatusUnauthorized, reason: string(events.ReasonPermissionDenied), msg: "the bearer token's credentials were refused: " + err.Error()}
		}
		return x, nil
	}
	if ck, err := r.Cookie(sessionCookie); err == nil {
		if x := c.sessions.get(ck.Value); x != nil {
			if r.Method != http.MethodGet && r.Method != http.MethodHead && !validCSRF(r, x.csrf) {
				return nil, &httpError{status: http.StatusForbidden, reason: string(events.ReasonPermissionDenied), msg: "missing or wrong " + csrfHeader + " header"}
			}
			return x, nil
		}
	}
	if c.cfg.Shared != nil {
		return c.sessions.sharedSession(r.Context(), "api")
	}
	return nil, &httpError{status: http.StatusUnauthorized, reason: string(events.ReasonPermissionDenied),
		msg: "sign in: send Authorization: Bearer <token>, the base64 of a credentials file from `licensebus creds issue`"}
}

// decode reads a JSON body into v, refusing unknown fields.
func decode(r *http.Request, v any) error {
	d := json.NewDecoder(r.Body)
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return &httpError{status: http.StatusRequestEntityTooLarge, reason: string(events.ReasonTooLarge), msg: err.Error()}
		}
		return badRequest("the body is not the JSON this endpoint takes: %v", err)
	}
	if d.More() {
		return badRequest("the body holds more than one JSON value")
	}
	return nil
}

// query asks the server's query API as x, with a bound.
func (x *session) query(ctx context.Context, q string, p client.Params, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	ctx, done := x.guard(ctx)
	defer done()
	return deniedOr(ctx, x.c.Query(ctx, q, p, out))
}

// answer reports a command's outcome: 200 accepted, 202 pending (with
// Location, where the outcome will be), a problem with the reason refused.
func answer(w http.ResponseWriter, r *http.Request, o Outcome) error {
	switch o.Status {
	case Rejected:
		writeProblem(w, r, o.err(), Problem{CommandID: o.CommandID})
	case Pending:
		w.Header().Set("Location", "/api/v1/commands/"+o.CommandID)
		writeJSON(w, http.StatusAccepted, o)
	default:
		writeJSON(w, http.StatusOK, o)
	}
	return nil
}

// answerBatch reports the outcomes of a batch: 200 when all were
// accepted, 202 while any is pending, else a problem with the first
// refusal's reason and every outcome.
func answerBatch(w http.ResponseWriter, r *http.Request, outs []Outcome) error {
	if err := firstRefusal(outs); err != nil {
		writeProblem(w, r, err, Problem{Results: outs})
		return nil
	}
	status := http.StatusOK
	if anyPending(outs) {
		status = http.StatusAccepted
	}
	writeJSON(w, status, map[string]any{"results": outs})
	return nil
}

// command sends one command made from the request and answers its outcome.
func (c *Console) command(w http.ResponseWriter, r *http.Request, x *session, t events.Type, d events.Data) error {
	id, err := commandID(r)
	if err != nil {
		return err
	}
	o, err := c.do(r.Context(), x, t, d, id, "")
	if err != nil {
		return err
	}
	return answer(w, r, o)
}

func intParam(r *http.Request, name string, def int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, badRequest("%s must be a whole number, not %q", name, v)
	}
	return n, nil
}

func (c *Console) apiFleet(w http.ResponseWriter, r *http.Request, x *session) error {
	offset, err := intParam(r, "offset", 0)
	if err != nil {
		return err
	}
	limit, err := intParam(r, "limit", 50)
	if err != nil {
		return err
	}
	if limit < 1 || limit > client.MaxPage {
		return badRequest("limit must be 1-%d", client.MaxPage)
	}
	var page client.FleetPage
	if err := x.query(r.Context(), client.QueryFleetPage, client.Params{Search: r.URL.Query().Get("q"), Offset: offset, Limit: limit}, &page); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

func (c *Console) apiRegister(w http.ResponseWriter, r *http.Request, x *session) error {
	var d events.Register
	if err := decode(r, &d); err != nil {
		return err
	}
	return c.command(w, r, x, events.RegisterType, &d)
}

// installCode is the {ic} of a path, checked as the client checks it
// before a query's subject is built.
func installCode(r *http.Request) (string, error) {
	ic := r.PathValue("ic")
	if !events.ValidInstallCode(ic) {
		return "", events.Reject(events.ReasonBadInstallCode, "install code %q must be 1-64 letters, digits, '-' or '_'", ic)
	}
	return ic, nil
}

// viewOf answers a SmartServer's query as JSON.
func (c *Console) viewOf(query string) apiHandler {
	return func(w http.ResponseWriter, r *http.Request, x *session) error {
		ic, err := installCode(r)
		if err != nil {
			return err
		}
		var out json.RawMessage
		if err := x.query(r.Context(), query, client.Params{InstallCode: ic}, &out); err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	}
}

func (c *Console) apiSmartServer(w http.ResponseWriter, r *http.Request, x *session) error {
	return c.viewOf(client.QuerySmartServer)(w, r, x)
}

func (c *Console) apiLicenses(w http.ResponseWriter, r *http.Request, x *session) error {
	return c.viewOf(client.QueryManage)(w, r, x)
}

func (c *Console) apiDownloads(w http.ResponseWriter, r *http.Request, x *session) error {
	return c.viewOf(client.QueryDownloads)(w, r, x)
}

func (c *Console) apiDevices(w http.ResponseWriter, r *http.Request, x *session) error {
	return c.viewOf(client.QueryDevices)(w, r, x)
}

// apiDownload is Download Licenses from the Cloud: the command, then the
// view it fills.
func (c *Console) apiDownload(w http.ResponseWriter, r *http.Request, x *session) error {
	ic, err := installCode(r)
	if err != nil {
		return err
	}
	id, err := commandID(r)
	if err != nil {
		return err
	}
	o, err := c.do(r.Context(), x, events.DownloadLicensesType, &events.DownloadLicenses{InstallCode: ic}, id, "")
	if err != nil || o.Status != Accepted {
		if err != nil {
			return err
		}
		return answer(w, r, o)
	}
	var rows []licensing.LicenseRow
	if err := x.query(r.Context(), client.QueryDownloads, client.Params{InstallCode: ic}, &rows); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"outcome": o, "licenses": rows})
	return nil
}

// ActivationRequest is the body of POST …/activations.
type ActivationRequest struct {
	LicenseIDs []string `json:"license_ids"`
}

func (c *Console) apiActivate(w http.ResponseWriter, r *http.Request, x *session) error {
	ic, err := installCode(r)
	if err != nil {
		return err
	}
	var req ActivationRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if len(req.LicenseIDs) == 0 {
		return badRequest("license_ids names no license")
	}
	key, err := commandID(r)
	if err != nil {
		return err
	}
	outs, err := c.activate(r.Context(), x, ic, req.LicenseIDs, key)
	if err != nil {
		return err
	}
	return answerBatch(w, r, outs)
}

// CustomerIDRequest is the body of PUT …/customer-id.
type CustomerIDRequest struct {
	CustomerID string `json:"customer_id"`
}

func (c *Console) apiSetCustomerID(w http.ResponseWriter, r *http.Request, x *session) error {
	ic, err := installCode(r)
	if err != nil {
		return err
	}
	var req CustomerIDRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	return c.command(w, r, x, events.SetCustomerIDType, &events.SetCustomerID{InstallCode: ic, CustomerID: req.CustomerID})
}

func (c *Console) apiTransfer(w http.ResponseWriter, r *http.Request, x *session) error {
	ic, err := installCode(r)
	if err != nil {
		return err
	}
	return c.command(w, r, x, events.TransferToCloudType, &events.TransferToCloud{InstallCode: ic})
}

// DeviceRequest is the body of POST …/devices.
type DeviceRequest struct {
	DeviceID string `json:"device_id,omitempty"`
	Name     string `json:"name"`
	Protocol string `json:"protocol"`
}

func (c *Console) apiAddDevice(w http.ResponseWriter, r *http.Request, x *session) error {
	ic, err := installCode(r)
	if err != nil {
		return err
	}
	var req DeviceRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	return c.command(w, r, x, events.AddDeviceType, &events.AddDevice{InstallCode: ic, DeviceID: req.DeviceID, Name: req.Name, Protocol: req.Protocol})
}

// ProvisionRequest is the body of POST …/provisioning: devices, or all
// blue ones.
type ProvisionRequest struct {
	DeviceIDs []string `json:"device_ids,omitempty"`
	All       bool     `json:"all,omitempty"`
}

func (c *Console) apiProvision(w http.ResponseWriter, r *http.Request, x *session) error {
	ic, err := installCode(r)
	if err != nil {
		return err
	}
	var req ProvisionRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.All == (len(req.DeviceIDs) > 0) {
		return badRequest("name device_ids or set all, not both or neither")
	}
	ids := req.DeviceIDs
	if req.All {
		if ids, err = blueDevices(r.Context(), x, ic); err != nil {
			return err
		}
		if len(ids) == 0 {
			writeJSON(w, http.StatusOK, map[string]any{"results": []Outcome{}})
			return nil
		}
	}
	key, err := commandID(r)
	if err != nil {
		return err
	}
	outs, err := c.provision(r.Context(), x, ic, ids, key)
	if err != nil {
		return err
	}
	return answerBatch(w, r, outs)
}

// blueDevices lists the devices of ic that are blue: what `device
// provision --all` provisions.
func blueDevices(ctx context.Context, x *session, ic string) ([]string, error) {
	var rows []devices.Row
	if err := x.query(ctx, client.QueryDevices, client.Params{InstallCode: ic}, &rows); err != nil {
		return nil, err
	}
	var ids []string
	for _, d := range rows {
		if d.State == events.Unprovisioned {
			ids = append(ids, d.DeviceID)
		}
	}
	return ids, nil
}

// AutoProvisionRequest is the body of PUT …/auto-provision.
type AutoProvisionRequest struct {
	Enabled bool `json:"enabled"`
}

func (c *Console) apiAutoProvision(w http.ResponseWriter, r *http.Request, x *session) error {
	ic, err := installCode(r)
	if err != nil {
		return err
	}
	var req AutoProvisionRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	return c.command(w, r, x, events.SetAutoProvisionType, &events.SetAutoProvision{InstallCode: ic, Enabled: req.Enabled})
}

func (c *Console) apiCustomers(w http.ResponseWriter, r *http.Request, x *session) error {
	var out []licensing.Customer
	if err := x.query(r.Context(), client.QueryCustomers, client.Params{}, &out); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (c *Console) apiCreateCustomer(w http.ResponseWriter, r *http.Request, x *session) error {
	var d events.CreateCustomer
	if err := decode(r, &d); err != nil {
		return err
	}
	return c.command(w, r, x, events.CreateCustomerType, &d)
}

func (c *Console) apiInventory(w http.ResponseWriter, r *http.Request, x *session) error {
	q := r.URL.Query()
	var out []licensing.LicenseRow
	p := client.Params{CustomerID: q.Get("customer_id"), InstallCode: q.Get("install_code"), State: q.Get("state")}
	if err := x.query(r.Context(), client.QueryInventory, p, &out); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (c *Console) apiAddLicense(w http.ResponseWriter, r *http.Request, x *session) error {
	var d events.AddLicense
	if err := decode(r, &d); err != nil {
		return err
	}
	return c.command(w, r, x, events.AddLicenseType, &d)
}

func (c *Console) apiRollouts(w http.ResponseWriter, r *http.Request, x *session) error {
	var out []rollouts.Rollout
	if err := x.query(r.Context(), client.QueryRollouts, client.Params{}, &out); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// apiStartRollout starts a rollout of a spec (events.RolloutSpec), or with
// ?dry_run=true answers its plan and changes nothing. The rollout id
// derives from the command id, as the CLI's: a repeat with the same
// Idempotency-Key names the same rollout and starts nothing new.
func (c *Console) apiStartRollout(w http.ResponseWriter, r *http.Request, x *session) error {
	var spec events.RolloutSpec
	if err := decode(r, &spec); err != nil {
		return err
	}
	if dry, _ := strconv.ParseBool(r.URL.Query().Get("dry_run")); dry {
		var p rollout.Plan
		if err := x.query(r.Context(), client.QueryRolloutPlan, client.Params{Spec: &spec}, &p); err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, p)
		return nil
	}
	id, err := commandID(r)
	if err != nil {
		return err
	}
	o, err := c.startRollout(r.Context(), x, spec, id)
	if err != nil {
		return err
	}
	if o.Status == Accepted {
		w.Header().Set("Location", "/api/v1/rollouts/"+client.RolloutID(id))
	}
	return answer(w, r, o)
}

func (c *Console) startRollout(ctx context.Context, x *session, spec events.RolloutSpec, cmdID string) (Outcome, error) {
	rid := client.RolloutID(cmdID)
	return c.do(ctx, x, events.StartRolloutType, &events.StartRollout{RolloutID: rid, Spec: spec}, cmdID, rid)
}

func (c *Console) apiRollout(w http.ResponseWriter, r *http.Request, x *session) error {
	var d rollouts.Detail
	if err := x.query(r.Context(), client.QueryRollout, client.Params{RolloutID: r.PathValue("id")}, &d); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

// rolloutActions are the commands on a running rollout, by path segment.
var rolloutActions = map[string]events.Type{
	"pause": events.PauseRolloutType, "resume": events.ResumeRolloutType,
	"cancel": events.CancelRolloutType, "retry-failed": events.RetryFailedType,
}

func (c *Console) apiRolloutAction(w http.ResponseWriter, r *http.Request, x *session) error {
	t, ok := rolloutActions[r.PathValue("action")]
	if !ok {
		return &httpError{status: http.StatusNotFound, reason: string(events.ReasonNotFound), msg: "a rollout's actions are pause, resume, cancel and retry-failed"}
	}
	id, err := commandID(r)
	if err != nil {
		return err
	}
	o, err := c.do(r.Context(), x, t, &events.RolloutRef{RolloutID: r.PathValue("id")}, id, "")
	if err != nil {
		return err
	}
	return answer(w, r, o)
}

// apiCommand is the outcome of a command by its id, waiting up to ?wait
// (default and least 1 s, at most 60 s): command wait, over HTTP.
func (c *Console) apiCommand(w http.ResponseWriter, r *http.Request, x *session) error {
	wait := time.Second
	if v := r.URL.Query().Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > time.Minute {
			return badRequest("wait must be a duration up to 60s, e.g. 5s, not %q", v)
		}
		wait = max(d, wait)
	}
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	o, err := c.commandOutcome(ctx, x, r.PathValue("id"))
	if err != nil {
		return err
	}
	status := http.StatusOK
	if o.Status == Pending {
		status = http.StatusAccepted
	}
	writeJSON(w, status, o)
	return nil
}
