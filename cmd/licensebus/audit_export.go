package main

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	auditlog "github.com/licensebus/licensebus/internal/audit"
	"github.com/spf13/cobra"
)

// csvHeader is the fixed header of CSV exports. Never reorder it; add
// columns at the end.
var csvHeader = []string{
	"seq", "kind", "stream", "stream_seq", "stream_time", "subject", "mode", "id", "type", "source", "time", "actor",
	"correlation_id", "causation_id", "license_id", "license_ids", "install_code", "customer_id", "device_id", "device_ids",
	"reason", "message", "command_id", "command_type", "invalid", "rejection_id", "data", "data_base64", "data_truncated",
	"message_sha256", "cursor_commands", "cursor_events", "prev_hash", "hash",
}

func csvRow(r auditlog.Record) []string {
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
			js, ctx, done, err := a.auditRead(cmd)
			if err != nil {
				return err
			}
			defer done()
			w := bufio.NewWriterSize(a.stdout, 64<<10)
			var cw *csv.Writer
			if format == "csv" {
				cw = csv.NewWriter(w)
				if err := cw.Write(csvHeader); err != nil {
					return err
				}
			}
			started := false
			err = auditlog.Read(ctx, js, auditlog.ReadOptions{Since: since}, func(r auditlog.Record) error {
				if e := r.Entry; e != nil {
					t, terr := time.Parse(time.RFC3339Nano, e.StreamTime)
					if terr == nil && !started && t.Before(since) {
						return nil
					}
					if terr == nil && !until.IsZero() && !t.Before(until) {
						return auditlog.ErrStop
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
				return a.stopped(cmd, ctx, err)
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
