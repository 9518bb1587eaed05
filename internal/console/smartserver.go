package console

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/licensebus/licensebus/projections/devices"
	"github.com/licensebus/licensebus/projections/licensing"
)

// smartServerView is what the pages of one SmartServer share.
type smartServerView struct {
	view
	SS client.SmartServer
}

func (c *Console) smartServerView(r *http.Request, x *session, title string) (smartServerView, error) {
	ic, err := installCode(r)
	if err != nil {
		return smartServerView{}, err
	}
	v := smartServerView{view: c.view(r, x, title, "smartserver")}
	err = x.query(r.Context(), client.QuerySmartServer, client.Params{InstallCode: ic}, &v.SS)
	return v, err
}

// dialogPage is the Manage Licenses dialog.
type dialogPage struct {
	smartServerView
	Licenses []licensing.LicenseRow
}

func (c *Console) dialogData(r *http.Request, x *session) (dialogPage, error) {
	v, err := c.smartServerView(r, x, "Manage Licenses")
	if err != nil {
		return dialogPage{}, err
	}
	d := dialogPage{smartServerView: v}
	err = x.query(r.Context(), client.QueryManage, client.Params{InstallCode: v.SS.Account.InstallCode}, &d.Licenses)
	return d, err
}

func (c *Console) dialogPage(w http.ResponseWriter, r *http.Request, x *session) error {
	d, err := c.dialogData(r, x)
	if err != nil {
		return err
	}
	c.pages.render(w, http.StatusOK, "dialog", d)
	return nil
}

func (c *Console) transferPage(w http.ResponseWriter, r *http.Request, x *session) error {
	d, err := c.dialogData(r, x)
	if err != nil {
		return err
	}
	d.Title = "Transfer to Cloud"
	c.pages.render(w, http.StatusOK, "transfer", d)
	return nil
}

func (c *Console) postTransfer(w http.ResponseWriter, r *http.Request, x *session) error {
	ic, err := installCode(r)
	if err != nil {
		return err
	}
	id, err := commandID(r)
	if err != nil {
		return err
	}
	o, err := c.do(r.Context(), x, events.TransferToCloudType, &events.TransferToCloud{InstallCode: ic}, id, "")
	if err != nil {
		return err
	}
	x.report([]Outcome{o}, "All licenses of "+ic+" were transferred to the cloud; its devices are unlicensed (purple) until a license is activated.")
	return seeOther(w, r, smartServerPath(ic))
}

// accountsPage is Manage Customer Accounts: Value is what the field
// shows, Saved what the SmartServer has; they differ after a refusal.
type accountsPage struct {
	smartServerView
	Value, Saved string
	Edited       bool
	// FieldError is why the server refused what the field holds.
	FieldError string
}

func (c *Console) accountsPage(w http.ResponseWriter, r *http.Request, x *session) error {
	v, err := c.smartServerView(r, x, "Manage Customer Accounts")
	if err != nil {
		return err
	}
	d := accountsPage{smartServerView: v, Saved: v.SS.Account.CustomerID, Value: v.SS.Account.CustomerID}
	if typed, ok := r.URL.Query()["customer_id"]; ok {
		d.Value, d.Edited = typed[0], typed[0] != d.Saved
	}
	if d.Edited {
		// The refusal goes beside the field it is about.
		var rest []flash
		for _, f := range d.Flash {
			if f.Kind == "error" {
				d.FieldError = f.Text
			} else {
				rest = append(rest, f)
			}
		}
		d.Flash = rest
	}
	c.pages.render(w, http.StatusOK, "accounts", d)
	return nil
}

func (c *Console) postCustomerID(w http.ResponseWriter, r *http.Request, x *session) error {
	ic, err := installCode(r)
	if err != nil {
		return err
	}
	id, err := commandID(r)
	if err != nil {
		return err
	}
	cid := strings.TrimSpace(r.PostFormValue("customer_id"))
	o, err := c.do(r.Context(), x, events.SetCustomerIDType, &events.SetCustomerID{InstallCode: ic, CustomerID: cid}, id, "")
	if err != nil {
		return err
	}
	x.report([]Outcome{o}, "Customer ID of "+ic+" saved.")
	back := smartServerPath(ic) + "/accounts"
	if o.Status == Rejected {
		// The field keeps what was typed, with the reason beside it.
		back += "?customer_id=" + url.QueryEscape(cid)
	}
	return seeOther(w, r, back)
}

// downloadsPage is Download Licenses from Cloud.
type downloadsPage struct {
	smartServerView
	Rows []licensing.LicenseRow
	// NotDownloaded: the SmartServer has not downloaded the licenses of
	// its Customer ID yet.
	NotDownloaded bool
}

func (c *Console) downloadsData(r *http.Request, x *session) (downloadsPage, error) {
	v, err := c.smartServerView(r, x, "Download Licenses from Cloud")
	if err != nil {
		return downloadsPage{}, err
	}
	d := downloadsPage{smartServerView: v}
	err = x.query(r.Context(), client.QueryDownloads, client.Params{InstallCode: v.SS.Account.InstallCode}, &d.Rows)
	var ae *client.APIError
	if errors.As(err, &ae) && ae.Code == string(events.ReasonNotDownloaded) {
		d.NotDownloaded, err = true, nil
	}
	return d, err
}

