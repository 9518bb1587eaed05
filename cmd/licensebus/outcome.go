package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jedib0t/go-pretty/v6/table"
	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/licensebus/licensebus/projections/licensing"
)

// sent is one command the CLI stored and, once known, its outcome.
type sent struct {
	ID   string // the CloudEvent id
	Corr string // the key its outcome is stored under: its correlation id
	Out  *licensing.Outcome
	// Digest is the command's digest, checked against the outcome's: an
	// id used before for another command finds that command's outcome.
	Digest string
	reused error // the id_reused refusal when it did
	// What the sender knows of its target, for refusals whose outcome
	// does not say (a batch names no devices).
	LicenseID string
	DeviceIDs []string
}

// interruptedError is a wait the user interrupted: exit 130.
type interruptedError struct{ error }

// commandIDs returns the ids for n commands sent at once: the one the user
// passed (or a new one) for one command, that id with -1, -2, ... for
// several, so a repeat with the same --id repeats every one of them.
func (a *app) commandIDs(n int) (base string, ids []string) {
	base = a.cmdID
	if base == "" {
		base = uuid.NewString()
	}
	if n == 1 {
		return base, []string{base}
	}
	for i := range n {
		ids = append(ids, fmt.Sprintf("%s-%d", base, i+1))
	}
	return base, ids
}

// send stores a command and says so at once, so that an interrupted wait
// leaves the user its id: on stderr with tables (JSON output carries a
// command_id instead).
func (a *app) send(ctx context.Context, c *client.Client, t events.Type, d events.Data, o client.SendOptions) (sent, error) {
	if o.ID == "" {
		o.ID = uuid.NewString()
	}
	s, err := c.Send(ctx, t, d, o)
	if err != nil {
		if ctx.Err() != nil {
			return sent{}, a.ended(ctx, fmt.Errorf("stopped before JetStream confirmed that command %s was stored; repeat the command with --id %s (safe whether or not it was)", o.ID, o.ID))
		}
		return sent{}, fmt.Errorf("command %s: %w", o.ID, err)
	}
	// The JSON of download-licenses is the view, a list without room for it.
	if a.output != "json" || t == events.DownloadLicensesType {
		note := ""
		if s.Duplicate {
			note = " (JetStream had this id already)"
		}
		fmt.Fprintf(a.stderr, "command %s stored%s\n", s.ID, note)
	}
	corr := o.CorrelationID
	if corr == "" {
		corr = s.ID
	}
	return sent{ID: s.ID, Corr: corr, Digest: s.Digest}, nil
}

// await waits for the outcome of each command. An interrupted or timed out
// wait says which commands are stored and how to wait for them again;
// retryID is the --id that repeats them all.
func (a *app) await(ctx context.Context, c *client.Client, cmds []sent, retryID string) error {
	for i := range cmds {
		if cmds[i].Out != nil {
			continue
		}
		out, err := c.Wait(ctx, cmds[i].Corr)
		if err != nil {
			if ctx.Err() == nil {
				return err
			}
			var ids []string
			for _, s := range cmds[i:] {
				ids = append(ids, s.ID)
			}
			what := "command " + ids[0] + " is"
			if len(ids) > 1 {
				what = "commands " + strings.Join(ids, " ") + " are"
			}
			how := fmt.Sprintf("%s stored and will be handled: wait for the outcome with `licensebus command wait %s`, or repeat the command with --id %s",
				what, strings.Join(ids, " "), retryID)
			return a.ended(ctx, errors.New(how))
		}
		cmds[i].Out = out
		cmds[i].reused = client.Reused(client.Sent{ID: cmds[i].ID, Digest: cmds[i].Digest}, out)
	}
	return nil
}

// ended is err of a wait whose context ended: interrupted (exit 130) or
// out of --timeout (exit 3).
func (a *app) ended(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("no outcome within --timeout %s: %w", a.timeout, err)
	}
	return interruptedError{fmt.Errorf("interrupted: %w", err)}
}

