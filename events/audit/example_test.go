package audit_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"

	"github.com/licensebus/licensebus/events/audit"
)

// verifyExport checks an export (licensebus audit export > FILE): one
// stored entry per line, fed to a Verifier in order.
func verifyExport(export []byte) audit.Report {
	var v audit.Verifier
	sc := bufio.NewScanner(bytes.NewReader(export))
	sc.Buffer(nil, 1<<20) // an entry can be larger than the default 64 KiB line
	for n := 1; sc.Scan(); n++ {
		v.Add(bytes.Clone(sc.Bytes()), fmt.Sprintf("line %d", n))
	}
	return v.Finish()
}

// A program outside licensebus verifies an export with this package
// alone: no NATS, no licensebus server. An export proves its chain from
// its first entry to its last; compare the head hash with the live trail's
// (licensebus audit verify prints it) to know nothing was cut off the end.
func Example() {
	export, err := os.ReadFile("testdata/export.jsonl")
	if err != nil {
		panic(err)
	}
	rep := verifyExport(export)
	fmt.Printf("intact: %v, %d entries from seq %d (from the genesis hash: %v), head %.12s…\n",
		rep.Intact, rep.Chained, rep.FirstSeq, rep.Anchored, rep.HeadHash)

	// Someone renames the customer in the second entry.
	lines := bytes.SplitAfter(export, []byte("\n"))
	lines[1] = bytes.Replace(lines[1], []byte(`"P2022-0208"`), []byte(`"P2022-0209"`), -1)
	rep = verifyExport(bytes.Join(lines, nil))
	fmt.Printf("intact: %v\n", rep.Intact)
	for _, p := range rep.Problems {
		fmt.Printf("%s: entry %d at %s: %s\n", p.Kind, p.Seq, p.Where, p.Detail)
	}
	// Output:
	// intact: true, 4 entries from seq 1 (from the genesis hash: true), head 98bd9b643923…
	// intact: false
	// edited: entry 2 at line 2: its content was changed: the hash does not match it
}
