package main

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// requireBrowser is the variable CI sets: without Chromium the browser
// tests fail instead of skipping.
const requireBrowser = "LICENSEBUS_REQUIRE_BROWSER"

// chromiumPath finds Debian's chromium (or another Chrome) on PATH, or
// in CHROMIUM_PATH.
func chromiumPath() string {
	if p := os.Getenv("CHROMIUM_PATH"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// browserTest is one headless Chromium for a test, and the console it
// drives.
type browserTest struct {
	t    *testing.T
	base string
	ctx  context.Context // the first tab
	root context.Context // the browser: new tabs come from it
	shot int
}

// mustBrowser starts headless Chromium with a fresh profile and the flags
// that keep it off the network (this machine's network refuses the
// browser's own background connections), at 1280×800. It skips the test
// when no Chromium is installed, unless LICENSEBUS_REQUIRE_BROWSER is set.
// On failure it saves a screenshot of every open tab in the test's
// artifact directory (go test -artifacts keeps them).
func mustBrowser(t *testing.T, s *Server) *browserTest {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		if os.Getenv(requireBrowser) != "" {
			t.Fatalf("no Chromium found on PATH (apt-get install chromium) and %s is set", requireBrowser)
		}
		t.Skipf("skipped: no Chromium found on PATH (apt-get install chromium); set %s=1 to make this a failure", requireBrowser)
	}
	c, err := newConsole(s, testLogger(t))
	if err != nil {
		t.Fatalf("newConsole: %v", err)
	}
	srv := httptest.NewServer(c)
	t.Cleanup(func() { c.Close(); srv.Close() })
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 800),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true), chromedp.Flag("mute-audio", true),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	root, cancelB := chromedp.NewContext(actx)
	// The whole walk is bounded: a hung browser fails the test.
	bounded, cancelT := context.WithTimeout(root, 3*time.Minute)
	b := &browserTest{t: t, base: srv.URL, ctx: bounded, root: root}
	if err := chromedp.Do(bounded); err != nil {
		cancelT()
		cancelB()
		cancelA()
		t.Fatalf("start Chromium %s: %v", path, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			b.screenshot(root, "failure")
		}
		cancelT()
		cancelB()
		cancelA()
	})
	if admin := s.credsFiles().admin; admin != "" {
		b.signIn(bounded, admin)
	}
	return b
}

// signIn signs the browser in by uploading a creds file once, as a person
// would: the session lasts until sign-out.
func (b *browserTest) signIn(ctx context.Context, creds string) {
	b.t.Helper()
	b.do(ctx, "sign in with "+creds,
		chromedp.Navigate(b.base+"/login"), visible(`#creds_file`),
		chromedp.SetUploadFiles(chromedp.CSS(`#creds_file`), []string{creds}),
		click(`form[action="/login"] button[type=submit]`),
		until(`location.pathname !== "/login" && document.querySelector(".who") !== null`, 20*time.Second))
}

// tab opens another tab of the same browser (same cookies).
func (b *browserTest) tab() context.Context {
	ctx, cancel := chromedp.NewContext(b.root)
	b.t.Cleanup(func() {
		if b.t.Failed() {
			b.screenshot(ctx, "failure-tab")
		}
		cancel()
	})
	return ctx
}

// do runs steps in tab ctx, failing the test with what was being done.
func (b *browserTest) do(ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates JavaScript in tab ctx and decodes its value.
func eval[T any](b *browserTest, ctx context.Context, what, js string) T {
	b.t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	return v
}

// text is the text of the first element sel matches, once visible.
func (b *browserTest) text(ctx context.Context, sel string) string {
	b.t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		b.t.Fatalf("read %s: %v", sel, err)
	}
	return v
}

// screenshot saves the tab as <artifact dir>/<n>-<name>.png.
func (b *browserTest) screenshot(ctx context.Context, name string) string {
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	b.shot++
	p := filepath.Join(b.t.ArtifactDir(), fmt.Sprintf("%02d-%s.png", b.shot, regexp.MustCompile(`[^a-z0-9-]+`).ReplaceAllString(strings.ToLower(name), "-")))
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	b.t.Logf("screenshot %s", p)
	return p
}

// until polls a JavaScript condition in the tab until it is true, across
// the navigations a form's submission makes (a poll in a page that goes
// away fails, and starts again in the next one).
func until(js string, d time.Duration) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		deadline := time.Now().Add(d)
		var last error
		for time.Now().Before(deadline) && ctx.Err() == nil {
			step := min(2*time.Second, time.Until(deadline))
			_, err := chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(step), chromedp.WithPollingInterval(100*time.Millisecond))(ctx, t)
			if err == nil {
				return chromedp.Void{}, nil
			}
			last = err
			time.Sleep(100 * time.Millisecond)
		}
		return chromedp.Void{}, fmt.Errorf("waiting for %s: %w", js, last)
	}
}

// click clicks the first element sel (CSS) matches, once visible.
func click(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible)
}

// visible waits until sel (CSS) matches a visible element.
func visible(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.WaitVisible(chromedp.CSS(sel))
}

// typeIn types v into the field sel (CSS).
func typeIn(sel, v string) chromedp.Action[chromedp.Void] {
	return chromedp.SendKeys(chromedp.CSS(sel), v)
}
