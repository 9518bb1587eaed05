package console

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/licensebus/licensebus/events"
	"github.com/nats-io/nats.go"
)

// denials turns the NATS server's permission violations on a session's
// connection into refusals of the requests in flight. The server says
// "no" asynchronously: a request to a subject the identity may not
// publish on would otherwise get no answer and wait for its timeout.
type denials struct {
	gone    atomic.Bool // the server refuses the identity altogether now
	mu      sync.Mutex
	next    int
	waiting map[int]context.CancelCauseFunc
}

func newDenials() *denials { return &denials{waiting: map[int]context.CancelCauseFunc{}} }

// handler is the connection's error handler.
func (d *denials) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	var rej error
	switch {
	case errors.Is(err, nats.ErrPermissionViolation):
		what := strings.TrimPrefix(err.Error(), nats.ErrPermissionViolation.Error()+": ")
		rej = events.Reject(events.ReasonPermissionDenied, "%s: this identity may not do that", what)
	case errors.Is(err, nats.ErrAuthRevoked), errors.Is(err, nats.ErrAuthExpired), errors.Is(err, nats.ErrAuthorization):
		// The server closed the connection for good: revoked or expired
		// credentials. The session ends; nats.go would go on trying.
		d.gone.Store(true)
		rej = events.Reject(events.ReasonPermissionDenied, "%v: sign in again", err)
	default:
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, cancel := range d.waiting {
		cancel(rej)
	}
}

// watch returns a context a violation cancels, and its release.
func (d *denials) watch(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	d.mu.Lock()
	id := d.next
	d.next++
	d.waiting[id] = cancel
	d.mu.Unlock()
	return ctx, func() {
		d.mu.Lock()
		delete(d.waiting, id)
		d.mu.Unlock()
		cancel(nil)
	}
}

// guard is watch on the session's connection (a no-op without one).
func (x *session) guard(ctx context.Context) (context.Context, func()) {
	if x.denials == nil {
		return ctx, func() {}
	}
	return x.denials.watch(ctx)
}

// deniedOr is err, or the server's refusal that caused it.
func deniedOr(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if c := context.Cause(ctx); events.AsRejection(c) != nil {
		return c
	}
	return err
}

// ended tells whether the session's connection is over: closed, or its
// credentials refused since it signed in.
func (x *session) ended() bool {
	return x.owned && (x.nc.IsClosed() || (x.denials != nil && x.denials.gone.Load()))
}