// do sends one command, waits for its outcome and prints it.
func (a *app) do(ctx context.Context, c *client.Client, t events.Type, d events.Data) error {
	s, err := a.send(ctx, c, t, d, client.SendOptions{ID: a.cmdID})
	if err != nil {
		return err
	}
	cmds := []sent{s}
	if err := a.await(ctx, c, cmds, s.ID); err != nil {
		return err
	}
	return a.finish(ctx, c, cmds)
}

// finish prints the outcomes of commands as the commands that sent them
// do, so `command wait` prints what the interrupted command would have:
// activations and provisionings as one table, the others each as its own
// line (or JSON object). A refusal is printed once, on stderr, by run;
// with -o json its outcome goes to stdout.
func (a *app) finish(ctx context.Context, c *client.Client, cmds []sent) error {
	var refused []error
	var acts []activation
	var provs []provisioning
	for _, s := range cmds {
		out := s.Out
		if s.reused != nil {
			// The id's first outcome stands; this command was not done.
			if a.output == "json" {
				r := events.AsRejection(s.reused)
				if err := a.emitWithID(s.ID, map[string]string{"status": "rejected", "reason": string(r.Reason), "message": r.Message}); err != nil {
					return err
				}
			}
			refused = append(refused, s.reused)
			continue
		}
		switch typeOf(out) {
		case events.ActivateLicenseType, events.LicenseActivatedType:
			r := activation{LicenseID: s.LicenseID, CommandID: s.ID, Status: "sent"}
			if out != nil {
				r = activationOf(s)
			}
			if out != nil && out.Status == "rejected" {
				refused = append(refused, a.refusalOf(s, len(cmds) > 1, "license "+r.LicenseID))
			}
			acts = append(acts, r)
			continue
		case events.ProvisionDevicesType, events.DevicesProvisionedType:
			rows, errs := provisioningsOf(s)
			provs = append(provs, rows...)
			if out.Status == "rejected" {
				refused = append(refused, a.refusalOf(s, len(cmds) > 1, "devices "+strings.Join(s.DeviceIDs, " ")))
			}
			refused = append(refused, errs...)
			continue
		}
		if out.Status == "rejected" {
			if a.output == "json" {
				if err := a.emitWithID(s.ID, out); err != nil {
					return err
				}
			}
			refused = append(refused, a.refusalOf(s, len(cmds) > 1, "command "+s.ID))
			continue
		}
		if err := a.printOne(ctx, c, s); err != nil {
			return err
		}
	}
	if acts != nil {
		if err := a.activationTable(acts); err != nil {
			return err
		}
	}
	if provs != nil {
		if err := a.provisioningTable(provs); err != nil {
			return err
		}
	}
	return errors.Join(refused...)
}

// typeOf is the command type of a rejected outcome, the event type of an
// accepted one, or the activation type of one not waited for.
func typeOf(out *licensing.Outcome) events.Type {
	if out == nil {
		return events.ActivateLicenseType
	}
	if out.Status == "rejected" {
		var r events.Rejected
		_ = json.Unmarshal(out.Data, &r)
		return events.Type(r.CommandType)
	}
	return events.Type(out.EventType)
}

// refusalOf is the rejection of s, naming what it was about when it was
// one of several.
func (a *app) refusalOf(s sent, several bool, what string) error {
	err := client.OutcomeErr(s.Out)
	if several {
		return fmt.Errorf("%s: %w", what, err)
	}
	return err
}

