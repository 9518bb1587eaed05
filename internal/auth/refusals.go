package auth

import (
	"encoding/json"
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
	log         zerolog.Logger
	// Who names the holder of a user key; Revoked says whether the
	// account revokes a JWT. Either may be nil.
	Who     func(userPub string) (Identity, bool)
	Revoked func(*jwt.UserClaims) bool
}

// NewRefusals logs the connections it hears of to log.
func NewRefusals(log zerolog.Logger) *Refusals { return &Refusals{log: log} }

// Connections is the number of connections refused so far.
func (r *Refusals) Connections() uint64 { return r.connections.Load() }

// Permissions is the number of permission violations so far.
func (r *Refusals) Permissions() uint64 { return r.permissions.Load() }

// userKey finds the user's public key in the client part of a server log
// line: `… - "<account>/jwt:U…" - Publish Violation - Subject "…"`.
var userKey = regexp.MustCompile(`jwt:(U[A-Z2-7]{55})`)

// Run implements zerolog.Hook on the embedded server's logger. The server
// logs each permission violation (of publish, subscribe or reply) on its
// own line; Run counts them and adds the identity's name and role to the
// line.
func (r *Refusals) Run(e *zerolog.Event, _ zerolog.Level, msg string) {
	if !strings.Contains(msg, "Publish Violation") && !strings.Contains(msg, "Subscription Violation") {
		return
	}
	r.permissions.Add(1)
	e.Str("refusal", "permission")
	m := userKey.FindStringSubmatch(msg)
	if m == nil {
		return
	}
	e.Str("user_key", m[1])
	if r.Who != nil {
		if id, ok := r.Who(m[1]); ok {
			e.Str("identity", id.Name).Str("role", string(id.Role))
		}
	}
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
