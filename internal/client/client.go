// Package client is how the CLI, tests and other Go programs talk to
// licensebus over NATS: it publishes commands as CloudEvents on the command
// stream, and asks the running server's query API for views and for the
// outcome of a command, in subjects scoped to whose data they concern.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/licensebus/licensebus/internal/tracing"
	"github.com/licensebus/licensebus/projections/licensing"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// APIPrefix is the subject prefix of the query API. A query's subject
// says whose data it concerns, so that the NATS server authorizes it by
// subject like any other message (internal/auth):
//
//	lb.api.v1.smartserver.<install-code>.<query>   one SmartServer's views and outcomes
//	lb.api.v1.fleet.<query>                         views of the whole fleet, any outcome
//	lb.api.v1.admin.<query>                         what changes the server: rebuild, credentials
//
// A request carries Params as JSON and gets a Response.
const APIPrefix = "lb.api.v1."

// Scopes of the API, the token after APIPrefix.
const (
	ScopeSmartServer = "smartserver"
	ScopeFleet       = "fleet"
	ScopeAdmin       = "admin"
)

// Queries of the API.
const (
	QueryAccounts    = "accounts"     // fleet: []licensing.AccountRow
	QueryDownloads   = "downloads"    // smartserver: []licensing.LicenseRow
	QueryManage      = "manage"       // smartserver: []licensing.LicenseRow
	QueryDevices     = "devices"      // smartserver: []devices.Row
	QueryOutcome     = "outcome"      // smartserver or fleet: Params.CorrelationIDs → licensing.Outcome
	QueryInventory   = "inventory"    // fleet: Params filters → []licensing.LicenseRow
	QueryCustomers   = "customers"    // fleet: []licensing.Customer
	QueryFleet       = "fleet"        // fleet: devices.Fleet
	QueryRollouts    = "rollouts"     // fleet: []rollouts.Rollout
	QueryRollout     = "rollout"      // fleet: Params.RolloutID → rollouts.Detail
	QueryRolloutPlan = "rollout_plan" // fleet: Params.Spec → rollout.Plan (changes nothing)
	QueryStatus      = "status"       // fleet: Status
	QueryRebuild     = "rebuild"      // admin: rebuild every projection → Status
	QueryCredsIssue  = "creds_issue"  // admin: Params.Creds → CredsIssued
	QueryCredsList   = "creds_list"   // admin: []auth.Record
	QueryCredsRevoke = "creds_revoke" // admin: Params.Creds.Name → CredsRevoked
	QueryCredsRecord = "creds_record" // admin: Params.Creds.JWT, signed elsewhere → auth.Record
)

// scopes says in which scope each query is asked; the outcome is asked in
// either.
var scopes = map[string]string{
	QueryDownloads: ScopeSmartServer, QueryManage: ScopeSmartServer, QueryDevices: ScopeSmartServer, QuerySmartServer: ScopeSmartServer,
	QueryFleetPage: ScopeFleet,
	QueryAccounts:  ScopeFleet, QueryInventory: ScopeFleet, QueryCustomers: ScopeFleet, QueryFleet: ScopeFleet,
	QueryRollouts: ScopeFleet, QueryRollout: ScopeFleet, QueryRolloutPlan: ScopeFleet, QueryStatus: ScopeFleet,
	QueryRebuild: ScopeAdmin, QueryCredsIssue: ScopeAdmin, QueryCredsList: ScopeAdmin, QueryCredsRevoke: ScopeAdmin, QueryCredsRecord: ScopeAdmin,
}

// ErrUnknownQuery is a query, or a scope, the API does not have.
var ErrUnknownQuery = errors.New("unknown query")

// Subject is where a query with its parameters is asked: a SmartServer's
// queries, and the outcome of its commands, under its install code.
func Subject(query string, p Params) (string, error) {
	scope, ok := scopes[query]
	if query == QueryOutcome {
		scope, ok = ScopeFleet, true
		if p.InstallCode != "" {
			scope = ScopeSmartServer
		}
	}
	switch {
	case !ok:
		return "", fmt.Errorf("%w %q", ErrUnknownQuery, query)
	case scope != ScopeSmartServer:
		return APIPrefix + scope + "." + query, nil
	case !events.ValidInstallCode(p.InstallCode):
		return "", events.Reject(events.ReasonBadInstallCode, "install code %q must be 1-64 letters, digits, '-' or '_'", p.InstallCode)
	}
	return APIPrefix + scope + "." + p.InstallCode + "." + query, nil
}

// ParseSubject reads a query's subject: the query, and the install code it
// is scoped to (empty outside the SmartServer scope).
func ParseSubject(subject string) (query, installCode string, err error) {
	rest, ok := strings.CutPrefix(subject, APIPrefix)
	toks := strings.Split(rest, ".")
	switch {
	case ok && len(toks) == 3 && toks[0] == ScopeSmartServer:
		installCode, query = toks[1], toks[2]
	case ok && len(toks) == 2 && toks[0] != ScopeSmartServer:
		query = toks[1]
	default:
		return "", "", fmt.Errorf("%w on %q", ErrUnknownQuery, subject)
	}
	if scopes[query] != toks[0] && !(query == QueryOutcome && toks[0] != ScopeAdmin) {
		return "", "", fmt.Errorf("%w %q in scope %s", ErrUnknownQuery, query, toks[0])
	}
	return query, installCode, nil
}

