package console

import (
	"crypto/subtle"
	"io"
	"net/http"
	"strings"

	"github.com/licensebus/licensebus/events"
)

// loginPage asks for credentials: a creds file, once, or its text.
type loginPage struct {
	view
	Next  string
	Token string // the login form's CSRF token, also in a cookie
	Error string
	Hint  string // Config.CredsHint
}

// safeNext keeps a redirect after sign-in on this site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	return next
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if c.cfg.SignIn == nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	c.drawLogin(w, r, http.StatusOK, "")
}

func (c *Console) drawLogin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	tok := randomToken()
	setCookie(w, r, loginCookie, tok, 3600)
	d := loginPage{view: view{Title: "Sign in", Fleet: false}, Next: safeNext(r.FormValue("next")), Token: tok, Error: msg, Hint: c.cfg.CredsHint}
	c.pages.render(w, status, "login", d)
}

// postLogin signs in with the credentials of a creds file: the console
// connects to NATS as that identity, and the session acts through that
// connection until sign-out.
func (c *Console) postLogin(w http.ResponseWriter, r *http.Request) {
	if c.cfg.SignIn == nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := parseForm(r); err != nil {
		c.drawLogin(w, r, http.StatusUnprocessableEntity, errText(err))
		return
	}
	ck, err := r.Cookie(loginCookie)
	if err != nil || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(r.PostFormValue("login_token"))) != 1 {
		c.drawLogin(w, r, http.StatusForbidden, "The sign-in form expired: choose the credentials again.")
		return
	}
	creds := []byte(strings.TrimSpace(r.PostFormValue("creds")))
	if f, _, err := r.FormFile("creds_file"); err == nil {
		creds, _ = io.ReadAll(io.LimitReader(f, 32<<10))
		f.Close()
	}
	if len(creds) == 0 {
		c.drawLogin(w, r, http.StatusUnprocessableEntity, "Choose a credentials file (.creds) or paste its text.")
		return
	}
	d := newDenials()
	nc, who, err := c.cfg.SignIn(r.Context(), decodeToken(string(creds)), d.handler)
	if err != nil {
		c.drawLogin(w, r, http.StatusUnauthorized, string(events.ReasonPermissionDenied)+": "+err.Error())
		return
	}
	x, err := c.sessions.newSession(r.Context(), nc, who, true, d)
	if err != nil {
		nc.Close()
		c.drawLogin(w, r, http.StatusServiceUnavailable, errText(err))
		return
	}
	c.sessions.put(x)
	setCookie(w, r, sessionCookie, x.id, 0)
	setCookie(w, r, loginCookie, "", -1)
	next := safeNext(r.PostFormValue("next"))
	if ic, ok := who.SmartServer(); ok && next == "/" {
		next = smartServerPath(ic)
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (c *Console) postLogout(w http.ResponseWriter, r *http.Request) {
	if ck, err := r.Cookie(sessionCookie); err == nil {
		if x := c.sessions.get(ck.Value); x != nil && validCSRF(r, x.csrf) {
			c.sessions.remove(x.id)
		}
	}
	setCookie(w, r, sessionCookie, "", -1)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
