package main

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/licensebus/licensebus/events/audit"
	auditlog "github.com/licensebus/licensebus/internal/audit"
	"github.com/spf13/cobra"
)

func (a *app) auditTailCmd() *cobra.Command {
	var f audit.Filter
	var since string
	var kinds []string
	var follow bool
	var lines int
	cmd := &cobra.Command{
		Use:   "tail [--follow] [--license LID] [--smartserver IC] [--customer CID] [--since T] [--type TYPE ...] [--kind KIND ...]",
		Short: "Show the last entries of the trail, and with --follow new ones until Ctrl-C",
		Long: `Show the last entries of the audit trail that match the filters (all of them
must match), one line each; -o json prints each entry as stored, one JSON object
per line (JSON Lines), so the output can be followed and verified.

--type matches the full CloudEvent type or its tail (license_activated,
smartserver.license_activated); --kind is command, event or rejection; --since
compares with the time the server stored the source message.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if f.Since, err = parseWhen(since, time.Now()); err != nil {
				return err
			}
			if lines < 0 {
				return usageError{fmt.Errorf("-n must be 0 (all) or more, not %d", lines)}
			}
			for _, k := range kinds {
				if !audit.Kind(k).Known() {
					return usageError{fmt.Errorf("--kind must be command, event or rejection, not %q", k)}
				}
				f.Kinds = append(f.Kinds, audit.Kind(k))
			}
			js, ctx, done, err := a.auditRead(cmd)
			if err != nil {
				return err
			}
			defer done()
			w := bufio.NewWriter(a.stdout)
			defer w.Flush()
			p := &entryPrinter{w: w, json: a.output == "json"}
			var held []auditlog.Record // the last -n matches, until caught up
			live := lines == 0
			caughtUp := func() {
				for _, r := range held {
					p.print(r)
				}
				held, live = nil, true
				if !p.any && !follow && !p.json {
					fmt.Fprintln(w, "No entries.")
				}
				_ = w.Flush()
			}
			err = auditlog.Read(ctx, js, auditlog.ReadOptions{Since: f.Since, Follow: follow, CaughtUp: caughtUp}, func(r auditlog.Record) error {
				if r.Entry == nil {
					fmt.Fprintf(a.stderr, "warning: audit stream seq %d is not an audit entry; run `licensebus audit verify`\n", r.StreamSeq)
					return nil
				}
				if !f.Match(r.Entry) {
					return nil
				}
				if !live {
					if held = append(held, r); len(held) > lines {
						held = held[1:]
					}
					return nil
				}
				p.print(r)
				if follow {
					return w.Flush()
				}
				return nil
			})
			// Ctrl-C is how --follow is meant to end: no error then.
			return a.stopped(cmd, ctx, err)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&follow, "follow", "f", false, "keep printing new entries until interrupted")
	fl.IntVarP(&lines, "lines", "n", 20, "how many of the last matching entries to show first; 0 shows all")
	fl.StringVar(&f.LicenseID, "license", "", "only entries naming this license id")
	fl.StringVar(&f.InstallCode, "smartserver", "", "only entries naming this install code")
	fl.StringVar(&f.CustomerID, "customer", "", "only entries naming this customer id")
	fl.StringVar(&since, "since", "", "only entries stored at or after this time (RFC 3339, date, or duration ago)")
	fl.StringArrayVar(&f.Types, "type", nil, "only entries of this CloudEvent type (repeatable)")
	fl.StringArrayVar(&kinds, "kind", nil, "only entries of this kind: command, event, rejection (repeatable)")
	return cmd
}

// entryPrinter prints entries one line each, or as stored with -o json.
type entryPrinter struct {
	w    io.Writer
	json bool
	any  bool
}

func (p *entryPrinter) print(r auditlog.Record) {
	if p.json {
		writeJSONLine(p.w, r.Raw)
		p.any = true
		return
	}
	if !p.any {
		fmt.Fprintf(p.w, "%-6s  %-24s  %-9s  %-40s  %-24s  %s\n", "SEQ", "STREAM TIME (UTC)", "KIND", "TYPE", "ACTOR", "WHAT / WHY")
		p.any = true
	}
	e := r.Entry
	fmt.Fprintf(p.w, "%-6d  %-24s  %-9s  %-40s  %-24s  %s\n", e.Seq, shortTime(e.StreamTime), e.Kind, orDash(shortType(e.Type)), orDash(e.Actor), what(e))
}

// writeJSONLine writes a stored message as one line (auditlog.WriteJSONLine).
func writeJSONLine(w io.Writer, raw []byte) { auditlog.WriteJSONLine(w, raw) }

func shortType(t string) string { return strings.TrimPrefix(t, "io.licensebus.") }

func shortTime(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// what is the ids, the correlation and the reason of an entry, as text.
func what(e *audit.Entry) string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	add("ic", e.InstallCode)
	add("license", e.LicenseID)
	if len(e.LicenseIDs) > 0 {
		add("licenses", strings.Join(e.LicenseIDs, ","))
	}
	add("customer", e.CustomerID)
	add("device", e.DeviceID)
	if len(e.DeviceIDs) > 0 {
		add("devices", strings.Join(e.DeviceIDs, ","))
	}
	add("id", e.ID)
	if e.CorrelationID != e.ID {
		add("corr", e.CorrelationID)
	}
	add("cause", e.CausationID)
	if e.Reason != "" {
		parts = append(parts, "| "+e.Reason+": "+e.Message)
	}
	if e.Invalid != "" {
		parts = append(parts, "| invalid: "+e.Invalid)
	}
	if e.RejectionID != "" {
		add("rejection", e.RejectionID)
	}
	return strings.Join(parts, " ")
}