// Params are the query parameters.
type Params struct {
	InstallCode string `json:"install_code,omitempty"`
	CustomerID  string `json:"customer_id,omitempty"`
	State       string `json:"state,omitempty"`
	RolloutID   string `json:"rollout_id,omitempty"`
	// Spec is the rollout a plan is asked for.
	Spec *events.RolloutSpec `json:"spec,omitempty"`
	// Search, Offset and Limit ask for a page (QueryFleetPage).
	Search string `json:"search,omitempty"`
	Offset int    `json:"offset,omitempty"`
	Limit  int    `json:"limit,omitempty"`
	// CorrelationIDs name the command whose outcome is asked for (the
	// first outcome under any of them); the server waits for it up to
	// WaitMillis (at most a minute) and otherwise answers with the code
	// "pending".
	CorrelationIDs []string `json:"correlation_ids,omitempty"`
	WaitMillis     int      `json:"wait_ms,omitempty"`
	// Creds are the credentials to issue, revoke or record.
	Creds *CredsParams `json:"creds,omitempty"`
}

// CredsParams name credentials for the admin queries. The secret half of
// new credentials never travels: the caller makes the key pair and sends
// the public key, and gets the signed JWT back.
type CredsParams struct {
	Name      string    `json:"name"`
	Role      string    `json:"role,omitempty"`
	PublicKey string    `json:"public_key,omitempty"`
	Expires   time.Time `json:"expires,omitzero"` // zero: never
	JWT       string    `json:"jwt,omitempty"`    // creds_record: signed elsewhere (--account-seed)
}

// CredsIssued answers creds_issue.
type CredsIssued struct {
	JWT    string          `json:"jwt"`
	Record json.RawMessage `json:"record"`
}

// CodePending is the outcome query's answer when the outcome is not known
// yet: ask again.
const CodePending = "pending"

// Response is the API's answer: Data or Error.
type Response struct {
	Data  json.RawMessage `json:"data,omitempty"`
	Error *APIError       `json:"error,omitempty"`
}

// APIError is a refused query.
type APIError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *APIError) Error() string { return e.Message }

// Status reports the projections' progress.
type Status struct {
	EventsLastSeq uint64            `json:"events_last_seq"`
	Applied       uint64            `json:"applied"`
	Checkpoints   map[string]uint64 `json:"checkpoints"`
}

// Client talks to licensebus. It is safe for concurrent use.
type Client struct {
	nc          *nats.Conn
	js          jetstream.JetStream
	actor       string
	tracer      *tracing.Tracer
	installCode string // ActAs
}

// New returns a Client on an open connection. actor names who sends the
// commands (the CloudEvent "actor" extension).
func New(ctx context.Context, nc *nats.Conn, actor string) (*Client, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	return &Client{nc: nc, js: js, actor: actor}, nil
}

// JetStream returns the client's JetStream context, for watching views.
func (c *Client) JetStream() jetstream.JetStream { return c.js }

// Sent is a command on the command stream.
type Sent struct {
	ID        string
	Seq       uint64
	Duplicate bool // JetStream had it already: its first outcome stands
	// Digest is the command's digest (events.CommandDigest), what its
	// outcome is checked against.
	Digest string
}

// SendOptions override a command's generated attributes.
type SendOptions struct {
	ID            string // default: a new UUID
	CorrelationID string // default: the command's own id
	CausationID   string
}

// Send publishes a command and returns once JetStream stored it.
func (c *Client) Send(ctx context.Context, t events.Type, data events.Data, o SendOptions) (Sent, error) {
	if o.ID == "" {
		o.ID = uuid.NewString()
	}
	if o.CorrelationID == "" {
		o.CorrelationID = o.ID
	}
	info, ok := events.Lookup(t)
	if !ok || !info.Command {
		return Sent{}, fmt.Errorf("%s is not a command type", t)
	}
	if info.Side == events.DeviceSide && !events.ValidInstallCode(data.Key()) {
		return Sent{}, events.Reject(events.ReasonBadInstallCode, "install code %q must be 1-64 letters, digits, '-' or '_'", data.Key())
	}
	meta := events.Meta{ID: o.ID, Source: "/licensebus/cli", CorrelationID: o.CorrelationID, CausationID: o.CausationID, Actor: c.actor}
	end := c.traced(ctx, info, &meta)
	m, err := events.NewCommand(t, data, meta)
	if err != nil {
		end(err)
		return Sent{}, err
	}
	ack, err := c.js.PublishMsg(ctx, bus.Msg(m))
	end(err)
	if err != nil {
		return Sent{}, fmt.Errorf("publish %s: %w", t, err)
	}
	return Sent{ID: o.ID, Seq: ack.Sequence, Duplicate: ack.Duplicate, Digest: m.Digest()}, nil
}