func (c *Console) downloadsPage(w http.ResponseWriter, r *http.Request, x *session) error {
	d, err := c.downloadsData(r, x)
	if err != nil {
		return err
	}
	c.pages.render(w, http.StatusOK, "downloads", d)
	return nil
}

func (c *Console) postDownload(w http.ResponseWriter, r *http.Request, x *session) error {
	ic, err := installCode(r)
	if err != nil {
		return err
	}
	id, err := commandID(r)
	if err != nil {
		return err
	}
	o, err := c.do(r.Context(), x, events.DownloadLicensesType, &events.DownloadLicenses{InstallCode: ic}, id, "")
	if err != nil {
		return err
	}
	x.report([]Outcome{o}, "Licenses downloaded from the cloud.")
	return seeOther(w, r, smartServerPath(ic)+"/downloads")
}

func (c *Console) postActivate(w http.ResponseWriter, r *http.Request, x *session) error {
	ic, err := installCode(r)
	if err != nil {
		return err
	}
	lids := r.PostForm["license_id"]
	back := smartServerPath(ic) + "/downloads"
	if len(lids) == 0 {
		x.addFlash("error", "Select the licenses to activate first.")
		return seeOther(w, r, back)
	}
	key, err := commandID(r)
	if err != nil {
		return err
	}
	outs, err := c.activate(r.Context(), x, ic, lids, key)
	if err != nil {
		return err
	}
	n := 0
	for _, o := range outs {
		if o.Status == Accepted {
			n++
		}
	}
	x.report(outs, sprintf("%d of %d licenses activated: they are in Manage Licenses now.", n, len(outs)))
	return seeOther(w, r, back)
}

// devicesPage is the DMM Devices widget.
type devicesPage struct {
	smartServerView
	Devices []devices.Row
}

func (c *Console) devicesData(r *http.Request, x *session) (devicesPage, error) {
	v, err := c.smartServerView(r, x, "Devices")
	if err != nil {
		return devicesPage{}, err
	}
	d := devicesPage{smartServerView: v}
	err = x.query(r.Context(), client.QueryDevices, client.Params{InstallCode: v.SS.Account.InstallCode}, &d.Devices)
	if errors.Is(err, devices.ErrUnknownServer) || isCode(err, events.ReasonUnknownServer) {
		err = nil // registered, no device yet
	}
	return d, err
}

func isCode(err error, r events.Reason) bool {
	var ae *client.APIError
	return errors.As(err, &ae) && ae.Code == string(r)
}

func (c *Console) devicesPage(w http.ResponseWriter, r *http.Request, x *session) error {
	d, err := c.devicesData(r, x)
	if err != nil {
		return err
	}
	c.pages.render(w, http.StatusOK, "devices", d)
	return nil
}

func (c *Console) postAddDevice(w http.ResponseWriter, r *http.Request, x *session) error {
	ic, err := installCode(r)
	if err != nil {
		return err
	}
	id, err := commandID(r)
	if err != nil {
		return err
	}
	name := strings.TrimSpace(r.PostFormValue("name"))
	o, err := c.do(r.Context(), x, events.AddDeviceType, &events.AddDevice{InstallCode: ic, Name: name, Protocol: r.PostFormValue("protocol")}, id, "")
	if err != nil {
		return err
	}
	x.report([]Outcome{o}, "Device "+name+" added.")
	return seeOther(w, r, smartServerPath(ic)+"/devices")
}

func (c *Console) postProvision(w http.ResponseWriter, r *http.Request, x *session) error {
	ic, err := installCode(r)
	if err != nil {
		return err
	}
	back := smartServerPath(ic) + "/devices"
	ids := r.PostForm["device_id"]
	if r.PostFormValue("all") != "" {
		if ids, err = blueDevices(r.Context(), x, ic); err != nil {
			return err
		}
	}
	if len(ids) == 0 {
		x.addFlash("error", "No blue device selected: only blue (licensed, unprovisioned) devices can be provisioned.")
		return seeOther(w, r, back)
	}
	key, err := commandID(r)
	if err != nil {
		return err
	}
	outs, err := c.provision(r.Context(), x, ic, ids, key)
	if err != nil {
		return err
	}
	x.report(outs, "Provisioning done: provisioned devices are green.")
	for _, o := range outs {
		var d events.DevicesProvisioned
		if o.Status == Accepted && json.Unmarshal(o.Data, &d) == nil {
			for _, f := range d.Refused {
				x.addFlash("error", "Device %s: %s: %s", f.DeviceID, f.Reason, f.Message)
			}
		}
	}
	return seeOther(w, r, back)
}

func (c *Console) postAutoProvision(w http.ResponseWriter, r *http.Request, x *session) error {
	ic, err := installCode(r)
	if err != nil {
		return err
	}
	id, err := commandID(r)
	if err != nil {
		return err
	}
	on := r.PostFormValue("enabled") == "on"
	o, err := c.do(r.Context(), x, events.SetAutoProvisionType, &events.SetAutoProvision{InstallCode: ic, Enabled: on}, id, "")
	if err != nil {
		return err
	}
	state := "off"
	if on {
		state = "on"
	}
	x.report([]Outcome{o}, "Auto-provisioning is "+state+".")
	return seeOther(w, r, smartServerPath(ic)+"/devices")
}
