package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// mustServe starts a licensebus server with an embedded NATS on a random
// port, storing under dir, and stops it when the test ends.
func mustServe(tb testing.TB, dir string) *Server {
	tb.Helper()
	return mustServeCfg(tb, ServeConfig{DataDir: dir})
}

// mustServeCfg is mustServe with more settings.
func mustServeCfg(tb testing.TB, cfg ServeConfig) *Server {
	tb.Helper()
	cfg.Listen, cfg.Logger = "127.0.0.1:-1", testLogger(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := StartServer(ctx, cfg)
	if err != nil {
		tb.Fatalf("StartServer: %v", err)
	}
	tb.Cleanup(s.Close)
	serverCreds.Store(s.URL(), s.credsFiles())
	return s
}

// serverCreds holds the creds files of each test server by its URL, so
// that cli, mustClient and mustJoin connect as the server's admin and
// service, as a user and a second serve would by default.
var serverCreds sync.Map

// credsOf is the creds files of the server at url; none for a server
// without auth.
func credsOf(url string) credsFiles {
	f, _ := serverCreds.Load(url)
	c, _ := f.(credsFiles)
	return c
}

func testLogger(tb testing.TB) zerolog.Logger {
	if testing.Verbose() {
		return zerolog.New(zerolog.NewTestWriter(tb)).Level(zerolog.InfoLevel)
	}
	return zerolog.Nop()
}

// result is one CLI invocation.
type result struct {
	out, err string
	code     int
}

// cli runs the licensebus CLI in-process against url, exactly as the binary
// would with NATS_URL set, and NATS_CREDS set to the server's admin.creds.
func cli(tb testing.TB, url string, args ...string) result {
	tb.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code := run(ctx, args, strings.NewReader(""), &out, &errb, cliEnv(url))
	return result{out.String(), errb.String(), code}
}

// cliEnv is the environment of a CLI run against the server at url.
func cliEnv(url string) func(string) string {
	return func(k string) string {
		switch k {
		case "NATS_URL":
			return url
		case "NATS_CREDS":
			return credsOf(url).admin
		}
		return ""
	}
}

// mustCLI runs the CLI and fails the test unless it exits 0; it returns
// trimmed stdout.
func mustCLI(tb testing.TB, url string, args ...string) string {
	tb.Helper()
	r := cli(tb, url, args...)
	if r.code != 0 {
		tb.Fatalf("licensebus %s: exit %d, stderr %q, stdout %q", strings.Join(args, " "), r.code, r.err, r.out)
	}
	return strings.TrimSpace(r.out)
}

// mustJSON runs the CLI with -o json and decodes stdout into v.
func mustJSON(tb testing.TB, url string, v any, args ...string) {
	tb.Helper()
	out := mustCLI(tb, url, append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		tb.Fatalf("licensebus %s -o json: %v in %q", strings.Join(args, " "), err, out)
	}
}

// licenseJSON is the CLI's JSON contract for a license.
type licenseJSON struct {
	LicenseID      string `json:"license_id"`
	Kind           string `json:"kind"`
	Devices        int    `json:"devices"`
	Expires        string `json:"expires"`
	Status         string `json:"status"`
	ActivationDate string `json:"activation_date"`
	TransferDate   string `json:"transfer_date"`
	InstallCode    string `json:"install_code"`
	CustomerID     string `json:"customer_id"`
}

func ids(ls []licenseJSON) map[string]licenseJSON {
	m := make(map[string]licenseJSON, len(ls))
	for _, l := range ls {
		m[l.LicenseID] = l
	}
	return m
}
