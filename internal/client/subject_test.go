package client_test

import (
	"errors"
	"testing"

	"github.com/licensebus/licensebus/internal/client"
)

// Ensure each query is asked in its scope, and the server reads back the
// query and the install code from the subject alone.
func TestSubjects(t *testing.T) {
	for _, tt := range []struct {
		query string
		p     client.Params
		want  string
	}{
		{client.QueryManage, client.Params{InstallCode: "IC-0001"}, "lb.api.v1.smartserver.IC-0001.manage"},
		{client.QueryDevices, client.Params{InstallCode: "IC-0001"}, "lb.api.v1.smartserver.IC-0001.devices"},
		{client.QueryOutcome, client.Params{InstallCode: "IC-0001", CorrelationIDs: []string{"c"}}, "lb.api.v1.smartserver.IC-0001.outcome"},
		{client.QueryOutcome, client.Params{CorrelationIDs: []string{"c"}}, "lb.api.v1.fleet.outcome"},
		{client.QueryInventory, client.Params{InstallCode: "IC-0001"}, "lb.api.v1.fleet.inventory"},
		{client.QueryAccounts, client.Params{}, "lb.api.v1.fleet.accounts"},
		{client.QueryRebuild, client.Params{}, "lb.api.v1.admin.rebuild"},
		{client.QueryCredsIssue, client.Params{}, "lb.api.v1.admin.creds_issue"},
	} {
		got, err := client.Subject(tt.query, tt.p)
		if err != nil || got != tt.want {
			t.Errorf("Subject(%s, %+v) = %q, %v; want %q", tt.query, tt.p, got, err, tt.want)
			continue
		}
		q, ic, err := client.ParseSubject(got)
		wantIC := ""
		if tt.want != "lb.api.v1.fleet.inventory" {
			wantIC = tt.p.InstallCode
		}
		if err != nil || q != tt.query || ic != wantIC {
			t.Errorf("ParseSubject(%s) = %s, %q, %v", got, q, ic, err)
		}
	}
	for _, bad := range []string{"lb.api.v1.manage", "lb.api.v1.fleet.manage", "lb.api.v1.smartserver.IC.accounts",
		"lb.api.v1.admin.outcome", "lb.api.v1.smartserver.IC.x.manage", "lb.api.v1.fleet.nothing"} {
		if _, _, err := client.ParseSubject(bad); !errors.Is(err, client.ErrUnknownQuery) {
			t.Errorf("ParseSubject(%s): %v, want ErrUnknownQuery", bad, err)
		}
	}
	if _, err := client.Subject(client.QueryManage, client.Params{InstallCode: "IC.*"}); err == nil {
		t.Error("an install code with wildcards made a subject")
	}
}
