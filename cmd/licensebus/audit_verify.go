package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/jedib0t/go-pretty/v6/table"
	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/events/audit"
	auditlog "github.com/licensebus/licensebus/internal/audit"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
)

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
	var checkpoints, keysFile string
	cmd := &cobra.Command{
		Use:   "verify [FILE] [--checkpoints CHECKPOINTS.json [--pubkey-file KEYS]]",
		Short: "Check a JSONL export (or, with no file, the live trail) for edited, dropped, reordered, inserted, truncated or rewritten entries",
		Long: `Check the hash chain of a JSONL export (FILE, or - for stdin) or of the live
audit stream, and name each entry that was edited, dropped, reordered or
inserted. The live check also compares every entry with the source message it
records, and holds the trail against its latest signed checkpoint (audit
checkpoints): truncated when the trail ends before it, rewritten when the entry
it signed has another hash, source_missing when a source message it names is
gone. --checkpoints holds the trail (or the export) against the checkpoints of a
file of audit checkpoints -o json instead, their signatures checked with the
published keys or --pubkey-file. Exits 1 when anything is wrong, 0 with a
summary when the trail is intact. Without checkpoints a file proves itself only
from its first entry to its last.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if err := cobra.MaximumNArgs(1)(cmd, args); err != nil {
				return usageError{fmt.Errorf("%w; usage: %s", err, cmd.UseLine())}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var v audit.Verifier
			res := verifyResult{SourcesChecked: len(args) == 0}
			var cps []audit.Checkpoint
			var cprobs []audit.Problem
			if checkpoints != "" {
				var err error
				if cps, cprobs, err = a.fileCheckpoints(cmd, checkpoints, keysFile); err != nil {
					return err
				}
				v.SetCheckpoints(cps)
			}
			if len(args) == 1 {
				res.Input = args[0]
				if err := a.verifyFile(args[0], &v); err != nil {
					return err
				}
				res.Report = v.Finish()
				res.Report.Add(cprobs...)
				return a.verifyOutput(res)
			}
			res.Input = audit.Stream
			js, closeFn, err := a.auditJS()
			if err != nil {
				return err
			}
			defer closeFn()
			ctx, cancel := a.readContext(cmd, true)
			defer cancel()
			if checkpoints == "" {
				if cps, cprobs, err = liveCheckpoints(ctx, js); err != nil {
					return a.stopped(cmd, ctx, err)
				}
				v.SetCheckpoints(cps)
			}
			if res.Report, res.Unaudited, err = verifyLive(ctx, js, &v); err != nil {
				return a.stopped(cmd, ctx, err)
			}
			if latest := auditlog.Latest(cps); latest != nil {
				probs, err := auditlog.CheckSources(ctx, js, latest[0])
				if err != nil {
					return a.stopped(cmd, ctx, err)
				}
				res.Report.Add(probs...)
			}
			res.Report.Add(cprobs...)
			return a.verifyOutput(res)
		},
	}
	cmd.Flags().StringVar(&checkpoints, "checkpoints", "", "hold the trail against the checkpoints of this file (audit checkpoints -o json)")
	cmd.Flags().StringVar(&keysFile, "pubkey-file", "", "with --checkpoints: the keys their signatures are checked with (license pubkey -o json, PEM, base64); default the published keys")
	return cmd
}

// verifyLive verifies the live trail with v, each entry against its source
// message, and the streams against what the trail and serve expect of
// them; unaudited is how many source messages the trail lacks yet.
func verifyLive(ctx context.Context, js jetstream.JetStream, v *audit.Verifier) (rep audit.Report, unaudited *audit.Cursor, err error) {
	var checker *auditlog.SourceChecker
	defer func() {
		if checker != nil {
			checker.Close()
		}
	}()
	err = auditlog.Read(ctx, js, auditlog.ReadOptions{}, func(r auditlog.Record) error {
		if checker == nil { // after Read's snapshot: every entry read records a message below the checker's
			var err error
			if checker, err = auditlog.NewSourceChecker(ctx, js); err != nil {
				return err
			}
			v.Check = checker.Check
		}
		v.Add(r.Raw, fmt.Sprintf("audit stream seq %d", r.StreamSeq))
		return nil
	})
	if err != nil {
		return rep, nil, err
	}
	if checker == nil {
		if checker, err = auditlog.NewSourceChecker(ctx, js); err != nil {
			return rep, nil, err
		}
	}
	rep = v.Finish()
	probs, err := auditlog.CheckStreams(ctx, js, rep.Cursor)
	if err != nil {
		return rep, nil, err
	}
	rep.Add(probs...)
	un := checker.Unaudited()
	return rep, &un, nil
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
		return &client.APIError{Code: string(events.ReasonTampered), Message: fmt.Sprintf("audit trail tampered: %d problem(s), first: %s at %s", rep.ProblemCount, first.Kind, first.Where)}
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
	switch {
	case rep.Anchor != nil:
		fmt.Fprintf(&b, "; held against the signed checkpoint of seq %d (%s)", rep.Anchor.Seq, rep.Anchor.Time)
	case rep.Checkpoints == 0:
		b.WriteString("; no signed checkpoint to hold it against")
	}
	if res.SourcesChecked {
		b.WriteString("; every chained entry was compared with its source message")
		if u := res.Unaudited; u != nil && (u.Commands > 0 || u.Events > 0) {
			fmt.Fprintf(&b, "; %d commands and %d events are not recorded yet", u.Commands, u.Events)
		}
	}
	return b.String()
}
