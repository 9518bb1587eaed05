package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/licensebus/licensebus/projections/devices"
	"github.com/licensebus/licensebus/projections/licensing"
	"github.com/licensebus/licensebus/projections/rollouts"
	"github.com/nats-io/nats.go"
)

// serveAPI answers queries on lb.api.v1.* from the in-memory read models.
func (s *Server) serveAPI(ctx context.Context) error {
	sub, err := s.nc.Subscribe(client.APIPrefix+"*", func(msg *nats.Msg) {
		go s.answer(ctx, msg)
	})
	if err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		_ = sub.Unsubscribe()
	}()
	return nil
}

func (s *Server) answer(ctx context.Context, msg *nats.Msg) {
	var p client.Params
	if len(msg.Data) > 0 {
		if err := json.Unmarshal(msg.Data, &p); err != nil {
			s.respond(msg, nil, &client.APIError{Code: "bad_request", Message: err.Error()})
			return
		}
	}
	query := strings.TrimPrefix(msg.Subject, client.APIPrefix)
	data, err := s.query(ctx, query, p)
	if errors.Is(err, errNoAnswer) {
		return
	}
	if err != nil {
		code := "internal"
		switch {
		case errors.Is(err, licensing.ErrUnknownServer), errors.Is(err, devices.ErrUnknownServer):
			code = string(events.ReasonUnknownServer)
		case errors.Is(err, licensing.ErrNotDownloaded):
			code = string(events.ReasonNotDownloaded)
		case errors.Is(err, rollouts.ErrUnknownRollout):
			code = string(events.ReasonUnknownRollout)
		case events.AsRejection(err) != nil:
			code = string(events.AsRejection(err).Reason)
		case errors.Is(err, errUnknownQuery):
			code = "unknown_query"
		}
		s.respond(msg, nil, &client.APIError{Code: code, Message: err.Error()})
		return
	}
	s.respond(msg, data, nil)
}

var errUnknownQuery = errors.New("unknown query")

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
	}
	return nil, errUnknownQuery
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
