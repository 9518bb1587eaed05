package console

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/licensebus/licensebus/projections/licensing"
	"github.com/nats-io/nats.go/jetstream"
)

// pageSize is how many SmartServers the fleet overview shows at once.
const pageSize = 50

// fleetPage is the fleet overview.
type fleetPage struct {
	view
	Page      client.FleetPage
	Customers []licensing.Customer
	Refusals  []refusal
	// Prev and Next are the links of the pager ("" at either end).
	Prev, Next string
	From, To   int
	LiveURL    string
}

// refusal is one recent command.rejected event.
type refusal struct {
	Time    time.Time
	Type    string
	Subject string
	events.Rejected
}

func (c *Console) fleetData(ctx context.Context, x *session, q string, offset int) (fleetPage, error) {
	d := fleetPage{}
	if err := x.query(ctx, client.QueryFleetPage, client.Params{Search: q, Offset: offset, Limit: pageSize}, &d.Page); err != nil {
		return d, err
	}
	if err := x.query(ctx, client.QueryCustomers, client.Params{}, &d.Customers); err != nil {
		return d, err
	}
	d.Refusals = x.recentRefusals(ctx, 8)
	p := d.Page
	link := func(off int) string {
		v := url.Values{}
		if q != "" {
			v.Set("q", q)
		}
		if off > 0 {
			v.Set("offset", strconv.Itoa(off))
		}
		if len(v) == 0 {
			return "/"
		}
		return "/?" + v.Encode()
	}
	if p.Offset > 0 {
		d.Prev = link(max(p.Offset-p.Limit, 0))
	}
	if p.Offset+len(p.SmartServers) < p.Total {
		d.Next = link(p.Offset + p.Limit)
	}
	d.From, d.To = min(p.Offset+1, p.Total), p.Offset+len(p.SmartServers)
	lv := url.Values{}
	lv.Set("q", q)
	lv.Set("offset", strconv.Itoa(offset))
	d.LiveURL = "/live/fleet?" + lv.Encode()
	return d, nil
}

func (c *Console) fleetPage(w http.ResponseWriter, r *http.Request, x *session) error {
	if ic, ok := x.who.SmartServer(); ok {
		return seeOther(w, r, smartServerPath(ic))
	}
	d, err := c.fleetData(r.Context(), x, r.URL.Query().Get("q"), offsetParam(r))
	if err != nil {
		return err
	}
	d.view = c.view(r, x, "Fleet", "fleet")
	c.pages.render(w, http.StatusOK, "fleet", d)
	return nil
}

// recentRefusals reads the newest n rejections from the event stream as x
// (the stream's tail only: the last few thousand events). What x may not
// read is left out, not an error: the overview shows the rest.
func (x *session) recentRefusals(ctx context.Context, n int) []refusal {
	const window = 5000
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	str, err := x.js.Stream(ctx, events.EventsStream)
	if err != nil {
		return nil
	}
	st := str.CachedInfo().State
	if st.Msgs == 0 {
		return nil
	}
	start := st.FirstSeq
	if st.LastSeq > window && st.LastSeq-window > start {
		start = st.LastSeq - window
	}
	cons, err := x.js.OrderedConsumer(ctx, events.EventsStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.AllRejections}, DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: start})
	if err != nil {
		return nil
	}
	var out []refusal
	for {
		batch, err := cons.FetchNoWait(256)
		if err != nil {
			break
		}
		got := 0
		var last jetstream.Msg
		for m := range batch.Messages() {
			got++
			last = m
			msg, err := events.Decode(m.Headers(), m.Data())
			if err != nil {
				continue
			}
			rj, ok := msg.Data.(*events.Rejected)
			if !ok {
				continue
			}
			if out = append(out, refusal{Time: msg.Event.Time(), Type: string(msg.Type()), Subject: m.Subject(), Rejected: *rj}); len(out) > n {
				out = out[1:]
			}
		}
		if got == 0 || last == nil {
			break
		}
		if md, err := last.Metadata(); err != nil || md.NumPending == 0 {
			break
		}
	}
	// Newest first.
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// demo is a small fleet to walk the manual with: a customer of the
// License Partner Portal with three licenses in the cloud, and one
// SmartServer with three devices. Fixed command ids make loading it twice
// harmless: the repeats get the first outcomes.
func (c *Console) postDemo(w http.ResponseWriter, r *http.Request, x *session) error {
	const ns = "console-demo-"
	ctx := r.Context()
	step := func(id string, t events.Type, d events.Data) (Outcome, error) {
		o, err := c.do(ctx, x, t, d, ns+id, "")
		if err == nil && o.Status != Accepted {
			err = errors.New(o.Status + " " + o.Reason + ": " + o.Message)
		}
		return o, err
	}
	o, err := step("customer", events.CreateCustomerType, &events.CreateCustomer{Name: "P2022-0208"})
	if err != nil {
		return err
	}
	var cc events.CustomerCreated
	if err := jsonUnmarshal(o.Data, &cc); err != nil {
		return err
	}
	exp := c.cfg.Now().AddDate(2, 0, 0).Format(time.DateOnly)
	for i, l := range []events.AddLicense{
		{CustomerID: cc.CustomerID, Kind: events.Capacity, Devices: 200},
		{CustomerID: cc.CustomerID, Kind: events.Maintenance, Devices: 200, Expires: exp},
		{CustomerID: cc.CustomerID, Kind: events.Capacity, Devices: 200},
	} {
		if _, err := step("license-"+strconv.Itoa(i+1), events.AddLicenseType, &l); err != nil {
			return err
		}
	}
	if _, err := step("register", events.RegisterType, &events.Register{InstallCode: "IC-0001", Name: "SC-01", Version: "3.4"}); err != nil {
		return err
	}
	for i, name := range []string{"AHU-1", "VAV-2", "Meter-3"} {
		proto := []string{"bacnet", "lon", "modbus"}[i]
		if _, err := step("device-"+strconv.Itoa(i+1), events.AddDeviceType, &events.AddDevice{InstallCode: "IC-0001", Name: name, Protocol: proto}); err != nil {
			return err
		}
	}
	x.addFlash("ok", "Demo fleet loaded: customer P2022-0208 (Customer ID %s) with three licenses in the cloud, and SmartServer IC-0001 with three devices. Open IC-0001 and start with Manage Customer Accounts.", cc.CustomerID)
	return seeOther(w, r, "/")
}
