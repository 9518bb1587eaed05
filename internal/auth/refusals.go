package auth

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// Refusals makes what the embedded NATS server refuses visible: it counts
// refused connections and permission violations, and logs each with the
// identity it concerns. The counts are for the metrics to export.
type Refusals struct {
	connections atomic.Uint64
	permissions atomic.Uint64
	onViolation atomic.Pointer[func(operation string)]
	log         zerolog.Logger
	// Who names the holder of a user key; Revoked says whether the
	// account revokes a JWT. Either may be nil.
	Who     func(userPub string) (Identity, bool)
	Revoked func(*jwt.UserClaims) bool
}

// NewRefusals logs the connections it hears of to log.
func NewRefusals(log zerolog.Logger) *Refusals { return &Refusals{log: log} }

// OnViolation makes f hear of each permission violation, by operation:
// publish or subscribe (the metrics count them).
func (r *Refusals) OnViolation(f func(operation string)) { r.onViolation.Store(&f) }

// Connections is the number of connections refused so far.
func (r *Refusals) Connections() uint64 { return r.connections.Load() }

// Permissions is the number of permission violations so far.
func (r *Refusals) Permissions() uint64 { return r.permissions.Load() }

// userKey finds the user's public key in the client part of a server log
// line: `… - "<account>/jwt:U…" - Publish Violation - Subject "…"`.
var userKey = regexp.MustCompile(`jwt:(U[A-Z2-7]{55})`)

// ServerLogger is the embedded server's logger: it writes the server's
// lines to log as bus does, and counts each permission violation (of
// publish, subscribe or reply) the server logs, whatever the log level,
// writing it as a warning with the identity's name and role.
func (r *Refusals) ServerLogger(log zerolog.Logger) server.Logger {
	return serverLog{r: r, l: log.With().Str("component", "nats-server").Logger()}
}

type serverLog struct {
	r *Refusals
	l zerolog.Logger
}

func (s serverLog) Noticef(f string, v ...any) { s.l.Info().Msgf(f, v...) }
func (s serverLog) Warnf(f string, v ...any)   { s.l.Warn().Msgf(f, v...) }
func (s serverLog) Fatalf(f string, v ...any)  { s.l.Error().Msgf(f, v...) }
func (s serverLog) Debugf(f string, v ...any)  { s.l.Debug().Msgf(f, v...) }
func (s serverLog) Tracef(f string, v ...any)  { s.l.Trace().Msgf(f, v...) }

func (s serverLog) Errorf(f string, v ...any) {
	msg := fmt.Sprintf(f, v...)
	if !strings.Contains(msg, "Publish Violation") && !strings.Contains(msg, "Subscription Violation") {
		s.l.Error().Msg(msg)
		return
	}
	s.r.permissions.Add(1)
	op := "publish"
	if strings.Contains(msg, "Subscription Violation") {
		op = "subscribe"
	}
	if f := s.r.onViolation.Load(); f != nil {
		(*f)(op)
	}
	e := s.l.Warn().Str("refusal", "permission").Str("operation", op)
	if m := userKey.FindStringSubmatch(msg); m != nil {
		e = e.Str("user_key", m[1])
		if s.r.Who != nil {
			if id, ok := s.r.Who(m[1]); ok {
				e = e.Str("identity", id.Name).Str("role", string(id.Role))
			}
		}
	}
	e.Msg(msg)
}

// AuthErrorSubject is where the server announces each refused connection,
// in the system account.
const AuthErrorSubject = "$SYS.SERVER.*.CLIENT.AUTH.ERR"

// Follow counts and logs the refused connections the server announces;
// nc must be a connection of the system account.
func (r *Refusals) Follow(nc *nats.Conn) (*nats.Subscription, error) {
	return nc.Subscribe(AuthErrorSubject, func(m *nats.Msg) {
		var ev server.DisconnectEventMsg
		if json.Unmarshal(m.Data, &ev) != nil {
			return
		}
		r.connections.Add(1)
		l := r.log.Warn().Str("refusal", "connection").Str("reason", ev.Reason).Str("client", ev.Client.Name).Str("host", ev.Client.Host)
		switch uc, err := jwt.DecodeUserClaims(ev.Client.Jwt); {
		case ev.Client.Jwt == "":
			l = l.Str("why", "no credentials")
		case err != nil:
			l = l.Str("why", "credentials do not verify")
		default:
			id, _ := IdentityOf(uc)
			l = l.Str("identity", id.Name).Str("role", string(id.Role)).Str("user_key", uc.Subject).Str("why", r.why(uc))
		}
		l.Msg("connection refused")
	})
}

// why tells a refused JWT's problem where licensebus can see it.
func (r *Refusals) why(uc *jwt.UserClaims) string {
	switch {
	case uc.Expires != 0 && time.Now().Unix() >= uc.Expires:
		return "expired"
	case r.Revoked != nil && r.Revoked(uc):
		return "revoked"
	}
	return "not accepted"
}
