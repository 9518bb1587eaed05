package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/uuid"
	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/licensebus/licensebus/projections/licensing"
)

// Outcome is how one command ended, as the API and the pages report it.
type Outcome struct {
	CommandID string `json:"command_id"`
	// Status is accepted, rejected, or pending: stored, no outcome yet
	// (ask GET /api/v1/commands/{command_id}).
	Status    string          `json:"status"`
	EventType string          `json:"event_type,omitempty"`
	Reason    string          `json:"reason,omitempty"`
	Message   string          `json:"message,omitempty"`
	Data      json.RawMessage `json:"data,omitempty"`
	// LicenseID is the license of one activation of a batch.
	LicenseID string `json:"license_id,omitempty"`
}

// Statuses of an Outcome.
const (
	Accepted = "accepted"
	Rejected = "rejected"
	Pending  = "pending"
)

// err is the refusal of a rejected outcome.
func (o Outcome) err() error {
	if o.Status != Rejected {
		return nil
	}
	return &events.Rejection{Reason: events.Reason(o.Reason), Message: o.Message}
}

// maxKey bounds an Idempotency-Key: it becomes a CloudEvent id, and the
// ids of a batch append "-N".
const maxKey = 200

// commandID is the CloudEvent id of a request's command: its
// Idempotency-Key header (or the form's command_id, which each form gets
// when it is drawn), else a new UUID. A repeat with the same key is the
// same command: JetStream's dedupe and the handlers' handled sets give it
// the first outcome, never a second effect.
func commandID(r *http.Request) (string, error) {
	k := strings.TrimSpace(r.Header.Get("Idempotency-Key"))
	if k == "" && r.Method == http.MethodPost && isForm(r) {
		k = strings.TrimSpace(r.PostFormValue("command_id"))
	}
	if k == "" {
		return uuid.NewString(), nil
	}
	if len(k) > maxKey || strings.ContainsFunc(k, func(c rune) bool { return c <= ' ' || c > '~' }) {
		return "", badRequest("Idempotency-Key must be 1-%d printable ASCII characters without spaces", maxKey)
	}
	return k, nil
}

func isForm(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	return strings.HasPrefix(ct, "application/x-www-form-urlencoded") || strings.HasPrefix(ct, "multipart/form-data")
}

// batchIDs are the ids of n commands sent at once, as the CLI makes them:
// the key itself for one, key-1 … key-n for several.
func batchIDs(key string, n int) []string {
	if n == 1 {
		return []string{key}
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%d", key, i+1)
	}
	return ids
}

// pending is a command stored and waited for.
type pending struct {
	sent client.Sent
	corr string
}

// send stores a command as the CLI does; corr "" correlates it with itself.
func (x *session) send(ctx context.Context, t events.Type, d events.Data, id, corr string) (pending, error) {
	ctx, done := x.guard(ctx)
	defer done()
	s, err := x.c.Send(ctx, t, d, client.SendOptions{ID: id, CorrelationID: corr})
	if err != nil {
		return pending{}, deniedOr(ctx, err)
	}
	if corr == "" {
		corr = s.ID
	}
	return pending{sent: s, corr: corr}, nil
}

// wait waits for p's outcome until ctx ends; then it is pending.
func (x *session) wait(ctx context.Context, p pending) (Outcome, error) {
	ctx, done := x.guard(ctx)
	defer done()
	out, err := x.c.Wait(ctx, p.corr)
	if err != nil {
		if err := deniedOr(ctx, err); events.AsRejection(err) != nil {
			return Outcome{}, err
		}
		if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
			return Outcome{CommandID: p.sent.ID, Status: Pending}, nil
		}
		return Outcome{}, err
	}
	if rerr := client.Reused(p.sent, out); rerr != nil {
		r := events.AsRejection(rerr)
		return Outcome{CommandID: p.sent.ID, Status: Rejected, Reason: string(r.Reason), Message: r.Message}, nil
	}
	return outcomeOf(p.sent.ID, out), nil
}

