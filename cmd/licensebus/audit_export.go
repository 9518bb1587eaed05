package main

import (
	"fmt"
	"time"

	auditlog "github.com/licensebus/licensebus/internal/audit"
	"github.com/spf13/cobra"
)

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
			err = auditlog.Export(ctx, js, a.stdout, auditlog.ExportOptions{Since: since, Until: until, Format: format})
			if err != nil {
				return a.stopped(cmd, ctx, err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&sinceS, "since", "", "first source-message time included (RFC 3339, date, or duration ago)")
	cmd.Flags().StringVar(&untilS, "until", "", "source-message time to stop before")
	cmd.Flags().StringVar(&format, "format", "jsonl", "jsonl or csv")
	return cmd
}