// RolloutID is the id of the rollout a StartRollout command with CloudEvent
// id cmdID starts when it names none; the CLI names this one, so that its
// outcome, kept under the rollout id, can be found from the command id.
func RolloutID(cmdID string) string { return events.DeriveID(cmdID, "rollout") }

// ActAs makes the client wait for outcomes as the SmartServer with this
// install code: a SmartServer's credentials may ask in its own scope only.
// "" (the default) asks in the fleet scope. Call it before using the
// client.
func (c *Client) ActAs(installCode string) { c.installCode = installCode }

// Wait blocks until the outcome of the command with correlation id corr is
// known, or ctx ends.
func (c *Client) Wait(ctx context.Context, corr string) (*licensing.Outcome, error) {
	return c.WaitFor(ctx, c.installCode, corr)
}

// WaitAny blocks until an outcome is known under any of the correlation
// ids, and returns the first one seen, or ctx ends.
func (c *Client) WaitAny(ctx context.Context, corrs ...string) (*licensing.Outcome, error) {
	return c.wait(ctx, c.installCode, corrs)
}

// WaitFor is Wait for the command of a SmartServer: the server answers only
// if the outcome concerns that install code, so a SmartServer's credentials
// see the outcomes of its own commands and no other's.
func (c *Client) WaitFor(ctx context.Context, installCode, corr string) (*licensing.Outcome, error) {
	return c.wait(ctx, installCode, []string{corr})
}

// maxWait bounds one long poll for an outcome; a longer wait asks again.
const maxWait = 20 * time.Second

func (c *Client) wait(ctx context.Context, installCode string, corrs []string) (*licensing.Outcome, error) {
	corr := strings.Join(corrs, " or ")
	p := Params{InstallCode: installCode, CorrelationIDs: corrs}
	for {
		wait := maxWait
		if d, ok := ctx.Deadline(); ok {
			// The server answers "pending" a little before the request
			// would time out here.
			wait = min(wait, time.Until(d)-100*time.Millisecond)
		}
		if wait <= 0 {
			return nil, fmt.Errorf("no outcome for command %s yet: %w", corr, context.DeadlineExceeded)
		}
		p.WaitMillis = int(wait.Milliseconds())
		var o licensing.Outcome
		err := c.Query(ctx, QueryOutcome, p, &o)
		var apiErr *APIError
		if errors.As(err, &apiErr) && apiErr.Code == CodePending {
			continue
		}
		if errors.Is(err, nats.ErrNoResponders) {
			// No serve runs now: the command is stored and will be
			// handled once one does, as a watch of the bucket would wait.
			select {
			case <-ctx.Done():
			case <-time.After(250 * time.Millisecond):
				continue
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("no outcome for command %s yet: %w", corr, ctx.Err())
			}
			return nil, err
		}
		return &o, nil
	}
}

// Do sends a command and waits for its outcome. A rejected command returns
// its outcome and a *events.Rejection.
func (c *Client) Do(ctx context.Context, t events.Type, data events.Data, o SendOptions) (*licensing.Outcome, error) {
	s, err := c.Send(ctx, t, data, o)
	if err != nil {
		return nil, err
	}
	corr := o.CorrelationID
	if corr == "" {
		corr = s.ID
	}
	ic := c.installCode
	if info, _ := events.Lookup(t); info.Side == events.DeviceSide {
		ic = data.Key()
	}
	out, err := c.WaitFor(ctx, ic, corr)
	if err != nil {
		return nil, err
	}
	if err := Reused(s, out); err != nil {
		return out, err
	}
	return out, OutcomeErr(out)
}

// Reused is an id_reused refusal when out is the outcome of another command
// than s (the same id, another body), else nil: the id's first outcome
// stands, and s was not done.
func Reused(s Sent, out *licensing.Outcome) error {
	if out.CommandDigest == "" || s.Digest == "" || out.CommandDigest == s.Digest {
		return nil
	}
	return events.Reject(events.ReasonIDReused,
		"command id %s was used before for another command, whose outcome stands (%s %s); nothing was done: send this one with a new --id",
		s.ID, out.Status, out.EventType)
}

// OutcomeErr is the *events.Rejection of a rejected outcome, else nil.
func OutcomeErr(o *licensing.Outcome) error {
	if o.Status == "rejected" {
		return &events.Rejection{Reason: events.Reason(o.Reason), Message: o.Message}
	}
	return nil
}

// Query asks the server's query API and decodes the answer into out.
func (c *Client) Query(ctx context.Context, query string, p Params, out any) error {
	body, _ := json.Marshal(p)
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	subject, err := Subject(query, p)
	if err != nil {
		return err
	}
	msg, err := c.nc.RequestWithContext(ctx, subject, body)
	if errors.Is(err, nats.ErrNoResponders) {
		return fmt.Errorf("no licensebus server answers %s on %s (is `licensebus serve` running?): %w", query, c.nc.ConnectedUrlRedacted(), err)
	}
	if err != nil {
		return fmt.Errorf("query %s: %w", query, err)
	}
	var r Response
	if err := json.Unmarshal(msg.Data, &r); err != nil {
		return fmt.Errorf("query %s: %w", query, err)
	}
	if r.Error != nil {
		return r.Error
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(r.Data, out)
}