// printOne prints the accepted outcome of one command.
func (a *app) printOne(ctx context.Context, c *client.Client, s sent) error {
	out := s.Out
	switch events.Type(out.EventType) {
	case events.CustomerCreatedType:
		var d events.CustomerCreated
		return a.printID(s.ID, out, &d, func() string { return d.CustomerID })
	case events.LicenseAddedType:
		var d events.LicenseAdded
		return a.printID(s.ID, out, &d, func() string { return d.LicenseID })
	case events.DeviceAddedType:
		var d events.DeviceAdded
		return a.printID(s.ID, out, &d, func() string { return d.DeviceID })
	case events.RolloutStartedType:
		var d events.RolloutStarted
		if err := json.Unmarshal(out.Data, &d); err != nil {
			return err
		}
		return a.printID(s.ID, out, &struct {
			RolloutID string `json:"rollout_id"`
		}{d.RolloutID}, func() string { return d.RolloutID })
	case events.LicensesDownloadedType:
		var d events.LicensesDownloaded
		if err := json.Unmarshal(out.Data, &d); err != nil {
			return err
		}
		var rows []licensing.LicenseRow
		if err := c.Query(ctx, client.QueryDownloads, client.Params{InstallCode: d.InstallCode}, &rows); err != nil {
			return err
		}
		return a.downloadTable(rows)
	case events.RegisteredType:
		var d events.Registered
		_ = json.Unmarshal(out.Data, &d)
		return a.done(s.ID, out, "SmartServer %s (%s, version %s) registered", d.InstallCode, d.Name, d.Version)
	case events.VersionSetType:
		var d events.VersionSet
		_ = json.Unmarshal(out.Data, &d)
		if d.Previous != "" {
			return a.done(s.ID, out, "SmartServer %s runs version %s (was %s)", d.InstallCode, d.Version, d.Previous)
		}
		return a.done(s.ID, out, "SmartServer %s runs version %s", d.InstallCode, d.Version)
	case events.CustomerIDSetType:
		var d events.CustomerIDSet
		_ = json.Unmarshal(out.Data, &d)
		return a.done(s.ID, out, "Customer ID of SmartServer %s set to %s", d.InstallCode, d.CustomerID)
	case events.LicensesTransferredType:
		var d events.LicensesTransferred
		_ = json.Unmarshal(out.Data, &d)
		return a.done(s.ID, out, "%s of SmartServer %s transferred to the cloud on %s", count(len(d.LicenseIDs), "license"), d.InstallCode, d.TransferredAt.UTC().Format(time.DateOnly))
	case events.DeviceRemovedType:
		var d events.DeviceRemoved
		_ = json.Unmarshal(out.Data, &d)
		return a.done(s.ID, out, "device %s removed from SmartServer %s", d.DeviceID, d.InstallCode)
	case events.AutoProvisionSetType:
		var d events.AutoProvisionSet
		_ = json.Unmarshal(out.Data, &d)
		return a.done(s.ID, out, "reactive provisioning on SmartServer %s: %s", d.InstallCode, onOff(d.Enabled))
	case events.RolloutPausedType, events.RolloutResumedType, events.RolloutCancelledType, events.RetryRequestedType:
		var d events.RolloutRef
		_ = json.Unmarshal(out.Data, &d)
		return a.done(s.ID, out, "rollout %s: %s", d.RolloutID, strings.TrimPrefix(out.EventType, "io.licensebus.rollout."))
	}
	if ok, err := a.printGrantOutcome(s); ok {
		return err
	}
	return a.done(s.ID, out, "command %s: %s", s.ID, out.EventType)
}

// printID prints the id a command created, or with -o json its event's
// data (into d) with the command id.
func (a *app) printID(cmdID string, out *licensing.Outcome, d any, id func() string) error {
	if err := json.Unmarshal(out.Data, d); err != nil {
		return fmt.Errorf("outcome of command %s: %w", cmdID, err)
	}
	if a.output == "json" {
		return a.emitWithID(cmdID, d)
	}
	fmt.Fprintln(a.stdout, id())
	return nil
}

// done prints a command's outcome: the outcome as JSON, or a sentence.
func (a *app) done(cmdID string, out *licensing.Outcome, format string, args ...any) error {
	if a.output == "json" {
		return a.emitWithID(cmdID, out)
	}
	fmt.Fprintf(a.stdout, format+"\n", args...)
	return nil
}

