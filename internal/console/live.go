package console

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	auditlog "github.com/licensebus/licensebus/internal/audit"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/nats-io/nats.go"
)

// sse writes server-sent events to one client.
type sse struct {
	w http.ResponseWriter
	f http.Flusher
}

func startSSE(w http.ResponseWriter) (*sse, error) {
	f, ok := w.(http.Flusher)
	if !ok {
		return nil, fmt.Errorf("live updates need a flushing response writer")
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // a proxy in front must not hold the stream
	w.WriteHeader(http.StatusOK)
	s := &sse{w: w, f: f}
	return s, s.comment("live")
}

// send writes one event whose data is html, line by line.
func (s *sse) send(event, html string) error {
	var b strings.Builder
	b.WriteString("event: " + event + "\n")
	for _, line := range strings.Split(html, "\n") {
		b.WriteString("data: " + strings.TrimRight(line, "\r") + "\n")
	}
	b.WriteString("\n")
	if _, err := fmt.Fprint(s.w, b.String()); err != nil {
		return err
	}
	s.f.Flush()
	return nil
}

func (s *sse) comment(text string) error {
	if _, err := fmt.Fprintf(s.w, ": %s\n\n", text); err != nil {
		return err
	}
	s.f.Flush()
	return nil
}

// fragments are the named parts of a page a live update replaces.
type fragments map[string]string

// liveTimings: while events arrive, and settle after them (the read
// models apply an event a moment after it is stored), the page is drawn
// again every tick; only the fragments that changed are sent.
type liveTimings struct {
	tick, settle time.Duration
}

var (
	smartServerTimings = liveTimings{tick: 250 * time.Millisecond, settle: 1500 * time.Millisecond}
	fleetTimings       = liveTimings{tick: time.Second, settle: 2 * time.Second}
)

// follow keeps a page live: it listens on subjects as the session's
// identity (the NATS server gives it only what the identity may hear),
// draws the page's fragments after each burst of messages, and sends those
// that changed, until the browser leaves or the console closes.
func (c *Console) follow(w http.ResponseWriter, r *http.Request, x *session, subjects []string, lt liveTimings, draw func(r *http.Request) (fragments, error)) error {
	s, err := startSSE(w)
	if err != nil {
		return err
	}
	ctx := r.Context()
	kick := make(chan struct{}, 1)
	for _, subj := range subjects {
		sub, err := x.nc.Subscribe(subj, func(*nats.Msg) {
			select {
			case kick <- struct{}{}:
			default:
			}
		})
		if err != nil {
			return nil // the response has started: the client reconnects
		}
		defer func() { _ = sub.Unsubscribe() }()
	}
	last := fragments{}
	push := func() error {
		fs, err := draw(r)
		if err != nil {
			c.cfg.Logger.Debug().Err(err).Str("path", r.URL.Path).Msg("live update not drawn")
			return nil
		}
		for name, html := range fs {
			if last[name] == html {
				continue
			}
			if err := s.send(name, html); err != nil {
				return err
			}
			last[name] = html
		}
		return nil
	}
	// What changed between the page and the subscription is sent at once.
	dirtyUntil := time.Now().Add(lt.settle)
	tick := time.NewTicker(lt.tick)
	defer tick.Stop()
	ping := time.NewTicker(20 * time.Second)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.done:
			return nil
		case <-kick:
			dirtyUntil = time.Now().Add(lt.settle)
		case now := <-tick.C:
			if now.After(dirtyUntil) {
				continue
			}
			if err := push(); err != nil {
				return nil
			}
		case <-ping.C:
			if err := s.comment("ping"); err != nil {
				return nil
			}
		}
	}
}

