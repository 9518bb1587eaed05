package main

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jedib0t/go-pretty/v6/table"
	"github.com/licensebus/licensebus/internal/audit"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
)

func (a *app) auditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "The tamper-evident audit trail: every command, event and rejection, hash-chained",
		Long: `The audit trail has one entry per message of the command stream (valid or not)
and of the event stream (events and rejections), in the order the server stored
them, each chained to the one before by a SHA-256 hash. It is read straight from
the LICENSEBUS_AUDIT stream; docs/consumers.md describes the entry format.`,
	}
	cmd.AddCommand(a.auditTailCmd(), a.auditExportCmd(), a.auditVerifyCmd(), a.auditTraceCmd())
	return cmd
}

// auditJS connects straight to JetStream: the trail is read from its own
// stream with ordered consumers, so what verify checks is what is stored.
func (a *app) auditJS() (jetstream.JetStream, func(), error) { return a.directJS("licensebus audit") }

// directJS connects straight to JetStream, for commands that read what is
// stored rather than ask the server.
func (a *app) directJS(name string) (jetstream.JetStream, func(), error) {
	nc, err := a.dial(name)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return js, nc.Close, nil
}

// auditFilter selects entries for tail.
type auditFilter struct {
	license, smartserver, customer string
	types, kinds                   []string
	since                          time.Time
}

func (f *auditFilter) match(e *audit.Entry) bool {
	if f.license != "" && e.LicenseID != f.license && !slices.Contains(e.LicenseIDs, f.license) {
		return false
	}
	if f.smartserver != "" && e.InstallCode != f.smartserver {
		return false
	}
	if f.customer != "" && e.CustomerID != f.customer {
		return false
	}
	if len(f.kinds) > 0 && !slices.Contains(f.kinds, string(e.Kind)) {
		return false
	}
	if len(f.types) > 0 && !slices.ContainsFunc(f.types, func(t string) bool { return e.Type == t || strings.HasSuffix(e.Type, "."+t) }) {
		return false
	}
	if !f.since.IsZero() {
		if t, err := time.Parse(time.RFC3339Nano, e.StreamTime); err == nil && t.Before(f.since) {
			return false
		}
	}
	return true
}

// parseWhen reads a point in time: RFC 3339, a date (UTC midnight), a date
// and minute, or a duration meaning that long ago ("15m", "24h").
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04", time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, usageError{fmt.Errorf("%q is not a time: use RFC 3339 (2026-01-02T15:04:05Z), a date (2026-01-02) or a duration ago (15m)", s)}
}

