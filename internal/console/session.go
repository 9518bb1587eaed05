package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/licensebus/licensebus/internal/client"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Cookie names. The session cookie is HttpOnly and SameSite=Strict; the
// CSRF token travels in forms and in a header, never read from a cookie.
const (
	sessionCookie = "licensebus_session"
	loginCookie   = "licensebus_login"
	csrfField     = "csrf_token"
	csrfHeader    = "X-CSRF-Token"
)

// session is one signed-in person (or API token) and the NATS connection
// it acts through.
type session struct {
	id   string
	csrf string
	who  Identity
	c    *client.Client
	nc   *nats.Conn
	js   jetstream.JetStream
	// owned: the console opened nc for this session and closes it with it.
	owned bool
	// denials refuses the requests in flight when the NATS server refuses
	// the identity something (nil on the open console's connection).
	denials *denials

	mu    sync.Mutex
	last  time.Time
	flash []flash
}

// flash is a message shown once, on the next page.
type flash struct {
	Kind string // ok | error | pending
	Text string
}

func (s *session) addFlash(kind, format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flash = append(s.flash, flash{Kind: kind, Text: sprintf(format, args...)})
}

func (s *session) takeFlash() []flash {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.flash
	s.flash = nil
	return f
}

func (s *session) close() {
	if s.owned {
		s.nc.Close()
	}
}

// sessions keeps the sessions in memory: a restart of serve signs
// everyone out, which a console of one process may do.
type sessions struct {
	cfg  Config
	mu   sync.Mutex
	byID map[string]*session
	// byToken caches the sessions of API bearer tokens by the token's
	// SHA-256, so a script's calls share one connection.
	byToken map[string]*session
	// shared are the sessions of the open console (auth off), by actor.
	shared map[string]*session
}

func newSessions(cfg Config, done <-chan struct{}) *sessions {
	s := &sessions{cfg: cfg, byID: map[string]*session{}, byToken: map[string]*session{}, shared: map[string]*session{}}
	go s.expire(done)
	return s
}

// expire ends idle sessions once a minute.
func (s *sessions) expire(done <-chan struct{}) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		cut := s.cfg.Now().Add(-s.cfg.SessionIdle)
		s.mu.Lock()
		for k, x := range s.byID {
			x.mu.Lock()
			old := x.last.Before(cut)
			x.mu.Unlock()
			if old {
				delete(s.byID, k)
				if x.owned {
					go x.close()
				}
			}
		}
		for k, x := range s.byToken {
			x.mu.Lock()
			old := x.last.Before(cut)
			x.mu.Unlock()
			if old {
				delete(s.byToken, k)
				go x.close()
			}
		}
		s.mu.Unlock()
	}
}

func (s *sessions) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range s.byID {
		x.close()
	}
	for _, x := range s.byToken {
		x.close()
	}
	s.byID, s.byToken = map[string]*session{}, map[string]*session{}
}

// newSession makes a session acting through nc.
func (s *sessions) newSession(ctx context.Context, nc *nats.Conn, who Identity, owned bool, d *denials) (*session, error) {
	actor := "console"
	if who.Name != "" {
		actor = "console:" + who.Name
	}
	c, err := client.New(ctx, nc, actor)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	if ic, ok := who.SmartServer(); ok {
		// Its outcomes are asked in its own scope, the one it may ask in.
		c.ActAs(ic)
	}
	x := &session{id: randomToken(), csrf: randomToken(), who: who, c: c, nc: nc, js: js, owned: owned, last: s.cfg.Now(), denials: d}
	return x, nil
}

// get finds the session of a cookie value.
func (s *sessions) get(id string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	x := s.byID[id]
	if x != nil && x.ended() {
		// The NATS server refused it: credentials revoked or expired.
		delete(s.byID, id)
		go x.close()
		return nil
	}
	if x != nil {
		x.mu.Lock()
		x.last = s.cfg.Now()
		x.mu.Unlock()
	}
	return x
}

func (s *sessions) put(x *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byID[x.id] = x
}

func (s *sessions) remove(id string) {
	s.mu.Lock()
	x := s.byID[id]
	delete(s.byID, id)
	s.mu.Unlock()
	if x != nil {
		x.close()
	}
}

// bearer finds or opens the session of an API token: the credentials file,
// base64 encoded (or as is, when it has no line breaks).
func (s *sessions) bearer(ctx context.Context, token string) (*session, error) {
	sum := sha256.Sum256([]byte(token))
	key := hex.EncodeToString(sum[:])
	s.mu.Lock()
	x := s.byToken[key]
	if x != nil && x.ended() {
		delete(s.byToken, key)
		go x.close()
		x = nil
	}
	s.mu.Unlock()
	if x != nil {
		x.mu.Lock()
		x.last = s.cfg.Now()
		x.mu.Unlock()
		return x, nil
	}
	d := newDenials()
	nc, who, err := s.cfg.SignIn(ctx, decodeToken(token), d.handler)
	if err != nil {
		return nil, err
	}
	x, err = s.newSession(ctx, nc, who, true, d)
	if err != nil {
		nc.Close()
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if y := s.byToken[key]; y != nil { // another request signed in meanwhile
		x.close()
		return y, nil
	}
	s.byToken[key] = x
	return x, nil
}

// sharedSession is the session of everyone of one kind (console, api)
// when auth is off.
func (s *sessions) sharedSession(ctx context.Context, actor string) (*session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if x := s.shared[actor]; x != nil {
		return x, nil
	}
	x, err := s.newSession(ctx, s.cfg.Shared, Identity{Name: actor}, false, nil)
	if err != nil {
		return nil, err
	}
	s.shared[actor] = x
	return x, nil
}

// decodeToken reads a bearer token: base64 (standard or URL alphabet,
// padded or not) of a credentials file, or the file's text itself.
func decodeToken(t string) []byte {
	t = strings.TrimSpace(t)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(t); err == nil {
			return b
		}
	}
	return []byte(t)
}

// Token is the bearer token of a credentials file for the API.
func Token(creds []byte) string { return base64.RawURLEncoding.EncodeToString(creds) }

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// validCSRF checks the token of an unsafe request made with a cookie: in
// the form, or in the header htmx and scripts send.
func validCSRF(r *http.Request, want string) bool {
	got := r.Header.Get(csrfHeader)
	if got == "" {
		got = r.PostFormValue(csrfField)
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil, MaxAge: maxAge})
}
