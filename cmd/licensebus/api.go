package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/licensebus/licensebus/projections"
	"github.com/licensebus/licensebus/projections/devices"
	"github.com/licensebus/licensebus/projections/licensing"
	"github.com/licensebus/licensebus/projections/rollouts"
	"github.com/nats-io/nats.go"
)

// serveAPI answers queries on lb.api.v1.> from the in-memory read models.
// The subject carries the scope, which the NATS server authorized: the
// install code of a SmartServer's query is the subject's, not the body's.
func (s *Server) serveAPI(ctx context.Context) error {
	var err error
	if s.outcomesKV, err = s.js.KeyValue(ctx, projections.Bucket(s.outcomes)); err != nil {
		return fmt.Errorf("outcomes bucket: %w", err)
	}
	if err := s.access.serveCreds(ctx, s); err != nil {
		return err
	}
	// The credentials queries have subscriptions of their own: a query
	// no serve can answer (creds_issue without the keys) must find no
	// responder rather than one that stays silent.
	var subs []*nats.Subscription
	for _, subject := range []string{client.ScopeFleet + ".>", client.ScopeSmartServer + ".>", client.ScopeAdmin + "." + client.QueryRebuild} {
		sub, err := s.nc.Subscribe(client.APIPrefix+subject, func(msg *nats.Msg) {
			go s.answer(ctx, msg)
		})
		if err != nil {
			return err
		}
		subs = append(subs, sub)
	}
	go func() {
		<-ctx.Done()
		for _, sub := range subs {
			_ = sub.Unsubscribe()
		}
	}()
	// Once serve is up, a query finds its subscriptions in the server.
	return s.nc.Flush()
}

func (s *Server) answer(ctx context.Context, msg *nats.Msg) {
	query, ic, err := client.ParseSubject(msg.Subject)
	var p client.Params
	if err == nil && len(msg.Data) > 0 {
		if jerr := json.Unmarshal(msg.Data, &p); jerr != nil {
			s.respond(msg, nil, &client.APIError{Code: string(events.ReasonBadRequest), Message: jerr.Error()})
			return
		}
	}
	p.InstallCode = cmp.Or(ic, p.InstallCode)
	var data any
	if err == nil {
		data, err = s.query(ctx, query, p)
	}
	if errors.Is(err, errNoAnswer) {
		return
	}
	if err != nil {
		code := string(events.ReasonInternal)
		switch {
		case errors.Is(err, licensing.ErrUnknownServer), errors.Is(err, devices.ErrUnknownServer):
			code = string(events.ReasonUnknownServer)
		case errors.Is(err, licensing.ErrNotDownloaded):
			code = string(events.ReasonNotDownloaded)
		case errors.Is(err, rollouts.ErrUnknownRollout):
			code = string(events.ReasonUnknownRollout)
		case events.AsRejection(err) != nil:
			code = string(events.AsRejection(err).Reason)
		case errors.Is(err, client.ErrUnknownQuery):
			code = string(events.ReasonUnknownQuery)
		case errors.Is(err, client.ErrPending):
			code = client.CodePending
		}
		s.respond(msg, nil, &client.APIError{Code: code, Message: err.Error()})
		return
	}
	s.respond(msg, data, nil)
}

// errNoAnswer: another node answers this query.
var errNoAnswer = errors.New("answered by another node")

func (s *Server) query(ctx context.Context, q string, p client.Params) (any, error) {
	// Every node answers and the first answer is taken: this one must
	// have applied what the stream held when the query came (the events
	// of an outcome the caller has seen, say), whichever node wrote it.
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_ = s.runner.CatchUp(cctx)
	cancel()
	switch q {
	case client.QueryAccounts:
		return s.lic.Accounts(), nil
	case client.QueryDownloads:
		return s.lic.Downloads(p.InstallCode)
	case client.QueryManage:
		return s.lic.ManageLicenses(p.InstallCode)
	case client.QueryInventory:
		return s.lic.Licenses(licensing.LicenseFilter{CustomerID: p.CustomerID, InstallCode: p.InstallCode, State: p.State}), nil
	case client.QueryCustomers:
		return s.lic.Customers(), nil
	case client.QueryDevices:
		return s.dev.Devices(p.InstallCode)
	case client.QueryFleet:
		return s.dev.Fleet(), nil
	case client.QueryRollouts:
		return s.ro.List(), nil
	case client.QueryRollout:
		return s.ro.Get(p.RolloutID)
	case client.QueryRolloutPlan:
		if p.Spec == nil {
			return nil, events.Reject(events.ReasonInvalidData, "a plan needs a spec")
		}
		return s.exec.Plan(*p.Spec)
	case client.QueryRebuild:
		if !s.runner.Leading() {
			// The node that writes the buckets rebuilds them and answers;
			// this one rebuilds its own models.
			go func() {
				rctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
				defer cancel()
				_ = s.runner.Rebuild(rctx)
			}()
			return nil, errNoAnswer
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		defer cancel()
		if err := s.runner.Rebuild(rctx); err != nil {
			return nil, err
		}
		return s.status(ctx)
	case client.QueryStatus:
		return s.status(ctx)
	case client.QuerySmartServer:
		return s.smartServer(p)
	case client.QueryFleetPage:
		return s.fleetPage(p), nil
	case client.QueryOutcome:
		return client.AwaitOutcome(ctx, s.outcomesKV, p)
	}
	return nil, client.ErrUnknownQuery
}

func (s *Server) status(ctx context.Context) (client.Status, error) {
	st := client.Status{Applied: s.runner.Applied(), Checkpoints: s.runner.Checkpoints()}
	var err error
	st.EventsLastSeq, err = bus.LastSeq(ctx, s.js, events.EventsStream)
	return st, err
}

func (s *Server) respond(msg *nats.Msg, data any, apiErr *client.APIError) {
	r := client.Response{Error: apiErr}
	if apiErr == nil {
		b, err := json.Marshal(data)
		if err != nil {
			r.Error = &client.APIError{Code: "internal", Message: err.Error()}
		} else {
			r.Data = b
		}
	}
	b, _ := json.Marshal(r)
	_ = msg.Respond(b)
}
