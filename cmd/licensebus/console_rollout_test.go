package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/licensebus/licensebus/events"
)

// TestConsoleBrowserRollout starts a rollout from an uploaded CSV in the
// browser: the plan (a dry run) first, then the rollout page, whose
// progress per wave and per target moves live (no reload) until all five
// SmartServers succeeded.
func TestConsoleBrowserRollout(t *testing.T) {
	s := mustServe(t, t.TempDir())
	c, _ := mustClient(t, s.URL())
	customer := mustCustomer(t, c, "P2026-0101")
	var csv strings.Builder
	csv.WriteString("install_code,site\n")
	for i := range 5 {
		ic := fmt.Sprintf("RO-%02d", i)
		mustDo(t, c, events.RegisterType, &events.Register{InstallCode: ic, Name: "SC-" + ic, Version: "3.4"})
		mustLicense(t, c, customer, events.Capacity)
		fmt.Fprintf(&csv, "%s,building %d\n", ic, i)
	}
	targets := filepath.Join(t.TempDir(), "targets.csv")
	if err := os.WriteFile(targets, []byte(csv.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	b := mustBrowser(t, s)
	ctx := b.ctx
	const wait = 60 * time.Second

	b.do(ctx, "fill the new-rollout form",
		chromedp.Navigate(b.base+"/rollouts"), visible(`#rollout-form`),
		chromedp.SetUploadFiles(chromedp.CSS(`#targets`), []string{targets}),
		chromedp.SetValue(chromedp.CSS(`#waves`), "40,100"),
		// One target a second: slow enough to watch.
		chromedp.SetValue(chromedp.CSS(`#rate`), "60"))
	b.screenshot(ctx, "rollouts-form")
	b.do(ctx, "the plan comes first",
		click(`#plan`),
		until(`document.getElementById("plan-summary") && document.getElementById("plan-summary").textContent.includes("5 ready")`, wait))
	b.screenshot(ctx, "rollout-plan")
	b.do(ctx, "start it, and see it move",
		click(`#start`),
		until(`document.getElementById("rollout-status") !== null`, wait),
		chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`))
	first := eval[int](b, ctx, "succeeded at first", `Number(document.getElementById("succeeded").textContent)`)
	if first >= 5 {
		t.Fatalf("the rollout had ended before its page showed (succeeded %d): nothing was live", first)
	}
	b.do(ctx, "progress arrives live until every target succeeded",
		until(`document.getElementById("rollout-status").dataset.status === "completed" && Number(document.getElementById("succeeded").textContent) === 5 && window.notReloaded`, wait),
		until(`document.querySelectorAll('#targets tr[data-status="succeeded"]').length === 5`, wait))
	b.screenshot(ctx, "rollout-done")
	if v := eval[string](b, ctx, "overall progress", `document.getElementById("rollout-progress").value + "/" + document.getElementById("rollout-progress").max`); v != "5/5" {
		t.Fatalf("progress %s, want 5/5", v)
	}
}
