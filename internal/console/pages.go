package console

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/licensebus/licensebus/events"
)

// pageHandler answers a page request as session x; an error becomes the
// error page (or problem+json to a client that asks for JSON).
type pageHandler func(w http.ResponseWriter, r *http.Request, x *session) error

func (c *Console) routePages() {
	for _, rt := range []struct {
		pattern string
		h       pageHandler
	}{
		{"GET /{$}", c.fleetPage},
		{"POST /demo", c.postDemo},
		{"GET /smartservers/{ic}", c.dialogPage},
		{"GET /smartservers/{ic}/accounts", c.accountsPage},
		{"POST /smartservers/{ic}/customer-id", c.postCustomerID},
		{"GET /smartservers/{ic}/downloads", c.downloadsPage},
		{"POST /smartservers/{ic}/downloads", c.postDownload},
		{"POST /smartservers/{ic}/activations", c.postActivate},
		{"GET /smartservers/{ic}/transfer", c.transferPage},
		{"POST /smartservers/{ic}/transfer", c.postTransfer},
		{"GET /smartservers/{ic}/devices", c.devicesPage},
		{"POST /smartservers/{ic}/devices", c.postAddDevice},
		{"POST /smartservers/{ic}/provisioning", c.postProvision},
		{"POST /smartservers/{ic}/auto-provision", c.postAutoProvision},
		{"GET /rollouts", c.rolloutsPage},
		{"POST /rollouts/plan", c.postPlan},
		{"POST /rollouts", c.postStartRollout},
		{"GET /rollouts/{id}", c.rolloutPage},
		{"POST /rollouts/{id}/{action}", c.postRolloutAction},
		{"GET /audit", c.auditPage},
		{"GET /audit/trace/{id}", c.tracePage},
		{"GET /audit/verify", c.verifyPage},
		{"GET /audit/export", c.exportDownload},
		{"GET /live/fleet", c.liveFleet},
		{"GET /live/smartservers/{ic}", c.liveSmartServer},
		{"GET /live/rollouts", c.liveRollouts},
		{"GET /live/rollouts/{id}", c.liveRollout},
		{"GET /live/audit", c.liveAudit},
	} {
		c.mux.Handle(rt.pattern, c.page(rt.h))
	}
	c.mux.HandleFunc("GET /login", c.loginPage)
	c.mux.HandleFunc("POST /login", c.postLogin)
	c.mux.HandleFunc("POST /logout", c.postLogout)
	c.mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, &httpError{status: http.StatusNotFound, reason: string(events.ReasonNotFound), msg: "no page at " + r.URL.Path})
	}))
}

// page resolves the browser's session and checks the CSRF token of every
// form it sends. Without auth each browser gets a session of the open
// console; with auth, a browser without one is sent to sign in.
func (c *Console) page(h pageHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		x := c.browserSession(w, r)
		if x == nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			c.fail(w, r, &httpError{status: http.StatusUnauthorized, reason: string(events.ReasonPermissionDenied), msg: "sign in first"})
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxBody)
			if err := parseForm(r); err != nil {
				c.fail(w, r, err)
				return
			}
			if !validCSRF(r, x.csrf) {
				c.fail(w, r, &httpError{status: http.StatusForbidden, reason: string(events.ReasonPermissionDenied),
					msg: "this form is stale or came from another site (CSRF check): reload the page and send it again"})
				return
			}
		}
		if err := h(w, r, x); err != nil {
			c.fail(w, r, err)
		}
	})
}

func parseForm(r *http.Request) error {
	var err error
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		err = r.ParseMultipartForm(maxBody)
	} else {
		err = r.ParseForm()
	}
	if err != nil {
		return badRequest("the form does not parse: %v", err)
	}
	return nil
}

// browserSession finds the session of the browser's cookie, or makes one
// for the open console; nil when the browser must sign in.
func (c *Console) browserSession(w http.ResponseWriter, r *http.Request) *session {
	if ck, err := r.Cookie(sessionCookie); err == nil {
		if x := c.sessions.get(ck.Value); x != nil {
			return x
		}
	}
	if c.cfg.Shared == nil {
		return nil
	}
	x, err := c.sessions.newSession(r.Context(), c.cfg.Shared, Identity{}, false, nil)
	if err != nil {
		return nil
	}
	c.sessions.put(x)
	setCookie(w, r, sessionCookie, x.id, 0)
	return x
}

// view is the layout's part of a page for x. A live update draws parts of
// a page and leaves the flash to the next whole one.
func (c *Console) view(r *http.Request, x *session, title, nav string) view {
	v := view{Title: title, Nav: nav, CSRF: x.csrf, CommandID: uuid.NewString(), Fleet: true, Who: "open console (auth off)"}
	if !strings.HasPrefix(r.URL.Path, "/live/") {
		v.Flash = x.takeFlash()
	}
	if x.who.Role != "" {
		v.Who, v.SignedIn = x.who.Name+" ("+x.who.Role+")", true
	}
	if ic, ok := x.who.SmartServer(); ok {
		v.Fleet, v.Home = false, ic
	}
	return v
}

// seeOther ends a form: the browser shows the page at to (post, redirect,
// get), so a reload does not send the form again.
func seeOther(w http.ResponseWriter, r *http.Request, to string) error {
	http.Redirect(w, r, to, http.StatusSeeOther)
	return nil
}

// report puts outcomes in the session's flash: done says what accepted
// means, in the page's words.
func (x *session) report(outs []Outcome, done string) {
	var refused, waiting int
	for _, o := range outs {
		switch o.Status {
		case Rejected:
			refused++
			what := ""
			if o.LicenseID != "" {
				what = "License " + o.LicenseID + ": "
			}
			x.addFlash("error", "%s%s: %s", what, o.Reason, o.Message)
		case Pending:
			waiting++
		}
	}
	if waiting > 0 {
		x.addFlash("pending", "%d of %d still in progress: this page updates when they are done (command %s)", waiting, len(outs), outs[0].CommandID)
	}
	if ok := len(outs) - refused - waiting; ok > 0 && done != "" {
		x.addFlash("ok", "%s", done)
	}
}

func offsetParam(r *http.Request) int {
	n, err := strconv.Atoi(r.URL.Query().Get("offset"))
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// smartServerPath is where the dialog of ic is.
func smartServerPath(ic string) string { return "/smartservers/" + url.PathEscape(ic) }
