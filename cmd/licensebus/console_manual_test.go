package main

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestConsoleBrowserManual walks the manual's three sections in a real
// browser, as a new user would from the printed URL: load the demo fleet;
// Manage Customer Accounts (a bad UUID refused in the page and by the
// server, Discard reverting, Save); Download Licenses from Cloud, two
// licenses selected and ACTIVATE, both in the dialog; the devices widget
// open in a second tab turning purple live when the licenses are
// transferred with the confirmation dialog, blue when a new license is
// activated, green when provisioned; then the causal trace of the
// activation in the audit screen, and the dialog on a phone.
func TestConsoleBrowserManual(t *testing.T) {
	s := mustServe(t, t.TempDir())
	b := mustBrowser(t, s)
	ctx := b.ctx
	const wait = 30 * time.Second

	// The fleet is empty: the getting-started panel loads the demo fleet.
	b.do(ctx, "open the console", chromedp.Navigate(b.base+"/"), visible(`.getting-started button`))
	b.screenshot(ctx, "fleet-empty")
	b.do(ctx, "load the demo fleet",
		click(`.getting-started button`),
		visible(`#fleet-table a[href="/smartservers/IC-0001"]`))
	cid := b.text(ctx, `code.cid`)
	b.screenshot(ctx, "fleet")
	b.do(ctx, "search the fleet as one types, without a reload",
		chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`),
		typeIn(`#q`, "no-such-server"),
		until(`document.querySelector(".pager-info").textContent.includes("No SmartServer matches") && window.notReloaded && location.search.includes("q=no-such-server")`, wait),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("q").value = ""`),
		typeIn(`#q`, "ic-00"),
		until(`document.querySelector('#fleet-table a[href="/smartservers/IC-0001"]') !== null && window.notReloaded`, wait))

	// Setting up the Customer Account.
	b.do(ctx, "open the Manage Licenses dialog", click(`#fleet-table a[href="/smartservers/IC-0001"]`),
		visible(`#manage-accounts`))
	b.do(ctx, "open Manage Customer Accounts", click(`#manage-accounts`), visible(`#customer-id`))
	b.do(ctx, "Save and Discard are hidden until the field is edited",
		until(`document.getElementById("save").hidden && document.getElementById("discard").hidden`, 5*time.Second))
	b.do(ctx, "a bad UUID is refused in the page",
		typeIn(`#customer-id`, "not-a-uuid"),
		until(`!document.getElementById("save").hidden`, wait),
		click(`#save`),
		until(`document.getElementById("cid-error").textContent.includes("bad_uuid")`, wait))
	b.screenshot(ctx, "accounts-bad-uuid")
	b.do(ctx, "Discard reverts the field",
		click(`#discard`),
		until(`document.getElementById("customer-id").value === "" && document.getElementById("save").hidden`, wait))
	// The server refuses what the page cannot know: a UUID of no customer.
	const stranger = "2133c667-af41-4518-94df-a2bb3b775330"
	b.do(ctx, "a UUID of no customer is refused by the server, with the reason beside the field",
		typeIn(`#customer-id`, stranger),
		click(`#save`),
		until(`document.getElementById("cid-error").textContent.includes("unknown_customer")`, wait),
		until(`document.getElementById("customer-id").value === "`+stranger+`"`, wait))
	b.do(ctx, "Save the Customer ID",
		chromedp.Evaluate[chromedp.Void](`document.getElementById("customer-id").value = ""`),
		typeIn(`#customer-id`, cid),
		click(`#save`),
		until(`document.getElementById("customer-id").dataset.saved === "`+cid+`"`, wait),
		until(`document.querySelector(".flash.ok") !== null`, wait))
	b.screenshot(ctx, "accounts-saved")

	// Downloading and activating licenses from the cloud.
	b.do(ctx, "BACK, Download Licenses from the Cloud",
		click(`#back`), visible(`#download`),
		click(`#download`),
		until(`document.querySelectorAll("#downloads tbody input[type=checkbox]").length === 3`, wait))
	lids := eval[[]string](b, ctx, "find a capacity and the maintenance license", `(() => { const rows = [...document.querySelectorAll("#downloads tbody tr")];
			const cap = rows.find(r => r.textContent.includes("Device capacity"));
			const mnt = rows.find(r => r.textContent.includes("Maintenance"));
			return [cap.dataset.license, mnt.dataset.license]; })()`)
	for _, lid := range lids {
		b.do(ctx, "tick "+lid, click(`#sel-`+lid))
	}
	b.screenshot(ctx, "downloads-selected")
	busy := eval[string](b, ctx, "ACTIVATE shows its progress", `document.getElementById("activate").click(); document.getElementById("activate-form").getAttribute("aria-busy") + ":" + !document.querySelector("#activate-form .progress").hidden`)
	if busy != "true:true" {
		t.Fatalf("after ACTIVATE: aria-busy:progress shown = %q, want true:true", busy)
	}
	b.do(ctx, "the activated licenses leave the download list",
		until(`document.querySelectorAll("#downloads tbody input[type=checkbox]").length === 1`, wait),
		until(`document.querySelector(".flash.ok") && document.querySelector(".flash.ok").textContent.includes("2 of 2")`, wait))
	b.do(ctx, "BACK: both are in the Manage Licenses dialog",
		click(`#back`),
		until(`document.querySelectorAll("#licenses tbody tr[data-license]").length === 2`, wait))
	active := b.text(ctx, `#licenses tbody`)
	for _, lid := range lids {
		if !strings.Contains(active, lid) {
			t.Fatalf("dialog does not list %s: %q", lid, active)
		}
	}
	b.screenshot(ctx, "dialog-two-active")

	// The Devices widget in a second tab, live: provision the blue ones.
	dev := b.tab()
	b.do(dev, "open the Devices widget",
		chromedp.EmulateViewport(1280, 800), chromedp.Navigate(b.base+"/smartservers/IC-0001/devices"),
		until(`document.querySelectorAll("#devices tr[data-colour=blue]").length === 3`, wait))
	b.do(dev, "Provision all blue devices",
		click(`#provision-all`),
		until(`document.querySelectorAll("#devices tr[data-colour=green]").length === 3`, wait))
	b.screenshot(dev, "devices-green")

	// Transferring licenses to the cloud, with the confirmation dialog.
	b.do(ctx, "Transfer to Cloud asks first",
		click(`#transfer`),
		until(`document.getElementById("transfer-dialog").open`, wait))
	b.screenshot(ctx, "transfer-confirm")
	b.do(ctx, "TRANSFER LICENSES",
		click(`#transfer-confirm`),
		until(`document.querySelectorAll("#licenses tbody tr[data-license]").length === 0`, wait))
	b.do(dev, "the devices turn purple live, without a reload",
		chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`),
		until(`document.querySelectorAll("#devices tr[data-colour=purple]").length === 3 && window.notReloaded`, wait))
	b.screenshot(dev, "devices-purple")

	// A new license: the devices turn blue (not green), then provisioned.
	b.do(ctx, "download again and activate the other license",
		chromedp.Navigate(b.base+"/smartservers/IC-0001/downloads"),
		visible(`#downloads`),
		click(`#download`),
		until(`document.querySelector(".flash.ok") !== null && document.querySelectorAll("#downloads tbody input[type=checkbox]").length === 3`, wait))
	third := eval[string](b, ctx, "pick the license not activated before",
		`[...document.querySelectorAll("#downloads tbody tr")].map(r => r.dataset.license).find(l => !`+jsList(lids)+`.includes(l))`)
	b.do(ctx, "ACTIVATE it",
		click(`#sel-`+third), click(`#activate`),
		until(`document.querySelectorAll("#downloads tbody input[type=checkbox]").length === 2`, wait))
	b.do(dev, "the devices turn blue live",
		until(`document.querySelectorAll("#devices tr[data-colour=blue]").length === 3 && window.notReloaded`, wait))
	b.screenshot(dev, "devices-blue")
	b.do(dev, "provision → green",
		click(`#provision-all`),
		until(`document.querySelectorAll("#devices tr[data-colour=green]").length === 3`, wait))

	// The audit trail: the causal trace of the first activation.
	b.do(ctx, "filter the trail by license and open the activation's trace",
		chromedp.Navigate(b.base+"/audit?kind=command&type=activate_license&license="+lids[0]),
		visible(`#audit tbody tr a.trace`))
	b.screenshot(ctx, "audit")
	b.do(ctx, "the trace is a tree from the command to license_activated",
		click(`#audit tbody tr a.trace`),
		until(`document.querySelector('#trace > li[data-type="smartserver.activate_license"] li[data-type="smartserver.license_activated"]') !== null`, wait))
	b.screenshot(ctx, "trace")
	b.do(ctx, "verify the live trail", chromedp.Navigate(b.base+"/audit/verify"),
		until(`document.getElementById("verify-result").dataset.intact === "true"`, wait))

	// On a phone: nothing wider than the screen but the tables' own scroll.
	b.do(ctx, "the dialog at 390×844",
		chromedp.EmulateViewport(390, 844), chromedp.Navigate(b.base+"/smartservers/IC-0001"),
		visible(`#licenses`))
	width := eval[int](b, ctx, "page width", `document.documentElement.scrollWidth`)
	if width > 390 {
		t.Fatalf("page is %d px wide on a 390 px phone", width)
	}
	b.screenshot(ctx, "dialog-phone")
}

// jsList is a JavaScript array literal of strings without quotes in them.
func jsList(ss []string) string {
	return `["` + strings.Join(ss, `","`) + `"]`
}