func (a *app) auditTailCmd() *cobra.Command {
	var f auditFilter
	var since string
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
			if f.since, err = parseWhen(since, time.Now()); err != nil {
				return err
			}
			if lines < 0 {
				return usageError{fmt.Errorf("-n must be 0 (all) or more, not %d", lines)}
			}
			for _, k := range f.kinds {
				if k != string(audit.KindCommand) && k != string(audit.KindEvent) && k != string(audit.KindRejection) {
					return usageError{fmt.Errorf("--kind must be command, event or rejection, not %q", k)}
				}
			}
			js, closeFn, err := a.auditJS()
			if err != nil {
				return err
			}
			defer closeFn()
			w := bufio.NewWriter(a.stdout)
			defer w.Flush()
			p := &entryPrinter{w: w, json: a.output == "json"}
			var held []audit.Record // the last -n matches, until caught up
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
			return audit.Read(cmd.Context(), js, audit.ReadOptions{Since: f.since, Follow: follow, CaughtUp: caughtUp}, func(r audit.Record) error {
				if r.Entry == nil {
					fmt.Fprintf(a.stderr, "warning: audit stream seq %d is not an audit entry; run `licensebus audit verify`\n", r.StreamSeq)
					return nil
				}
				if !f.match(r.Entry) {
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
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&follow, "follow", "f", false, "keep printing new entries until interrupted")
	fl.IntVarP(&lines, "lines", "n", 20, "how many of the last matching entries to show first; 0 shows all")
	fl.StringVar(&f.license, "license", "", "only entries naming this license id")
	fl.StringVar(&f.smartserver, "smartserver", "", "only entries naming this install code")
	fl.StringVar(&f.customer, "customer", "", "only entries naming this customer id")
	fl.StringVar(&since, "since", "", "only entries stored at or after this time (RFC 3339, date, or duration ago)")
	fl.StringArrayVar(&f.types, "type", nil, "only entries of this CloudEvent type (repeatable)")
	fl.StringArrayVar(&f.kinds, "kind", nil, "only entries of this kind: command, event, rejection (repeatable)")
	return cmd
}

// entryPrinter prints entries one line each, or as stored with -o json.
type entryPrinter struct {
	w    io.Writer
	json bool
	any  bool
}

func (p *entryPrinter) print(r audit.Record) {
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

// writeJSONLine writes a stored message as one line; one that is not
// single-line JSON (only a forgery can be) is written as a JSON string so
// the line framing holds and verify reports it.
func writeJSONLine(w io.Writer, raw []byte) {
	if bytes.ContainsAny(raw, "\r\n") {
		raw, _ = json.Marshal(string(raw))
	}
	_, _ = w.Write(raw)
	_, _ = io.WriteString(w, "\n")
}

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

// csvHeader is the fixed header of CSV exports. Never reorder it; add
// columns at the end.
var csvHeader = []string{
	"seq", "kind", "stream", "stream_seq", "stream_time", "subject", "mode", "id", "type", "source", "time", "actor",
	"correlation_id", "causation_id", "license_id", "license_ids", "install_code", "customer_id", "device_id", "device_ids",
	"reason", "message", "command_id", "command_type", "invalid", "rejection_id", "data", "data_base64", "data_truncated",
	"message_sha256", "cursor_commands", "cursor_events", "prev_hash", "hash",
}

func csvRow(r audit.Record) []string {
	e := r.Entry
	if e == nil {
		row := make([]string, len(csvHeader))
		row[slices.Index(csvHeader, "kind")], row[slices.Index(csvHeader, "data")] = "not_an_entry", string(r.Raw)
		return row
	}
	u := func(n uint64) string { return strconv.FormatUint(n, 10) }
	return []string{
		u(e.Seq), string(e.Kind), e.Stream, u(e.StreamSeq), e.StreamTime, e.Subject, e.Mode, e.ID, e.Type, e.Source, e.Time, e.Actor,
		e.CorrelationID, e.CausationID, e.LicenseID, strings.Join(e.LicenseIDs, " "), e.InstallCode, e.CustomerID, e.DeviceID, strings.Join(e.DeviceIDs, " "),
		e.Reason, e.Message, e.CommandID, e.CommandType, e.Invalid, e.RejectionID, string(e.Data), e.DataBase64, strconv.FormatBool(e.DataTruncated),
		e.MessageSHA256, u(e.Cursor.Commands), u(e.Cursor.Events), e.PrevHash, e.Hash,
	}
}

func (a *app) auditExportCmd() *cobra.Command {
	var sinceS, untilS, format string
	cmd := &cobra.Command{
		Use:   "export [--since T] [--until T] [--format jsonl|csv]",
		Short: "Write the trail, or the part stored from --since until before --until, to stdout",
		Long: `Write the audit trail to stdout as it is stored (jsonl: one entry per line, the
input of audit verify) or as CSV with a fixed header. The export is streamed, so
it needs no more memory for millions of entries than for ten, and it is a
contiguous run of the chain: from the first entry whose source message was
stored at or after --since, to the last one before the first stored at or after
--until. The same range gives the same bytes every time.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := time.Now()
			since, err := parseWhen(sinceS, now)
			if err != nil {
				return err
			}
			until, err := parseWhen(untilS, now)
			if err != nil {
				return err
			}
			if format != "jsonl" && format != "csv" {
				return usageError{fmt.Errorf("--format must be jsonl or csv, not %q", format)}
			}
			js, closeFn, err := a.auditJS()
			if err != nil {
				return err
			}
			defer closeFn()
			w := bufio.NewWriterSize(a.stdout, 64<<10)
			var cw *csv.Writer
			if format == "csv" {
				cw = csv.NewWriter(w)
				if err := cw.Write(csvHeader); err != nil {
					return err
				}
			}
			started := false
			err = audit.Read(cmd.Context(), js, audit.ReadOptions{Since: since}, func(r audit.Record) error {
				if e := r.Entry; e != nil {
					t, terr := time.Parse(time.RFC3339Nano, e.StreamTime)
					if terr == nil && !started && t.Before(since) {
						return nil
					}
					if terr == nil && !until.IsZero() && !t.Before(until) {
						return audit.ErrStop
					}
					started = true
				} else if !started {
					return nil
				}
				if cw != nil {
					return cw.Write(csvRow(r))
				}
				writeJSONLine(w, r.Raw)
				return nil
			})
			if err != nil {
				return err
			}
			if cw != nil {
				cw.Flush()
				if err := cw.Error(); err != nil {
					return err
				}
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVar(&sinceS, "since", "", "first source-message time included (RFC 3339, date, or duration ago)")
	cmd.Flags().StringVar(&untilS, "until", "", "source-message time to stop before")
	cmd.Flags().StringVar(&format, "format", "jsonl", "jsonl or csv")
	return cmd
}

// verifyResult is the JSON of audit verify.
type verifyResult struct {
	audit.Report
	Input string `json:"input"`
	// SourcesChecked: each entry was compared with the source message it
	// records (live verification only).
	SourcesChecked bool `json:"sources_checked"`
	// Unaudited is how many source messages the auditor has not recorded
	// yet (live verification only): lag, not tampering.
	Unaudited *audit.Cursor `json:"unaudited,omitempty"`
}

func (a *app) auditVerifyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "verify [FILE]",
		Short: "Check a JSONL export (or, with no file, the live trail) for edited, dropped, reordered or inserted entries",
		Long: `Check the hash chain of a JSONL export (FILE, or - for stdin) or of the live
audit stream, and name each entry that was edited, dropped, reordered or
inserted. The live check also compares every entry with the source message it
records. Exits 1 when anything is wrong, 0 with a summary when the trail is
intact. A file proves itself only from its first entry to its last: compare its
head hash with the live trail's to know nothing was cut off the end.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if err := cobra.MaximumNArgs(1)(cmd, args); err != nil {
				return usageError{fmt.Errorf("%w; usage: %s", err, cmd.UseLine())}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var v audit.Verifier
			res := verifyResult{SourcesChecked: len(args) == 0}
			if len(args) == 1 {
				res.Input = args[0]
				if err := a.verifyFile(args[0], &v); err != nil {
					return err
				}
			} else {
				res.Input = audit.Stream
				js, closeFn, err := a.auditJS()
				if err != nil {
					return err
				}
				defer closeFn()
				var checker *audit.SourceChecker
				defer func() {
					if checker != nil {
						checker.Close()
					}
				}()
				err = audit.Read(cmd.Context(), js, audit.ReadOptions{}, func(r audit.Record) error {
					if checker == nil { // after Read's snapshot: every entry read records a message below the checker's
						var err error
						if checker, err = audit.NewSourceChecker(cmd.Context(), js); err != nil {
							return err
						}
						v.Check = checker.Check
					}
					v.Add(r.Raw, fmt.Sprintf("audit stream seq %d", r.StreamSeq))
					return nil
				})
				if err != nil {
					return err
				}
				if checker == nil {
					if checker, err = audit.NewSourceChecker(cmd.Context(), js); err != nil {
						return err
					}
				}
				rep := v.Finish()
				un := checker.Unaudited()
				res.Report, res.Unaudited = rep, &un
				return a.verifyOutput(res)
			}
			res.Report = v.Finish()
			return a.verifyOutput(res)
		},
	}
}

// verifyFile feeds a JSONL export to v line by line.
func (a *app) verifyFile(name string, v *audit.Verifier) error {
	var in io.Reader = a.stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return usageError{err}
		}
		defer f.Close()
		in = f
	}
	r := bufio.NewReaderSize(in, 64<<10)
	for n := 1; ; n++ {
		line, err := r.ReadBytes('\n')
		line = bytes.TrimRight(line, "\r\n")
		if n == 1 && bytes.HasPrefix(line, []byte("seq,")) {
			return usageError{fmt.Errorf("%s is a CSV export; verify reads JSONL exports (audit export --format jsonl)", name)}
		}
		if len(bytes.TrimSpace(line)) > 0 {
			v.Add(line, fmt.Sprintf("line %d", n))
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
	}
}

func (a *app) verifyOutput(res verifyResult) error {
	rep := res.Report
	if a.output == "json" {
		if err := a.emit(res, nil, nil); err != nil {
			return err
		}
	} else {
		if !rep.Intact {
			rows := make([]table.Row, len(rep.Problems))
			for i, p := range rep.Problems {
				seq := ""
				if p.Seq > 0 {
					seq = strconv.FormatUint(p.Seq, 10)
				}
				rows[i] = table.Row{strings.ToUpper(string(p.Kind)), seq, p.Where, p.Detail}
			}
			if err := a.emit(nil, table.Row{"Tampering", "Seq", "Where", "Detail"}, rows); err != nil {
				return err
			}
			if rep.ProblemCount > len(rep.Problems) {
				fmt.Fprintf(a.stdout, "… and %d more\n", rep.ProblemCount-len(rep.Problems))
			}
		}
		fmt.Fprintln(a.stdout, verifySummary(res))
	}
	if !rep.Intact {
		first := rep.Problems[0]
		return &client.APIError{Code: "tampered", Message: fmt.Sprintf("audit trail tampered: %d problem(s), first: %s at %s", rep.ProblemCount, first.Kind, first.Where)}
	}
	return nil
}

func verifySummary(res verifyResult) string {
	rep := res.Report
	var b strings.Builder
	if rep.Intact {
		b.WriteString("intact: ")
	} else {
		b.WriteString("NOT intact: ")
	}
	fmt.Fprintf(&b, "%d entries in the chain", rep.Chained)
	if rep.Chained > 0 {
		fmt.Fprintf(&b, ", seq %d-%d", rep.FirstSeq, rep.LastSeq)
		if rep.Anchored {
			b.WriteString(" from the genesis hash")
		} else {
			fmt.Fprintf(&b, " (entries before seq %d are not in the input)", rep.FirstSeq)
		}
		fmt.Fprintf(&b, "; head hash %s; covers %d commands and %d events", rep.HeadHash, rep.Cursor.Commands, rep.Cursor.Events)
	}
	if res.SourcesChecked {
		b.WriteString("; every chained entry was compared with its source message")
		if u := res.Unaudited; u != nil && (u.Commands > 0 || u.Events > 0) {
			fmt.Fprintf(&b, "; %d commands and %d events are not recorded yet", u.Commands, u.Events)
		}
	}
	return b.String()
}

func (a *app) auditTraceCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "trace CORRELATION_ID",
		Short: "Show the causal chain of one command as a tree",
		Long: `Show everything one command caused: the command, the events and rejections
caused by it, recursively by causation id, including commands caused by those
events (automatic provisioning) and their own effects. -o json gives the tree as
nested objects (each entry with its children).`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			js, closeFn, err := a.auditJS()
			if err != nil {
				return err
			}
			defer closeFn()
			tr := audit.NewTracer(args[0])
			err = audit.Read(cmd.Context(), js, audit.ReadOptions{}, func(r audit.Record) error {
				if r.Entry != nil {
					tr.Add(r.Entry)
				}
				return nil
			})
			if err != nil {
				return err
			}
			roots := tr.Roots()
			if len(roots) == 0 {
				return &client.APIError{Code: "not_found", Message: fmt.Sprintf("no entry in the audit trail has correlation id %s", args[0])}
			}
			if a.output == "json" {
				return a.emit(traceJSON(roots), nil, nil)
			}
			w := bufio.NewWriter(a.stdout)
			for _, r := range roots {
				printTree(w, r, args[0], "", "", true)
			}
			return w.Flush()
		},
	}
}

