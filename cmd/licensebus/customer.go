package main

import (
	"context"

	"github.com/jedib0t/go-pretty/v6/table"
	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/licensebus/licensebus/projections/licensing"
	"github.com/spf13/cobra"
)

func (a *app) customerCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "customer", Short: "Customer/project accounts (License Partner Portal)"}
	var name, id string
	create := &cobra.Command{
		Use:   "create --name NAME",
		Short: "Add a customer/project account; prints its Customer ID",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				return a.do(ctx, c, events.CreateCustomerType, &events.CreateCustomer{CustomerID: id, Name: name})
			})
		},
	}
	create.Flags().StringVar(&name, "name", "", "project name, e.g. P2022-0208 (required)")
	create.Flags().StringVar(&id, "customer-id", "", "Customer ID to use (default: a new UUID)")
	_ = create.MarkFlagRequired("name")

	list := &cobra.Command{
		Use:   "list",
		Short: "List customer accounts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				var rows []licensing.Customer
				if err := c.Query(ctx, client.QueryCustomers, client.Params{}, &rows); err != nil {
					return err
				}
				out := make([]customerJSON, len(rows))
				t := make([]table.Row, len(rows))
				for i, r := range rows {
					out[i] = customerJSON{CustomerID: r.CustomerID, Name: r.Name}
					t[i] = table.Row{r.Name, r.CustomerID}
				}
				return a.emit(out, table.Row{"Name", "Customer ID"}, t)
			})
		},
	}
	cmd.AddCommand(a.sends(create), list)
	return cmd
}

type customerJSON struct {
	CustomerID string `json:"customer_id"`
	Name       string `json:"name"`
}