func outcomeOf(id string, o *licensing.Outcome) Outcome {
	return Outcome{CommandID: id, Status: o.Status, EventType: o.EventType, Reason: o.Reason, Message: o.Message, Data: json.RawMessage(o.Data)}
}

// do sends one command and waits for its outcome, at most the console's
// Wait. A send that fails is an error; a refusal is a rejected Outcome.
func (c *Console) do(ctx context.Context, x *session, t events.Type, d events.Data, id, corr string) (Outcome, error) {
	p, err := x.send(ctx, t, d, id, corr)
	if err != nil {
		return Outcome{}, err
	}
	wctx, cancel := context.WithTimeout(ctx, c.cfg.Wait)
	defer cancel()
	return x.wait(wctx, p)
}

// activate sends one activation per license, all stored before any is
// waited for (the CLI's order), and waits for each.
func (c *Console) activate(ctx context.Context, x *session, ic string, lids []string, key string) ([]Outcome, error) {
	outs, err := c.sendThenWait(ctx, x, key, len(lids), func(i int) (events.Type, events.Data) {
		return events.ActivateLicenseType, &events.ActivateLicense{InstallCode: ic, LicenseID: lids[i]}
	})
	for i := range outs {
		outs[i].LicenseID = lids[i]
	}
	return outs, err
}

// provision sends the batches that provision ids (events.MaxDeviceBatch
// devices each) and waits for each.
func (c *Console) provision(ctx context.Context, x *session, ic string, ids []string, key string) ([]Outcome, error) {
	var batches [][]string
	for start := 0; start < len(ids); start += events.MaxDeviceBatch {
		batches = append(batches, ids[start:min(start+events.MaxDeviceBatch, len(ids))])
	}
	return c.sendThenWait(ctx, x, key, len(batches), func(i int) (events.Type, events.Data) {
		return events.ProvisionDevicesType, &events.ProvisionDevices{InstallCode: ic, DeviceIDs: batches[i]}
	})
}

// sendThenWait sends n commands (the i-th is command(i)) under ids derived
// from key, all stored before any is waited for, then waits for each
// outcome in order.
func (c *Console) sendThenWait(ctx context.Context, x *session, key string, n int, command func(i int) (events.Type, events.Data)) ([]Outcome, error) {
	ids := batchIDs(key, n)
	ps := make([]pending, n)
	for i := range n {
		t, d := command(i)
		p, err := x.send(ctx, t, d, ids[i], "")
		if err != nil {
			return nil, err
		}
		ps[i] = p
	}
	wctx, cancel := context.WithTimeout(ctx, c.cfg.Wait)
	defer cancel()
	outs := make([]Outcome, n)
	for i, p := range ps {
		o, err := x.wait(wctx, p)
		if err != nil {
			return nil, err
		}
		outs[i] = o
	}
	return outs, nil
}

// firstRefusal is the first rejected outcome's refusal, if any.
func firstRefusal(outs []Outcome) error {
	for _, o := range outs {
		if err := o.err(); err != nil {
			return err
		}
	}
	return nil
}

// anyPending tells whether an outcome is still unknown.
func anyPending(outs []Outcome) bool {
	for _, o := range outs {
		if o.Status == Pending {
			return true
		}
	}
	return false
}

// commandOutcome asks for the outcome of command id until ctx ends
// (pending then): the outcome correlated with the id itself, or with the
// rollout a start command of that id names.
func (c *Console) commandOutcome(ctx context.Context, x *session, id string) (Outcome, error) {
	ctx, done := x.guard(ctx)
	defer done()
	out, err := x.c.WaitAny(ctx, id, client.RolloutID(id))
	if err != nil {
		if err := deniedOr(ctx, err); events.AsRejection(err) != nil {
			return Outcome{}, err
		}
		if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
			return Outcome{CommandID: id, Status: Pending}, nil
		}
		return Outcome{}, err
	}
	return outcomeOf(id, out), nil
}
