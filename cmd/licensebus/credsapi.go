package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/auth"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
)

// credsGroup is the queue group of the credentials queries every serve
// answers from the shared record: one of them answers each request.
const credsGroup = "licensebus-creds"

// revokeSubject carries a revocation from a serve without the keys to the
// one that holds them (service-only: no role may publish or subscribe to
// lb.svc.>).
const revokeSubject = "lb.svc.creds.revoke"

// serveCreds answers the credentials queries. Every serve keeps the record
// (list, record, revoke); only the serve holding the embedded server's
// keys signs (issue) and pushes revocations. Without auth each is refused.
func (ac *access) serveCreds(ctx context.Context, s *Server) error {
	nc := s.nc
	var subs []*nats.Subscription
	handle := func(query string, queue bool, h func(context.Context, client.Params) (any, error)) error {
		subject := client.APIPrefix + client.ScopeAdmin + "." + query
		cb := func(msg *nats.Msg) {
			go func() {
				var p client.Params
				if err := json.Unmarshal(msg.Data, &p); err != nil {
					s.respond(msg, nil, &client.APIError{Code: string(events.ReasonBadRequest), Message: err.Error()})
					return
				}
				if ac.registry == nil {
					s.respond(msg, nil, credsError(events.Reject(events.ReasonNotFound, "serve runs with --no-auth: there are no credentials")))
					return
				}
				data, err := h(ctx, p)
				if err != nil {
					s.respond(msg, nil, credsError(err))
					return
				}
				s.respond(msg, data, nil)
			}()
		}
		var sub *nats.Subscription
		var err error
		if queue {
			sub, err = nc.QueueSubscribe(subject, credsGroup, cb)
		} else {
			sub, err = nc.Subscribe(subject, cb)
		}
		subs = append(subs, sub)
		return err
	}
	if err := handle(client.QueryCredsList, true, func(context.Context, client.Params) (any, error) {
		return ac.registry.List(), nil
	}); err != nil {
		return err
	}
	if err := handle(client.QueryCredsRecord, true, ac.recordCreds); err != nil {
		return err
	}
	if err := handle(client.QueryCredsRevoke, true, func(ctx context.Context, p client.Params) (any, error) {
		return ac.revokeCreds(ctx, nc, p)
	}); err != nil {
		return err
	}
	// Signing is for the holder of the keys alone; without auth the serve
	// says so. On an external NATS nobody answers: the CLI signs with
	// --account-seed.
	if ac.authority != nil || ac.registry == nil {
		if err := handle(client.QueryCredsIssue, false, ac.issueCreds); err != nil {
			return err
		}
	}
	if ac.authority != nil {
		sub, err := nc.Subscribe(revokeSubject, func(msg *nats.Msg) {
			var r struct {
				PublicKey string    `json:"public_key"`
				At        time.Time `json:"at"`
			}
			err := json.Unmarshal(msg.Data, &r)
			if err == nil {
				rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				err = ac.revoker()(rctx, r.PublicKey, r.At)
				cancel()
			}
			reply := ""
			if err != nil {
				reply = err.Error()
			}
			_ = msg.Respond([]byte(reply))
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
	return nil
}

// issueCreds signs a user for the public key the caller made, and records
// it; the seed stays with the caller.
func (ac *access) issueCreds(ctx context.Context, p client.Params) (any, error) {
	if p.Creds == nil {
		return nil, events.Reject(events.ReasonInvalidData, "creds_issue needs creds: name, role, public_key")
	}
	role, err := auth.ParseRole(p.Creds.Role)
	if err == nil && role == auth.Service {
		err = errors.New("the service's credentials are serve's own: <data>/service.creds")
	}
	if err != nil {
		return nil, events.Reject(events.ReasonInvalidData, "%v", err)
	}
	id := auth.Identity{Name: p.Creds.Name, Role: role}
	if err := id.Validate(); err != nil {
		return nil, events.Reject(events.ReasonInvalidData, "%v", err)
	}
	token, rec, err := ac.registry.Issue(ctx, ac.authority.Signer(role), id, p.Creds.PublicKey, p.Creds.Expires)
	if err != nil {
		return nil, err
	}
	ac.log.Info().Str("identity", rec.Name).Str("role", string(rec.Role)).Str("user_key", rec.PublicKey).Msg("credentials issued")
	b, _ := json.Marshal(rec)
	return client.CredsIssued{JWT: token, Record: b}, nil
}

// recordCreds records a user JWT signed elsewhere with the account's key
// (creds issue --account-seed on an external NATS).
func (ac *access) recordCreds(ctx context.Context, p client.Params) (any, error) {
	if p.Creds == nil || p.Creds.JWT == "" {
		return nil, events.Reject(events.ReasonInvalidData, "creds_record needs the user JWT")
	}
	uc, err := jwt.DecodeUserClaims(p.Creds.JWT)
	if err != nil {
		return nil, events.Reject(events.ReasonInvalidData, "user JWT: %v", err)
	}
	if _, ok := auth.IdentityOf(uc); !ok {
		return nil, events.Reject(events.ReasonInvalidData, "the JWT has no licensebus role tag")
	}
	rec := auth.RecordOf(uc)
	if err := ac.registry.Add(ctx, rec); err != nil {
		return nil, err
	}
	ac.log.Info().Str("identity", rec.Name).Str("role", string(rec.Role)).Str("user_key", rec.PublicKey).Msg("credentials recorded")
	return rec, nil
}

// credsRevoked answers creds_revoke: the record, and what is left to do
// when the NATS is not licensebus's own.
type credsRevoked struct {
	auth.Record
	Note string `json:"note,omitempty"`
}

func (ac *access) revokeCreds(ctx context.Context, nc *nats.Conn, p client.Params) (any, error) {
	if p.Creds == nil || p.Creds.Name == "" {
		return nil, events.Reject(events.ReasonInvalidData, "creds_revoke needs a name")
	}
	if rec, err := ac.registry.Get(ctx, p.Creds.Name); err == nil && rec.Role == auth.Service {
		return nil, events.Reject(events.ReasonInvalidData, "the service's credentials are serve's own: delete <data>/service.creds and restart serve to replace them")
	}
	var note string
	revoke := ac.revoker()
	if revoke == nil {
		// The keys are with another serve, or, on an external NATS, with
		// its operator.
		revoke = func(ctx context.Context, pub string, at time.Time) error {
			b, _ := json.Marshal(map[string]any{"public_key": pub, "at": at})
			msg, err := nc.RequestWithContext(ctx, revokeSubject, b)
			if errors.Is(err, nats.ErrNoResponders) {
				note = fmt.Sprintf("recorded as revoked; this NATS is run by its operator, who revokes the key on it: "+
					"nsc revocations add-user --account <licensebus account> --user-public-key %s, then nsc push", pub)
				return nil
			}
			if err != nil {
				return err
			}
			if len(msg.Data) > 0 {
				return errors.New(string(msg.Data))
			}
			return nil
		}
	}
	rec, err := ac.registry.Revoke(ctx, p.Creds.Name, revoke)
	if err != nil {
		return nil, err
	}
	ac.log.Info().Str("identity", rec.Name).Str("role", string(rec.Role)).Str("user_key", rec.PublicKey).Msg("credentials revoked")
	return credsRevoked{Record: rec, Note: note}, nil
}

// credsError is the API's answer to a refused credentials query.
func credsError(err error) *client.APIError {
	if r := events.AsRejection(err); r != nil {
		return &client.APIError{Code: string(r.Reason), Message: r.Error()}
	}
	code := string(events.ReasonInternal)
	switch {
	case errors.Is(err, auth.ErrNameInUse):
		code = string(events.ReasonAlreadyExists)
	case errors.Is(err, auth.ErrUnknown):
		code = string(events.ReasonNotFound)
	}
	return &client.APIError{Code: code, Message: code + ": " + err.Error()}
}
