package bench

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"
)

// consolePages is how many console pages the bench draws after the
// fleet: enough for a p99.
const consolePages = 400

// console measures the server time of the web console's pages of one
// SmartServer (the Manage Licenses dialog and the Devices widget, taken in
// turn) with the whole fleet registered, its devices added and its
// licenses in the cloud: what issue 20 asks to stay under 50 ms at 10,000
// SmartServers.
func (b *run) console(targets []string) error {
	h := b.p.Console
	if h == nil || len(targets) == 0 {
		return nil
	}
	b.progress("console: %d SmartServer pages with %d SmartServers loaded", consolePages, len(targets))
	took := make([]time.Duration, 0, consolePages)
	for i := range consolePages {
		path := "/smartservers/" + targets[(i*7919)%len(targets)]
		if i%2 == 1 {
			path += "/devices"
		}
		req := httptest.NewRequest("GET", path, nil)
		req.RemoteAddr = "127.0.0.1:1" // the open console answers loopback only
		rec := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(rec, req)
		took = append(took, time.Since(start))
		if rec.Code != http.StatusOK {
			return fmt.Errorf("console %s: %d %.200s", path, rec.Code, rec.Body.String())
		}
	}
	b.r.ConsoleP99MS = ms(percentile(took, 0.99))
	b.progress("console: p99 %.2f ms, p50 %.2f ms", b.r.ConsoleP99MS, ms(percentile(took, 0.5)))
	return nil
}
