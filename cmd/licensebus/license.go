package main

import (
	"context"

	"github.com/jedib0t/go-pretty/v6/table"
	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/licensebus/licensebus/projections/licensing"
	"github.com/spf13/cobra"
)

func (a *app) licenseCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "license", Short: "The license inventory (cloud)"}
	var d events.AddLicense
	add := &cobra.Command{
		Use:   "add --customer CID --kind capacity|maintenance --devices N [--expires YYYY-MM-DD]",
		Short: "Add a purchased license to a customer's inventory; prints its License ID",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				return a.do(ctx, c, events.AddLicenseType, &d)
			})
		},
	}
	f := add.Flags()
	f.StringVar(&d.CustomerID, "customer", "", "Customer ID owning the license (required)")
	f.StringVar(&d.Kind, "kind", "", "capacity or maintenance (required)")
	f.IntVar(&d.Devices, "devices", 0, "devices covered (required)")
	f.StringVar(&d.Expires, "expires", "", "expiry date YYYY-MM-DD (maintenance)")
	f.StringVar(&d.LicenseID, "license-id", "", "License ID to use (default: a new UUID)")
	enumFlag(add, "kind", events.Capacity, events.Maintenance)
	for _, n := range []string{"customer", "kind", "devices"} {
		_ = add.MarkFlagRequired(n)
	}

	var p client.Params
	list := &cobra.Command{
		Use:   "list [--customer CID] [--smartserver IC] [--state cloud|activating|active|transferring]",
		Short: "List the license inventory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				var rows []licensing.LicenseRow
				if err := c.Query(ctx, client.QueryInventory, p, &rows); err != nil {
					return err
				}
				t := make([]table.Row, len(rows))
				for i, r := range rows {
					t[i] = table.Row{r.LicenseID, r.CustomerID, r.Description, r.Status, r.SegmentController, r.InstallCode, r.ActivationDate, r.TransferDate}
				}
				return a.emit(rows, table.Row{"License ID", "Customer ID", "Description", "Status", "Segment Controller", "Install Code", "Activation Date", "Transfer Date"}, t)
			})
		},
	}
	list.Flags().StringVar(&p.CustomerID, "customer", "", "only this customer's licenses")
	list.Flags().StringVar(&p.InstallCode, "smartserver", "", "only licenses on this SmartServer")
	list.Flags().StringVar(&p.State, "state", "", "only licenses in this state: cloud, activating, active, transferring, fulfilled or refused")
	enumFlag(list, "state", licensing.StateCloud, licensing.StateActivating, licensing.StateActive, licensing.StateTransferring, licensing.StateFulfilled, licensing.StateRefused)
	cmd.AddCommand(a.sends(add), list)
	cmd.AddCommand(a.grantCmds()...)
	return cmd
}
