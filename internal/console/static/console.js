// licensebus console: the few behaviours a server-rendered page cannot
// have. Every page works without this file; with it, forms show their
// progress, the Customer ID field checks itself, and dialogs open in place.
(function () {
  "use strict";
  var uuid = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

  function setupCustomerID() {
    var input = document.getElementById("customer-id");
    if (!input) return;
    var form = input.form;
    var actions = form.querySelector(".edit-actions");
    var error = document.getElementById("cid-error");
    var discard = document.getElementById("discard");
    form.noValidate = true; // the message goes beside the field, in words
    function edited() { return input.value.trim() !== input.getAttribute("data-saved"); }
    // After a refusal the page comes with the typed value and its buttons.
    var shownAtStart = !actions.hasAttribute("data-hidden-until-edited");
    function show() {
      var on = edited() || shownAtStart;
      Array.prototype.forEach.call(actions.children, function (el) { el.hidden = !on; });
    }
    input.addEventListener("input", function () {
      input.removeAttribute("aria-invalid");
      error.textContent = "";
      shownAtStart = false;
      show();
    });
    discard.addEventListener("click", function (e) {
      e.preventDefault();
      input.value = input.getAttribute("data-saved");
      input.removeAttribute("aria-invalid");
      error.textContent = "";
      shownAtStart = false;
      show();
      input.focus();
    });
    form.addEventListener("submit", function (e) {
      var v = input.value.trim();
      if (!uuid.test(v)) {
        e.preventDefault();
        e.stopImmediatePropagation();
        input.setAttribute("aria-invalid", "true");
        error.textContent = "bad_uuid: “" + v + "” is not a UUID: a Customer ID looks like 2133c667-af41-4518-94df-a2bb3b775330.";
        input.focus();
      }
    }, true);
    show();
  }

  function setupProgress() {
    document.querySelectorAll("form[data-progress]").forEach(function (form) {
      form.addEventListener("submit", function (e) {
        if (e.defaultPrevented) return;
        var p = form.querySelector(".progress");
        if (p) {
          p.textContent = "";
          var bar = document.createElement("progress");
          bar.setAttribute("aria-label", form.getAttribute("data-progress"));
          p.appendChild(bar);
          p.appendChild(document.createTextNode(" " + form.getAttribute("data-progress")));
          p.hidden = false;
        }
        form.setAttribute("aria-busy", "true");
        // The button that sent the form keeps its name and value, which
        // a disabled button would not send.
        if (e.submitter && e.submitter.name) {
          var h = document.createElement("input");
          h.type = "hidden"; h.name = e.submitter.name; h.value = e.submitter.value;
          form.appendChild(h);
        }
        setTimeout(function () {
          form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
        }, 0);
      });
    });
  }

  function setupDialogs() {
    document.querySelectorAll("[data-dialog]").forEach(function (link) {
      var d = document.getElementById(link.getAttribute("data-dialog"));
      if (!d || typeof d.showModal !== "function") return;
      link.addEventListener("click", function (e) { e.preventDefault(); d.showModal(); });
    });
    document.querySelectorAll("dialog [data-close]").forEach(function (b) {
      b.addEventListener("click", function () { b.closest("dialog").close(); });
    });
  }

  // Live updates replace table rows; the boxes a person ticked stay ticked.
  var ticked = {};
  document.addEventListener("htmx:sseBeforeMessage", function (e) {
    var el = e.target;
    ticked[el.getAttribute("sse-swap")] = Array.prototype.map.call(el.querySelectorAll("input[type=checkbox]:checked"), function (c) { return c.value; });
  });
  document.addEventListener("htmx:sseMessage", function (e) {
    var el = e.target, keep = ticked[el.getAttribute("sse-swap")] || [];
    el.querySelectorAll("input[type=checkbox]").forEach(function (c) { if (keep.indexOf(c.value) >= 0 && !c.disabled) c.checked = true; });
  });

  document.addEventListener("DOMContentLoaded", function () {
    setupCustomerID();
    setupProgress();
    setupDialogs();
  });
})();
