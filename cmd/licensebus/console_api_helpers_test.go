package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/licensebus/licensebus/internal/console"
)

// apiTest calls the console's API and holds every request and answer
// against its OpenAPI document (kin-openapi): an endpoint that answers
// what the document does not say fails the test.
type apiTest struct {
	t      *testing.T
	base   string
	router routers.Router
}

var registerDecoders sync.Once

// mustAPI serves the console of s on a loopback test listener.
func mustAPI(t *testing.T, s *Server) *apiTest {
	t.Helper()
	c, err := newConsole(s, testLogger(t))
	if err != nil {
		t.Fatalf("newConsole: %v", err)
	}
	srv := httptest.NewServer(c)
	t.Cleanup(func() { c.Close(); srv.Close() })
	doc, err := openapi3.NewLoader().LoadFromData(console.OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	doc.Servers = openapi3.Servers{{URL: srv.URL}}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	registerDecoders.Do(func() {
		openapi3filter.RegisterBodyDecoder("application/problem+json", openapi3filter.JSONBodyDecoder)
	})
	return &apiTest{t: t, base: srv.URL, router: router}
}

// answer is one API response.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// problem decodes a problem+json answer.
func (a answer) problem(tb testing.TB) console.Problem {
	tb.Helper()
	if ct := a.header.Get("Content-Type"); ct != "application/problem+json" {
		tb.Fatalf("Content-Type = %q, want application/problem+json (status %d, body %s)", ct, a.status, a.body)
	}
	var p console.Problem
	mustUnmarshal(tb, a.body, &p)
	return p
}

// call sends method path with body (JSON, unless it is a []byte) as the
// bearer token ("" for none) and validates both sides against the
// document.
func (a *apiTest) call(token, method, path string, body any, header ...string) answer {
	a.t.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case []byte:
		raw = b
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			a.t.Fatal(err)
		}
	}
	req, err := http.NewRequest(method, a.base+path, bytes.NewReader(raw))
	if err != nil {
		a.t.Fatal(err)
	}
	if raw != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	in := a.validateRequest(req, raw)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	if in != nil {
		out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
			Options: &openapi3filter.Options{IncludeResponseStatus: true}}
		if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/jsonl") || strings.HasPrefix(ct, "text/csv") {
			out.Options.ExcludeResponseBody = true
		}
		out.SetBodyBytes(got)
		if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
			a.t.Errorf("%s %s answered %d %s, which openapi.json does not describe: %v", method, path, resp.StatusCode, clip(got), err)
		}
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: got}
}

// validateRequest checks a request the document describes; a request to a
// path it does not have (a test of the 404) is not checked.
func (a *apiTest) validateRequest(req *http.Request, raw []byte) *openapi3filter.RequestValidationInput {
	a.t.Helper()
	route, params, err := a.router.FindRoute(req)
	if err != nil {
		return nil
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	// The tests send bodies the document refuses on purpose; what is
	// checked is that the document knows the operation and its answer.
	_ = openapi3filter.ValidateRequest(context.Background(), in)
	req.Body = io.NopCloser(bytes.NewReader(raw))
	return in
}

// want fails the test unless the answer has status (and, for a refusal,
// the reason).
func (a answer) want(tb testing.TB, status int, reason string) answer {
	tb.Helper()
	if a.status != status {
		tb.Fatalf("status %d, want %d: %s", a.status, status, clip(a.body))
	}
	if reason != "" {
		if p := a.problem(tb); p.Reason != reason || p.Status != status {
			tb.Fatalf("problem %+v, want reason %s status %d", p, reason, status)
		}
	}
	return a
}

// into decodes a JSON answer.
func (a answer) into(tb testing.TB, v any) answer {
	tb.Helper()
	mustUnmarshal(tb, a.body, v)
	return a
}

func clip(b []byte) string {
	if len(b) > 600 {
		return string(b[:600]) + "…"
	}
	return string(b)
}

// tokenOf is the API token of a creds file.
func tokenOf(tb testing.TB, path string) string {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return console.Token(b)
}
