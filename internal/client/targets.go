package client

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ReadTargets reads a rollout's targets file: CSV with a header row that
// has an install_code column (any case, a byte order mark allowed); other
// columns and empty cells are ignored.
func ReadTargets(in io.Reader) ([]string, error) {
	r := csv.NewReader(in)
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("empty file: want a header row with an install_code column")
	}
	if err != nil {
		return nil, err
	}
	col := -1
	for i, h := range header {
		if strings.EqualFold(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")), "install_code") {
			col = i
		}
	}
	if col < 0 {
		return nil, fmt.Errorf("no install_code column in the header %v", header)
	}
	var out []string
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if col < len(rec) && strings.TrimSpace(rec[col]) != "" {
			out = append(out, strings.TrimSpace(rec[col]))
		}
	}
}