// liveSmartServer keeps the pages of one SmartServer live, from its own
// events: what a SmartServer identity may hear.
func (c *Console) liveSmartServer(w http.ResponseWriter, r *http.Request, x *session) error {
	ic, err := installCode(r)
	if err != nil {
		return err
	}
	subjects := []string{"lb.evt.smartserver." + ic + ".>", "lb.evt.rejected.smartserver." + ic}
	var draw func(r *http.Request) (fragments, error)
	switch r.URL.Query().Get("view") {
	case "downloads":
		draw = func(r *http.Request) (fragments, error) {
			d, err := c.downloadsData(r, x)
			if err != nil {
				return nil, err
			}
			return c.draw("downloads", d, "downloads-rows", "summary")
		}
	case "devices":
		draw = func(r *http.Request) (fragments, error) {
			d, err := c.devicesData(r, x)
			if err != nil {
				return nil, err
			}
			return c.draw("devices", d, "device-rows", "device-counts", "auto-provision", "summary")
		}
	default:
		draw = func(r *http.Request) (fragments, error) {
			d, err := c.dialogData(r, x)
			if err != nil {
				return nil, err
			}
			return c.draw("dialog", d, "license-rows", "summary")
		}
	}
	return c.follow(w, r, x, subjects, smartServerTimings, draw)
}

// draw renders the named fragments of a page.
func (c *Console) draw(page string, data any, names ...string) (fragments, error) {
	fs := fragments{}
	for _, n := range names {
		html, err := c.pages.fragment(page, n, data)
		if err != nil {
			return nil, err
		}
		fs[n] = html
	}
	return fs, nil
}

func (c *Console) liveFleet(w http.ResponseWriter, r *http.Request, x *session) error {
	q, off := r.URL.Query().Get("q"), offsetParam(r)
	return c.follow(w, r, x, []string{"lb.evt.>"}, fleetTimings, func(r *http.Request) (fragments, error) {
		d, err := c.fleetData(r.Context(), x, q, off)
		if err != nil {
			return nil, err
		}
		return c.draw("fleet", d, "fleet-live")
	})
}

func (c *Console) liveRollouts(w http.ResponseWriter, r *http.Request, x *session) error {
	return c.follow(w, r, x, []string{"lb.evt.rollout.>"}, fleetTimings, func(r *http.Request) (fragments, error) {
		d := rolloutsPage{}
		if err := x.query(r.Context(), client.QueryRollouts, client.Params{}, &d.Rollouts); err != nil {
			return nil, err
		}
		return c.draw("rollouts", d, "rollout-list")
	})
}

func (c *Console) liveRollout(w http.ResponseWriter, r *http.Request, x *session) error {
	id := r.PathValue("id")
	return c.follow(w, r, x, []string{"lb.evt.rollout." + id + ".>"}, smartServerTimings, func(r *http.Request) (fragments, error) {
		d, err := c.rolloutData(r, x)
		if err != nil {
			return nil, err
		}
		d.view = c.view(r, x, "", "rollouts")
		return c.draw("rollout", d, "rollout-live")
	})
}

// liveAudit sends the entries stored after the page's last one that match
// its filters, as rows, while the page is open.
func (c *Console) liveAudit(w http.ResponseWriter, r *http.Request, x *session) error {
	q, err := parseAuditQuery(r.URL.Query(), c.cfg.Now())
	if err != nil {
		return err
	}
	// after is the page's last entry: its seq, and when it was stored
	// (where reading starts).
	var after uint64
	fmt.Sscan(r.URL.Query().Get("after"), &after)
	s, err := startSSE(w)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-c.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	since := q.Filter.Since
	if t, err := time.Parse(time.RFC3339Nano, r.URL.Query().Get("after_time")); err == nil && t.After(since) {
		since = t
	}
	_ = auditlog.Read(ctx, x.js, auditlog.ReadOptions{Since: since, Follow: true}, func(rec auditlog.Record) error {
		e := rec.Entry
		if e == nil || e.Seq <= after || !q.Filter.Match(e) {
			return nil
		}
		html, err := c.pages.fragment("audit", "audit-row", e)
		if err != nil {
			return err
		}
		return s.send("entry", html)
	})
	return nil
}
