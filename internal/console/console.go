// Package console is licensebus's web console and HTTP API: the CMS's
// Manage Licenses dialog, the DMM Devices widget, fleet rollouts and the
// audit trail in a browser, and the same operations as JSON under /api/v1.
//
// It holds no rule of the domain. Every page and every API call reads the
// server's views through the query API and sends commands as CloudEvents,
// through internal/client exactly as the CLI does, on a NATS connection of
// the signed-in identity: what the NATS server refuses that identity, the
// console cannot show or do either. Live updates are server-sent events fed
// by subscriptions on that same connection.
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

//go:embed static templates
var files embed.FS

// Identity is who a session acts as on the bus.
type Identity struct {
	Name string `json:"name"`
	// Role is operator, reader or smartserver (the SmartServer's install
	// code is its Name); "" when auth is off, which acts as an operator.
	Role string `json:"role"`
}

// Roles of identities, as the NATS server's permissions give them.
const (
	RoleOperator    = "operator"
	RoleReader      = "reader"
	RoleSmartServer = "smartserver"
)

// SmartServer tells the install code a SmartServer identity is scoped to.
func (id Identity) SmartServer() (string, bool) { return id.Name, id.Role == RoleSmartServer }

// Verification is a check of the live audit trail, as `audit verify` makes
// it: the JSON report, and the one-line summary people read.
type Verification struct {
	Intact   bool     `json:"intact"`
	Summary  string   `json:"summary"`
	Problems []string `json:"problems,omitempty"`
	Report   any      `json:"report"`
}

// Config configures a Console. Either Shared (auth off) or SignIn is
// required.
type Config struct {
	// Shared is the connection everyone acts through when auth is off
	// (serve --no-auth). The console then answers loopback clients only.
	Shared *nats.Conn
	// SignIn connects to NATS as the identity of a credentials file (the
	// text `licensebus creds issue` writes), with onError as the
	// connection's error handler; the console closes the connection when
	// the session ends.
	SignIn func(ctx context.Context, creds []byte, onError nats.ErrHandler) (*nats.Conn, Identity, error)
	// CredsHint says where a person finds credentials to sign in with
	// (the operator's creds file serve wrote), on the sign-in page.
	CredsHint string
	// VerifyAudit checks the live audit trail through js, as audit verify
	// does; nil hides the check.
	VerifyAudit func(ctx context.Context, js jetstream.JetStream) (Verification, error)
	// Wait bounds how long a request waits for the outcome of a command
	// before it answers with the command id alone (202); default 30 s.
	Wait time.Duration
	// SessionIdle ends a session unused this long; default 12 h.
	SessionIdle time.Duration
	Logger      zerolog.Logger
	Now         func() time.Time
}

// Console serves the pages, the API and their live updates. It is an
// http.Handler, safe for concurrent use.
type Console struct {
	cfg      Config
	mux      *http.ServeMux
	pages    *pages
	sessions *sessions
	done     chan struct{}
	closeMu  sync.Once
}

// ErrConfig is a Config that cannot work.
var ErrConfig = errors.New("console: invalid config")

// New returns a Console.
func New(cfg Config) (*Console, error) {
	if (cfg.Shared == nil) == (cfg.SignIn == nil) {
		return nil, fmt.Errorf("%w: give Shared (auth off) or SignIn (auth on), one of them", ErrConfig)
	}
	if cfg.Wait <= 0 {
		cfg.Wait = 30 * time.Second
	}
	if cfg.SessionIdle <= 0 {
		cfg.SessionIdle = 12 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	p, err := parsePages()
	if err != nil {
		return nil, err
	}
	c := &Console{cfg: cfg, pages: p, done: make(chan struct{})}
	c.sessions = newSessions(cfg, c.done)
	c.mux = http.NewServeMux()
	static, _ := fs.Sub(files, "static")
	c.mux.Handle("GET /static/", http.StripPrefix("/static/", cacheStatic(http.FileServerFS(static))))
	c.routePages()
	c.routeAPI()
	return c, nil
}

// ServeHTTP answers a request. Without auth only loopback clients are
// answered: anyone else could act as an operator.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if c.cfg.Shared != nil && !loopback(r.RemoteAddr) {
		c.fail(w, r, &httpError{status: http.StatusForbidden, reason: "permission_denied",
			msg: "auth is off (serve --no-auth): the console answers this machine only"})
		return
	}
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	c.mux.ServeHTTP(w, r)
}

// Close ends the live updates and the sessions' connections.
func (c *Console) Close() {
	c.closeMu.Do(func() {
		close(c.done)
		c.sessions.closeAll()
	})
}

func loopback(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// cacheStatic lets browsers keep the embedded files for a day: they change
// only with the binary.
func cacheStatic(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=86400")
		h.ServeHTTP(w, r)
	})
}
