// Package client is how the CLI, tests and other Go programs talk to
// licensebus over NATS: it publishes commands as CloudEvents on the command
// stream, waits for their outcome in the outcomes read model, and asks the
// running server's query API for views.
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
	"github.com/licensebus/licensebus/projections"
	"github.com/licensebus/licensebus/projections/licensing"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// APIPrefix is the subject prefix of the query API: requests go to
// "lb.api.v1.<query>" with a JSON body and get a Response.
const APIPrefix = "lb.api.v1."

// Queries of the API.
const (
	QueryAccounts    = "accounts"     // []licensing.AccountRow
	QueryDownloads   = "downloads"    // Params.InstallCode → []licensing.LicenseRow
	QueryManage      = "manage"       // Params.InstallCode → []licensing.LicenseRow
	QueryInventory   = "inventory"    // Params filters → []licensing.LicenseRow
	QueryCustomers   = "customers"    // []licensing.Customer
	QueryDevices     = "devices"      // Params.InstallCode → []devices.Row
	QueryFleet       = "fleet"        // devices.Fleet
	QueryRollouts    = "rollouts"     // []rollouts.Rollout
	QueryRollout     = "rollout"      // Params.RolloutID → rollouts.Detail
	QueryRolloutPlan = "rollout_plan" // Params.Spec → rollout.Plan (changes nothing)
	QueryRebuild     = "rebuild"      // rebuild every projection → Status
	QueryStatus      = "status"       // Status
)

// Params are the query parameters.
type Params struct {
	InstallCode string `json:"install_code,omitempty"`
	CustomerID  string `json:"customer_id,omitempty"`
	State       string `json:"state,omitempty"`
	RolloutID   string `json:"rollout_id,omitempty"`
	// Spec is the rollout a plan is asked for.
	Spec *events.RolloutSpec `json:"spec,omitempty"`
}

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
	nc       *nats.Conn
	js       jetstream.JetStream
	outcomes jetstream.KeyValue
	actor    string
	tracer   *tracing.Tracer
}

// New returns a Client on an open connection. actor names who sends the
// commands (the CloudEvent "actor" extension).
func New(ctx context.Context, nc *nats.Conn, actor string) (*Client, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	c := &Client{nc: nc, js: js, actor: actor}
	kv, err := js.KeyValue(ctx, projections.Bucket(licensing.NewOutcomes()))
	if err == nil {
		c.outcomes = kv
	} else if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("outcomes bucket: %w", err)
	}
	return c, nil
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

// Wait blocks until the outcome of the command with correlation id corr is
// known, or ctx ends.
func (c *Client) Wait(ctx context.Context, corr string) (*licensing.Outcome, error) {
	return c.WaitAny(ctx, corr)
}

// WaitAny blocks until an outcome is known under any of the correlation
// ids, and returns the first one seen, or ctx ends.
func (c *Client) WaitAny(ctx context.Context, corrs ...string) (*licensing.Outcome, error) {
	corr := strings.Join(corrs, " or ")
	if c.outcomes == nil {
		kv, err := c.js.KeyValue(ctx, projections.Bucket(licensing.NewOutcomes()))
		if err != nil {
			return nil, fmt.Errorf("outcomes bucket (is licensebus serve running?): %w", err)
		}
		c.outcomes = kv
	}
	w, err := c.outcomes.WatchFiltered(ctx, corrs)
	if err != nil {
		return nil, err
	}
	defer w.Stop()
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("outcome watch closed")
			}
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
			var o licensing.Outcome
			if err := json.Unmarshal(e.Value(), &o); err != nil {
				return nil, fmt.Errorf("outcome %s: %w", corr, err)
			}
			return &o, nil
		case <-ctx.Done():
			return nil, fmt.Errorf("no outcome for command %s yet: %w", corr, ctx.Err())
		}
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
	out, err := c.Wait(ctx, corr)
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
	msg, err := c.nc.RequestWithContext(ctx, APIPrefix+query, body)
	if errors.Is(err, nats.ErrNoResponders) {
		return fmt.Errorf("no licensebus server answers on %s (is `licensebus serve` running?)", c.nc.ConnectedUrlRedacted())
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
