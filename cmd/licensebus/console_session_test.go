package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// browserClient is an HTTP client with cookies that does not follow
// redirects, so a test sees each 303.
func browserClient(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func mustGet(t *testing.T, hc *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := hc.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func mustPostForm(t *testing.T, hc *http.Client, u string, form url.Values, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var (
	csrfInput  = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	loginInput = regexp.MustCompile(`name="login_token" value="([^"]+)"`)
)

func field(t *testing.T, re *regexp.Regexp, page string) string {
	t.Helper()
	m := re.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no %s in the page: %.400s", re, page)
	}
	return m[1]
}

func cookieNamed(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// TestConsoleSessions: signing in with a creds file, the session cookie
// (HttpOnly, SameSite=Strict), the CSRF token every form and every
// cookie-borne API call needs, signing out, and a revoked identity losing
// its session.
func TestConsoleSessions(t *testing.T) {
	s := mustServe(t, t.TempDir())
	c, err := newConsole(s, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c)
	t.Cleanup(func() { c.Close(); srv.Close() })
	hc := browserClient(t)

	// Signed out: every page sends to the sign-in page.
	if resp, _ := mustGet(t, hc, srv.URL+"/smartservers/IC-1"); resp.StatusCode != 303 || !strings.HasPrefix(resp.Header.Get("Location"), "/login?next=") {
		t.Fatalf("signed out: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, page := mustGet(t, hc, srv.URL+"/login")
	tok := field(t, loginInput, page)
	if lc := cookieNamed(resp, loginCookieName); lc == nil || !lc.HttpOnly || lc.SameSite != http.SameSiteStrictMode {
		t.Fatalf("login cookie %+v", lc)
	}
	if !strings.Contains(page, s.credsFiles().admin) {
		t.Fatalf("the sign-in page does not say where serve wrote the operator's credentials")
	}
	// A form without its token, and credentials that are not, are refused.
	if resp, _ := mustPostForm(t, hc, srv.URL+"/login", url.Values{"creds": {"x"}}); resp.StatusCode != 403 {
		t.Fatalf("sign-in without the form's token: %d", resp.StatusCode)
	}
	resp, page = mustGet(t, hc, srv.URL+"/login")
	tok = field(t, loginInput, page)
	if resp, page := mustPostForm(t, hc, srv.URL+"/login", url.Values{"login_token": {tok}, "creds": {"-----BEGIN NATS USER JWT-----\nnope\n------END NATS USER JWT------"}}); resp.StatusCode != 401 || !strings.Contains(page, "permission_denied") {
		t.Fatalf("bad credentials: %d %.300s", resp.StatusCode, page)
	}
	admin, err := os.ReadFile(s.credsFiles().admin)
	if err != nil {
		t.Fatal(err)
	}
	_, page = mustGet(t, hc, srv.URL+"/login")
	tok = field(t, loginInput, page)
	resp, _ = mustPostForm(t, hc, srv.URL+"/login", url.Values{"login_token": {tok}, "creds": {string(admin)}, "next": {"/audit"}})
	sc := cookieNamed(resp, sessionCookieName)
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/audit" || sc == nil || !sc.HttpOnly || sc.SameSite != http.SameSiteStrictMode {
		t.Fatalf("sign-in: %d %s, cookie %+v", resp.StatusCode, resp.Header.Get("Location"), sc)
	}

	// Signed in: forms need the session's CSRF token.
	resp, page = mustGet(t, hc, srv.URL+"/")
	if resp.StatusCode != 200 || !strings.Contains(page, "admin (operator)") {
		t.Fatalf("fleet page: %d", resp.StatusCode)
	}
	csrf := field(t, csrfInput, page)
	if resp, page := mustPostForm(t, hc, srv.URL+"/demo", url.Values{}); resp.StatusCode != 403 || !strings.Contains(page, "CSRF") {
		t.Fatalf("form without a CSRF token: %d", resp.StatusCode)
	}
	if resp, _ := mustPostForm(t, hc, srv.URL+"/demo", url.Values{"csrf_token": {"forged"}}); resp.StatusCode != 403 {
		t.Fatalf("form with a wrong CSRF token: %d", resp.StatusCode)
	}
	if resp, _ := mustPostForm(t, hc, srv.URL+"/demo", url.Values{"csrf_token": {csrf}}); resp.StatusCode != 303 {
		t.Fatalf("form with its CSRF token: %d", resp.StatusCode)
	}
	// The API with the session cookie: unsafe methods need X-CSRF-Token.
	post := func(header ...string) int {
		req, _ := http.NewRequest("PUT", srv.URL+"/api/v1/smartservers/IC-0001/auto-provision", strings.NewReader(`{"enabled":true}`))
		req.Header.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(); code != 403 {
		t.Fatalf("API call with the cookie and no X-CSRF-Token: %d", code)
	}
	if code := post("X-CSRF-Token", csrf); code != 200 {
		t.Fatalf("API call with the cookie and its X-CSRF-Token: %d", code)
	}

	// Signing out ends the session.
	if resp, _ := mustPostForm(t, hc, srv.URL+"/logout", url.Values{"csrf_token": {csrf}}); resp.StatusCode != 303 {
		t.Fatalf("sign-out: %d", resp.StatusCode)
	}
	if resp, _ := mustGet(t, hc, srv.URL+"/"); resp.StatusCode != 303 {
		t.Fatalf("after sign-out: %d", resp.StatusCode)
	}

	// Revoked credentials: the NATS server closes the connection, and the
	// console's session with it.
	bob := issue(t, s.URL(), "operator", "bob")
	bobText, _ := os.ReadFile(bob)
	_, page = mustGet(t, hc, srv.URL+"/login")
	resp, _ = mustPostForm(t, hc, srv.URL+"/login", url.Values{"login_token": {field(t, loginInput, page)}, "creds": {string(bobText)}})
	if resp.StatusCode != 303 {
		t.Fatalf("bob signs in: %d", resp.StatusCode)
	}
	if resp, _ := mustGet(t, hc, srv.URL+"/"); resp.StatusCode != 200 {
		t.Fatalf("bob's fleet page: %d", resp.StatusCode)
	}
	mustCLI(t, s.URL(), "creds", "revoke", "bob")
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, _ := mustGet(t, hc, srv.URL+"/")
		if resp.StatusCode == 303 && strings.HasPrefix(resp.Header.Get("Location"), "/login") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bob's session outlived his revoked credentials: %d", resp.StatusCode)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestConsoleOpenLoopbackOnly: without auth the console acts for anyone
// who reaches it, so it answers this machine only.
func TestConsoleOpenLoopbackOnly(t *testing.T) {
	s := mustServeCfg(t, ServeConfig{DataDir: t.TempDir(), NoAuth: true})
	a := mustAPI(t, s)
	a.call("", "POST", "/api/v1/smartservers", map[string]string{"install_code": "IC-1", "version": "3.4"}).want(t, 200, "")
	a.call("", "GET", "/api/v1/smartservers/IC-1", nil).want(t, 200, "")

	c, err := newConsole(s, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, remote := range []string{"192.0.2.7:40000", "[2001:db8::1]:40000"} {
		req := httptest.NewRequest("GET", "/api/v1/smartservers", nil)
		req.RemoteAddr = remote
		rec := httptest.NewRecorder()
		c.ServeHTTP(rec, req)
		if rec.Code != 403 || !strings.Contains(rec.Body.String(), "permission_denied") {
			t.Fatalf("from %s: %d %s", remote, rec.Code, rec.Body)
		}
	}
	req := httptest.NewRequest("GET", "/", nil)
	req.RemoteAddr = "[::1]:40000"
	rec := httptest.NewRecorder()
	c.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("from ::1: %d", rec.Code)
	}
}

// The console's cookie names, as a browser sees them.
const (
	sessionCookieName = "licensebus_session"
	loginCookieName   = "licensebus_login"
)
