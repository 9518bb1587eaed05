package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestConsoleOnServeListener: serve's main listener serves the console on
// every path the probes leave: 503 while the server starts (the probes
// answer meanwhile), then the console, and after close nothing hangs on
// a live update.
func TestConsoleOnServeListener(t *testing.T) {
	o := &observer{log: testLogger(t), httpAddr: "127.0.0.1:8080"}
	o.probes.web.log = o.log
	s := mustServe(t, t.TempDir())
	o.probes.metrics = s.Metrics()
	h := o.probes.routes()
	get := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.RemoteAddr = "127.0.0.1:50000"
		h.ServeHTTP(rec, req)
		return rec
	}
	if rec := get("/"); rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("/ while starting: %d", rec.Code)
	}
	if rec := get("/healthz"); rec.Code != http.StatusOK {
		t.Fatalf("/healthz: %d", rec.Code)
	}
	if err := o.serving(s); err != nil {
		t.Fatalf("serving: %v", err)
	}
	defer o.close()
	if rec := get("/"); rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), "/login") {
		t.Fatalf("/ once serving, auth on: %d %s", rec.Code, rec.Header().Get("Location"))
	}
	if rec := get("/api/v1/openapi.json"); rec.Code != http.StatusOK {
		t.Fatalf("/api/v1/openapi.json: %d", rec.Code)
	}
	if rec := get("/metrics"); rec.Code != http.StatusOK {
		t.Fatalf("/metrics beside the console: %d", rec.Code)
	}
}
