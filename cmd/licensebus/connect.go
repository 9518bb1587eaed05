package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/auth"
	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"
)

// defaultCredsPath is where serve writes the operator's credentials, seen
// from where serve and the CLI run by default.
const defaultCredsPath = "licensebus-data/" + adminCredsFile

// credsOptions connect as the user of a creds file, with the inbox its
// role may subscribe to.
func credsOptions(c *auth.Creds) []nats.Option {
	opts := []nats.Option{nats.UserJWTAndSeed(c.JWT, string(c.Seed))}
	if p := c.InboxPrefix(); p != "" {
		opts = append(opts, nats.CustomInboxPrefix(p))
	}
	return opts
}

// credsPath is the creds file the CLI connects with: --creds, else
// NATS_CREDS (the flag's default), else ./licensebus-data/admin.creds if
// it exists; "" for none.
func (a *app) credsPath() string {
	if a.creds != "" {
		return a.creds
	}
	if _, err := os.Stat(defaultCredsPath); err == nil {
		return defaultCredsPath
	}
	return ""
}

// refusals is what the NATS server refused the CLI on its connections.
// A permission violation comes asynchronously (a publish is not answered,
// a request would wait for its timeout): the first one cancels the
// command, which then fails with it.
type refusals struct {
	mu     sync.Mutex
	denied error
	cancel context.CancelCauseFunc
	creds  string // the creds file, for the message
}

// watch makes cmd's context the one a refusal cancels.
func (r *refusals) watch(cmd *cobra.Command) {
	ctx, cancel := context.WithCancelCause(cmd.Context())
	cmd.SetContext(ctx)
	r.mu.Lock()
	r.cancel = cancel
	r.mu.Unlock()
}

// asyncError is the connections' error handler.
func (r *refusals) asyncError(_ *nats.Conn, _ *nats.Subscription, err error) {
	if !errors.Is(err, nats.ErrPermissionViolation) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.denied != nil {
		return
	}
	what := strings.TrimPrefix(err.Error(), nats.ErrPermissionViolation.Error()+": ")
	who := "without credentials"
	if r.creds != "" {
		who = "with credentials " + r.creds
	}
	r.denied = events.Reject(events.ReasonPermissionDenied, "%s (%s)", what, who)
	if r.cancel != nil {
		r.cancel(r.denied)
	}
}

func (r *refusals) err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.denied
}

// reportRefusals makes every command under c fail with the server's
// refusal, if there was one, rather than with what the refusal left
// behind (a cancelled context, a timeout).
func (a *app) reportRefusals(c *cobra.Command) {
	for _, sub := range c.Commands() {
		a.reportRefusals(sub)
	}
	if c.RunE == nil {
		return
	}
	run := c.RunE
	c.RunE = func(cmd *cobra.Command, args []string) error {
		err := run(cmd, args)
		if err != nil {
			if d := a.refused.err(); d != nil {
				return d
			}
		}
		return err
	}
}

// dial connects the CLI to NATS as the identity of its creds file. An
// unreadable or malformed creds file, and a connection the server refuses,
// are named with what is wrong. A permission violation refuses the
// command; other asynchronous errors go to onError, if given.
func (a *app) dial(name string, onError nats.ErrHandler, extra ...nats.Option) (*nats.Conn, error) {
	handler := func(nc *nats.Conn, sub *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrPermissionViolation) {
			a.refused.asyncError(nc, sub, err)
		} else if onError != nil {
			onError(nc, sub, err)
		}
	}
	opts := append([]nats.Option{nats.Name(name), nats.Timeout(5 * time.Second), nats.ErrorHandler(handler)}, extra...)
	path := a.credsPath()
	var c *auth.Creds
	if path != "" {
		var err error
		if c, err = auth.ReadCreds(path); err != nil {
			return nil, fmt.Errorf("credentials %s: %w", path, err)
		}
		opts = append(opts, credsOptions(c)...)
		a.identity = c.Identity()
	}
	a.refused.mu.Lock()
	a.refused.creds = path
	a.refused.mu.Unlock()
	nc, err := nats.Connect(a.natsURL, opts...)
	if err != nil {
		return nil, connectError(a.natsURL, c, err)
	}
	return nc, nil
}

// connectError says why a connection failed: the server's reason, and the
// credentials it refused.
func connectError(url string, c *auth.Creds, err error) error {
	authErr := errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) || errors.Is(err, nats.ErrAuthRevoked) ||
		strings.Contains(strings.ToLower(err.Error()), "authentication")
	switch {
	case !authErr:
		return fmt.Errorf("connect to %s: %w (is `licensebus serve` running? set --nats or NATS_URL)", url, err)
	case c == nil:
		return fmt.Errorf("connect to %s: %w: the server wants credentials: pass --creds FILE or set NATS_CREDS (serve writes %s)", url, err, defaultCredsPath)
	}
	id := c.Identity()
	why := "revoked, or not signed for this server"
	if c.Expired(time.Now()) {
		why = "expired " + time.Unix(c.Claims.Expires, 0).UTC().Format(time.RFC3339)
	}
	return fmt.Errorf("connect to %s with credentials %s (%s %s): %w (%s)", url, c.Path, id.Role, id.Name, err, why)
}
