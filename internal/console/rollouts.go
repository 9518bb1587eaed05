package console

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/handlers/rollout"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/licensebus/licensebus/projections/licensing"
	"github.com/licensebus/licensebus/projections/rollouts"
)

// rolloutsPage lists the rollouts and has the form of a new one.
type rolloutsPage struct {
	view
	Rollouts  []rollouts.Rollout
	Customers []licensing.Customer
}

func (c *Console) rolloutsPage(w http.ResponseWriter, r *http.Request, x *session) error {
	d := rolloutsPage{view: c.view(r, x, "Rollouts", "rollouts")}
	if err := x.query(r.Context(), client.QueryRollouts, client.Params{}, &d.Rollouts); err != nil {
		return err
	}
	if err := x.query(r.Context(), client.QueryCustomers, client.Params{}, &d.Customers); err != nil {
		return err
	}
	c.pages.render(w, http.StatusOK, "rollouts", d)
	return nil
}

// specFromForm reads the new-rollout form: the uploaded targets file and
// the choices the CLI's flags make.
func specFromForm(r *http.Request) (events.RolloutSpec, error) {
	s := events.RolloutSpec{Kind: r.PostFormValue("kind")}
	f, _, err := r.FormFile("targets")
	if err != nil {
		return s, badRequest("choose a targets file: CSV with an install_code column")
	}
	defer f.Close()
	if s.Targets, err = client.ReadTargets(f); err != nil {
		return s, badRequest("targets file: %v", err)
	}
	num := func(name string, def int) (int, error) {
		v := strings.TrimSpace(r.PostFormValue(name))
		if v == "" {
			return def, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, badRequest("%s must be a whole number, not %q", strings.ReplaceAll(name, "_", " "), v)
		}
		return n, nil
	}
	on := func(name string) bool { return r.PostFormValue(name) != "" }
	if s.Kind == events.RolloutActivate {
		s.CustomerID = r.PostFormValue("customer_id")
		s.SetCustomerID, s.AutoProvision = on("set_customer_id"), on("auto_provision")
		if on("capacity") {
			n, err := num("capacity_devices", 0)
			if err != nil {
				return s, err
			}
			s.Activate = append(s.Activate, events.LicenseWant{Kind: events.Capacity, Devices: n})
		}
		if on("maintenance") {
			s.Activate = append(s.Activate, events.LicenseWant{Kind: events.Maintenance})
		}
	}
	for _, p := range strings.FieldsFunc(r.PostFormValue("waves"), func(c rune) bool { return c == ',' || c == ' ' }) {
		n, err := strconv.Atoi(strings.TrimSuffix(p, "%"))
		if err != nil {
			return s, badRequest("waves are cumulative percentages such as 1,10,50,100, not %q", p)
		}
		s.WavePercents = append(s.WavePercents, n)
	}
	if s.Concurrency, err = num("concurrency", 50); err != nil {
		return s, err
	}
	if s.RatePerMin, err = num("rate_per_min", 0); err != nil {
		return s, err
	}
	if s.Retries, err = num("retries", 3); err != nil {
		return s, err
	}
	if v := strings.TrimSpace(r.PostFormValue("abort_percent")); v != "" {
		if s.AbortPercent, err = strconv.ParseFloat(v, 64); err != nil || s.AbortPercent <= 0 || s.AbortPercent > 100 {
			return s, badRequest("abort when more than P%% failed: P must be above 0 and at most 100, not %q", v)
		}
		if s.AbortMin, err = num("abort_min", 1); err != nil {
			return s, err
		}
	}
	return s, s.Validate()
}

// planPage shows a dry run: what would happen, nothing changed yet.
type planPage struct {
	view
	Plan rollout.Plan
	Spec string // the spec as JSON, which the start form sends back
}

func (c *Console) postPlan(w http.ResponseWriter, r *http.Request, x *session) error {
	spec, err := specFromForm(r)
	if err != nil {
		x.addFlash("error", "%s", errText(err))
		return seeOther(w, r, "/rollouts")
	}
	d := planPage{view: c.view(r, x, "Rollout plan (dry run)", "rollouts")}
	if err := x.query(r.Context(), client.QueryRolloutPlan, client.Params{Spec: &spec}, &d.Plan); err != nil {
		return err
	}
	b, _ := json.Marshal(spec)
	d.Spec = string(b)
	c.pages.render(w, http.StatusOK, "plan", d)
	return nil
}

// errText is an error as the pages show it: reason: message.
func errText(err error) string {
	_, reason, msg := classify(err)
	return reason + ": " + msg
}

// postStartRollout starts the rollout a plan showed. Its command id is
// the plan page's, so starting twice starts one rollout.
func (c *Console) postStartRollout(w http.ResponseWriter, r *http.Request, x *session) error {
	var spec events.RolloutSpec
	if err := json.Unmarshal([]byte(r.PostFormValue("spec")), &spec); err != nil {
		return badRequest("the plan's spec does not parse: %v", err)
	}
	id, err := commandID(r)
	if err != nil {
		return err
	}
	o, err := c.startRollout(r.Context(), x, spec, id)
	if err != nil {
		return err
	}
	x.report([]Outcome{o}, "Rollout started.")
	if o.Status == Rejected {
		return seeOther(w, r, "/rollouts")
	}
	return seeOther(w, r, "/rollouts/"+url.PathEscape(client.RolloutID(id)))
}

// rolloutPage is one rollout's progress, per wave and per target.
type rolloutPage struct {
	view
	R rollouts.Detail
	// Shown are the targets listed (the first maxTargetsShown, failed
	// ones first); Hidden how many more there are.
	Shown  []rollouts.Target
	Hidden int
}

const maxTargetsShown = 300

func (c *Console) rolloutData(r *http.Request, x *session) (rolloutPage, error) {
	d := rolloutPage{}
	if err := x.query(r.Context(), client.QueryRollout, client.Params{RolloutID: r.PathValue("id")}, &d.R); err != nil {
		return d, err
	}
	var failed, rest []rollouts.Target
	for _, t := range d.R.Targets {
		if t.Status == "failed" {
			failed = append(failed, t)
		} else {
			rest = append(rest, t)
		}
	}
	d.Shown = append(failed, rest...)
	if len(d.Shown) > maxTargetsShown {
		d.Shown, d.Hidden = d.Shown[:maxTargetsShown], len(d.Shown)-maxTargetsShown
	}
	return d, nil
}

func (c *Console) rolloutPage(w http.ResponseWriter, r *http.Request, x *session) error {
	d, err := c.rolloutData(r, x)
	if err != nil {
		return err
	}
	d.view = c.view(r, x, "Rollout "+d.R.RolloutID, "rollouts")
	c.pages.render(w, http.StatusOK, "rollout", d)
	return nil
}

func (c *Console) postRolloutAction(w http.ResponseWriter, r *http.Request, x *session) error {
	t, ok := rolloutActions[r.PathValue("action")]
	if !ok {
		return &httpError{status: http.StatusNotFound, reason: string(events.ReasonNotFound), msg: "a rollout's actions are pause, resume, cancel and retry-failed"}
	}
	id, err := commandID(r)
	if err != nil {
		return err
	}
	rid := r.PathValue("id")
	o, err := c.do(r.Context(), x, t, &events.RolloutRef{RolloutID: rid}, id, "")
	if err != nil {
		return err
	}
	x.report([]Outcome{o}, "Rollout: "+strings.ReplaceAll(r.PathValue("action"), "-", " ")+" done.")
	return seeOther(w, r, "/rollouts/"+url.PathEscape(rid))
}
