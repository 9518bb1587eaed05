package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/licensebus/licensebus/events"
)

// view is what every page's layout needs.
type view struct {
	Title string
	Nav   string // fleet | rollouts | audit | smartserver
	CSRF  string
	Flash []flash
	// Who names the identity; SignedIn: there is a sign-out (auth on).
	Who      string
	SignedIn bool
	// Fleet: the identity may see the fleet screens (not a SmartServer).
	Fleet bool
	// Home is the install code of a SmartServer identity.
	Home string
	// CommandID is a fresh id for the forms of the page: a form sent twice
	// (a double click, a reload) is one command.
	CommandID string
}

// pages are the parsed templates: one set per page, each the layout and
// the page's own templates (its content and the fragments live updates
// send).
type pages struct{ sets map[string]*template.Template }

var pageNames = []string{"fleet", "dialog", "accounts", "downloads", "transfer", "devices", "rollouts", "plan", "rollout", "audit", "trace", "verify", "login", "error"}

func parsePages() (*pages, error) {
	base, err := template.New("base.html").Funcs(funcs).ParseFS(files, "templates/base.html")
	if err != nil {
		return nil, fmt.Errorf("console templates: %w", err)
	}
	p := &pages{sets: map[string]*template.Template{}}
	for _, name := range pageNames {
		t, err := template.Must(base.Clone()).ParseFS(files, path.Join("templates", name+".html"))
		if err != nil {
			return nil, fmt.Errorf("console templates: %w", err)
		}
		p.sets[name] = t
	}
	return p, nil
}

// render writes a whole page.
func (p *pages) render(w http.ResponseWriter, status int, page string, data any) {
	var b bytes.Buffer
	if err := p.sets[page].ExecuteTemplate(&b, "layout", data); err != nil {
		http.Error(w, "console template "+page+": "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// fragment renders one named template of a page: what a live update sends.
func (p *pages) fragment(page, name string, data any) (string, error) {
	var b bytes.Buffer
	if err := p.sets[page].ExecuteTemplate(&b, name, data); err != nil {
		return "", err
	}
	return b.String(), nil
}

var funcs = template.FuncMap{
	"short": func(t string) string { return strings.TrimPrefix(t, "io.licensebus.") },
	"when": func(s string) string {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return s
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"date": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04Z")
	},
	"colourName": colourName,
	"pct": func(n, of int) int {
		if of <= 0 {
			return 0
		}
		return n * 100 / of
	},
	"add":  func(a, b int) int { return a + b },
	"join": strings.Join,
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"reasonClass": func(r events.Reason) string { return string(r.Class()) },
	"thousands":   thousands,
	"list":        func(s ...string) []string { return s },
}

// colourName says what a device colour means, for people and screen
// readers (the swatch alone says nothing to either).
func colourName(c string) string {
	switch c {
	case "purple":
		return "unlicensed"
	case "blue":
		return "licensed, not provisioned"
	case "green":
		return "provisioned"
	}
	return "below 3.3: no license needed"
}

func thousands(n int) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return s
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// errorPage is a refusal or failure, for people.
type errorPage struct {
	view
	Status  int
	Reason  string
	Message string
}