// traceNode is one node of the JSON tree: the entry's fields and children.
type traceNode struct {
	*audit.Entry
	Children []traceNode `json:"children"`
}

func traceJSON(ns []*audit.Node) []traceNode {
	out := make([]traceNode, len(ns))
	for i, n := range ns {
		out[i] = traceNode{Entry: n.Entry, Children: traceJSON(n.Children)}
	}
	return out
}

func printTree(w io.Writer, n *audit.Node, root, prefix, branch string, top bool) {
	e := n.Entry
	line := fmt.Sprintf("%s %s  seq %d  %s  actor=%s", e.Kind, orDash(shortType(e.Type)), e.Seq, shortTime(e.StreamTime), orDash(e.Actor))
	if e.CorrelationID != root && e.CorrelationID != "" {
		line += "  corr=" + e.CorrelationID
	}
	if w := whatTree(e); w != "" {
		line += "  " + w
	}
	fmt.Fprintln(w, prefix+branch+line)
	if !top {
		if branch == "└── " {
			prefix += "    "
		} else {
			prefix += "│   "
		}
	}
	for i, c := range n.Children {
		b := "├── "
		if i == len(n.Children)-1 {
			b = "└── "
		}
		printTree(w, c, root, prefix, b, false)
	}
}

// whatTree is what() without the correlation, which the tree shows.
func whatTree(e *audit.Entry) string {
	c := *e
	c.CorrelationID, c.CausationID = c.ID, ""
	return what(&c)
}