// emitWithID prints the JSON object v with a command_id field first.
func (a *app) emitWithID(cmdID string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	idField, _ := json.Marshal(map[string]string{"command_id": cmdID})
	if rest := bytes.TrimPrefix(b, []byte("{")); len(rest) < len(b) {
		if !bytes.HasPrefix(rest, []byte("}")) {
			idField[len(idField)-1] = ','
		} else {
			idField = idField[:len(idField)-1]
		}
		b = append(idField, rest...)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err = a.stdout.Write(out.Bytes())
	return err
}

// activation is one line of `smartserver activate` output.
type activation struct {
	LicenseID      string `json:"license_id"`
	CommandID      string `json:"command_id"`
	Status         string `json:"status"` // activated | rejected | sent
	Reason         string `json:"reason,omitempty"`
	Message        string `json:"message,omitempty"`
	ActivationDate string `json:"activation_date,omitempty"`
}

func activationOf(s sent) activation {
	out := s.Out
	r := activation{LicenseID: s.LicenseID, CommandID: s.ID}
	if out.Status == "rejected" {
		var d events.Rejected
		_ = json.Unmarshal(out.Data, &d)
		if r.LicenseID == "" {
			r.LicenseID = d.LicenseID
		}
		r.Status, r.Reason, r.Message = "rejected", out.Reason, out.Message
		return r
	}
	var d events.LicenseActivated
	_ = json.Unmarshal(out.Data, &d)
	r.LicenseID = d.LicenseID
	r.Status, r.ActivationDate = "activated", d.ActivatedAt.UTC().Format(time.DateOnly)
	return r
}

// activationTable prints activations; refused ones only with -o json (run
// prints their refusals).
func (a *app) activationTable(res []activation) error {
	var t []table.Row
	for _, r := range res {
		if r.Status != "rejected" {
			t = append(t, table.Row{r.LicenseID, r.Status, r.ActivationDate, r.CommandID})
		}
	}
	if len(t) == 0 && a.output != "json" {
		return nil
	}
	return a.emit(res, table.Row{"License ID", "Status", "Activation Date", "Command ID"}, t)
}

// provisioning is one line of `device provision` output.
type provisioning struct {
	DeviceID  string `json:"device_id"`
	CommandID string `json:"command_id"`
	Status    string `json:"status"` // provisioned | rejected
	Reason    string `json:"reason,omitempty"`
	Message   string `json:"message,omitempty"`
}

// provisioningsOf is the lines of one batch, and the refusals of single
// devices in an accepted batch.
func provisioningsOf(s sent) ([]provisioning, []error) {
	out := s.Out
	var res []provisioning
	if out.Status == "rejected" {
		for _, id := range s.DeviceIDs {
			res = append(res, provisioning{DeviceID: id, CommandID: s.ID, Status: "rejected", Reason: out.Reason, Message: out.Message})
		}
		return res, nil
	}
	var d events.DevicesProvisioned
	_ = json.Unmarshal(out.Data, &d)
	for _, id := range d.DeviceIDs {
		res = append(res, provisioning{DeviceID: id, CommandID: s.ID, Status: "provisioned"})
	}
	var refused []error
	for _, r := range d.Refused {
		res = append(res, provisioning{DeviceID: r.DeviceID, CommandID: s.ID, Status: "rejected", Reason: string(r.Reason), Message: r.Message})
		refused = append(refused, fmt.Errorf("device %s: %w", r.DeviceID, &events.Rejection{Reason: r.Reason, Message: r.Message}))
	}
	return res, refused
}

// provisioningTable prints provisionings; refused ones only with -o json.
func (a *app) provisioningTable(res []provisioning) error {
	var t []table.Row
	for _, r := range res {
		if r.Status != "rejected" {
			t = append(t, table.Row{r.DeviceID, r.Status, r.CommandID})
		}
	}
	if len(t) == 0 && a.output != "json" {
		return nil
	}
	return a.emit(res, table.Row{"Device ID", "Status", "Command ID"}, t)
}
