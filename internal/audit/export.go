package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/segmentio/encoding/json"
)

// Export formats.
const (
	FormatJSONL = "jsonl"
	FormatCSV   = "csv"
)

// CSVHeader is the fixed header of CSV exports. Never reorder it; add
// columns at the end.
var CSVHeader = []string{
	"seq", "kind", "stream", "stream_seq", "stream_time", "subject", "mode", "id", "type", "source", "time", "actor",
	"correlation_id", "causation_id", "license_id", "license_ids", "install_code", "customer_id", "device_id", "device_ids",
	"reason", "message", "command_id", "command_type", "invalid", "rejection_id", "data", "data_base64", "data_truncated",
	"message_sha256", "cursor_commands", "cursor_events", "prev_hash", "hash",
}

func csvRow(r Record) []string {
	e := r.Entry
	if e == nil {
		row := make([]string, len(CSVHeader))
		row[slices.Index(CSVHeader, "kind")], row[slices.Index(CSVHeader, "data")] = "not_an_entry", string(r.Raw)
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

// WriteJSONLine writes a stored message as one line; one that is not
// single-line JSON (only a forgery can be) is written as a JSON string so
// the line framing holds and verify reports it.
func WriteJSONLine(w io.Writer, raw []byte) {
	if bytes.ContainsAny(raw, "\r\n") {
		raw, _ = json.Marshal(string(raw))
	}
	_, _ = w.Write(raw)
	_, _ = io.WriteString(w, "\n")
}

// ExportOptions choose the part of the trail an Export writes, and how.
type ExportOptions struct {
	Since, Until time.Time // zero: from the start, to the end
	Format       string    // FormatJSONL (default) or FormatCSV
}

// Export writes the trail to w as it is stored (JSONL, the input of
// verify) or as CSV with CSVHeader, streamed in constant memory. It is a
// contiguous run of the chain: from the first entry whose source message
// was stored at or after Since, to the last one before the first stored at
// or after Until; the same range gives the same bytes every time.
func Export(ctx context.Context, js jetstream.JetStream, out io.Writer, o ExportOptions) error {
	if o.Format == "" {
		o.Format = FormatJSONL
	}
	if o.Format != FormatJSONL && o.Format != FormatCSV {
		return fmt.Errorf("format must be jsonl or csv, not %q", o.Format)
	}
	w := bufio.NewWriterSize(out, 64<<10)
	var cw *csv.Writer
	if o.Format == FormatCSV {
		cw = csv.NewWriter(w)
		if err := cw.Write(CSVHeader); err != nil {
			return err
		}
	}
	started := false
	err := Read(ctx, js, ReadOptions{Since: o.Since}, func(r Record) error {
		if e := r.Entry; e != nil {
			t, terr := time.Parse(time.RFC3339Nano, e.StreamTime)
			if terr == nil && !started && t.Before(o.Since) {
				return nil
			}
			if terr == nil && !o.Until.IsZero() && !t.Before(o.Until) {
				return ErrStop
			}
			started = true
		} else if !started {
			return nil
		}
		if cw != nil {
			return cw.Write(csvRow(r))
		}
		WriteJSONLine(w, r.Raw)
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
}
