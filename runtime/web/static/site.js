// The submission site's page logic: plain DOM, no framework, no inline script (the CSP forbids it).
// Every API call goes to /api on this origin; POST/PUT bodies carry x-amz-content-sha256, which
// CloudFront's origin access control needs to sign a request to the Lambda function URL.
"use strict";

async function sha256Hex(text) {
  var digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest)).map(function (b) { return b.toString(16).padStart(2, "0"); }).join("");
}

async function api(method, path, body) {
  var options = { method: method, headers: {}, credentials: "same-origin" };
  if (body !== undefined) {
    options.body = JSON.stringify(body);
    options.headers["content-type"] = "application/json";
    options.headers["x-amz-content-sha256"] = await sha256Hex(options.body);
  }
  var response = await fetch(path, options);
  var data = null;
  try { data = await response.json(); } catch (e) { data = { message: response.statusText, fields: {} }; }
  return { status: response.status, data: data };
}

function el(id) { return document.getElementById(id); }

function setMessage(id, text, good) {
  var node = el(id);
  node.textContent = text || "";
  node.className = "message " + (good ? "good" : "bad");
}

function cell(row, text) {
  var td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "—" : String(text);
  row.appendChild(td);
  return td;
}

function localInput(iso) {
  if (!iso) return "";
  var d = new Date(iso);
  var pad = function (n) { return String(n).padStart(2, "0"); };
  return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + "T" + pad(d.getHours()) + ":" + pad(d.getMinutes());
}

function utc(value) { return value ? new Date(value).toISOString() : null; }

async function showIdentity() {
  var me = await api("GET", "/api/me");
  if (me.status === 200) el("whoami").textContent = "Signed in as " + me.data.user;
}

// ---- the change form -------------------------------------------------------------------------
var state = { etag: null, resubmit: null };

function readForm() {
  var doc = {
    change_id: el("change_id").value.trim(),
    title: el("title").value,
    summary: el("summary").value,
    description: el("description").value,
    customers: customerBoxes().filter(function (box) { return box.checked; }).map(function (box) { return box.value; }),
    topic: el("topic").value,
    status: el("status").value,
  };
  var start = utc(el("implementation_start").value), end = utc(el("implementation_end").value);
  if (start) doc.implementation_start = start;
  if (end) doc.implementation_end = end;
  if (el("meeting_wanted").checked) {
    doc.meeting = {
      start_time: utc(el("meeting.start_time").value),
      end_time: utc(el("meeting.end_time").value),
      subject: el("meeting.subject").value || null,
      teams: el("meeting.teams").checked,
      location: el("meeting.location").value || null,
    };
  }
  return doc;
}

function fillForm(doc) {
  ["change_id", "title", "summary", "description", "topic"].forEach(function (name) {
    if (doc[name] !== undefined) el(name).value = doc[name];
  });
  if (doc.status) el("status").value = doc.status;
  el("implementation_start").value = localInput(doc.implementation_start);
  el("implementation_end").value = localInput(doc.implementation_end);
  var chosen = doc.customers || [];
  customerBoxes().forEach(function (box) { box.checked = chosen.indexOf(box.value) >= 0; });
  var m = doc.meeting;
  el("meeting_wanted").checked = !!m;
  el("meeting.start_time").value = m ? localInput(m.start_time) : "";
  el("meeting.end_time").value = m ? localInput(m.end_time) : "";
  el("meeting.subject").value = m && m.subject ? m.subject : "";
  el("meeting.teams").checked = m ? m.teams !== false : true;
  el("meeting.location").value = m && m.location ? m.location : "";
}

function clearErrors() {
  document.querySelectorAll(".error").forEach(function (node) { node.textContent = ""; });
  document.querySelectorAll("[aria-invalid]").forEach(function (node) { node.removeAttribute("aria-invalid"); });
}

function showErrors(fields) {
  var first = null;
  Object.keys(fields || {}).forEach(function (where) {
    var parts = where.split(".");
    var id = parts[0] === "meeting" && parts.length > 1 ? "meeting." + parts[1] : parts[0];
    var node = el("error-" + id) || el("error-change_id");
    if (!node) return;
    node.textContent = node.textContent ? node.textContent + " " + fields[where] : fields[where];
    var control = el(id);
    if (control) {
      control.setAttribute("aria-invalid", "true");
      // A group (the customers) takes the focus on its first box: a fieldset cannot hold it.
      if (!first) first = control.tagName === "FIELDSET" ? control.querySelector("input") : control;
    }
  });
  if (first) first.focus();
}

// One checkbox per customer, not a multiple-select list: a list needs arrow keys with modifiers to pick
// two customers apart, a checkbox only Tab and Space.
function customerBoxes() { return Array.from(document.querySelectorAll("#customers input[type=checkbox]")); }

async function loadCustomers() {
  var result = await api("GET", "/api/customers");
  var choices = el("customer-choices");
  (result.data.customers || []).forEach(function (code) {
    var choice = document.createElement("div");
    choice.className = "choice";
    var box = document.createElement("input");
    box.type = "checkbox"; box.name = "customers"; box.value = code; box.id = "customer-" + code;
    var label = document.createElement("label");
    label.htmlFor = box.id; label.textContent = code;
    choice.appendChild(box); choice.appendChild(label);
    choices.appendChild(choice);
  });
}

async function validate() {
  clearErrors();
  var result = await api("POST", "/api/validate", readForm());
  if (result.status !== 200) { setMessage("form-message", result.data.message); return; }
  if (result.data.valid) setMessage("form-message", "The change is valid.", true);
  else { setMessage("form-message", result.data.message); showErrors(result.data.fields); }
}

async function saveDraft() {
  clearErrors();
  var doc = readForm();
  if (!doc.change_id) { showErrors({ change_id: "give the change an id to save it as a draft" }); return; }
  var result = await api("PUT", "/api/drafts/" + encodeURIComponent(doc.change_id), { draft: doc, etag: state.etag });
  if (result.status === 200) {
    state.etag = result.data.etag;
    setMessage("form-message", "Draft " + doc.change_id + " saved by " + result.data.saved_by + ".", true);
  } else {
    setMessage("form-message", result.data.message);
    showErrors(result.data.fields);
  }
}

async function openDraft(event) {
  event.preventDefault();
  var id = el("open-draft-id").value.trim();
  var result = await api("GET", "/api/drafts/" + encodeURIComponent(id));
  if (result.status !== 200) { setMessage("form-message", result.data.message); return; }
  fillForm(result.data.draft);
  state.etag = result.data.etag;
  setMessage("form-message", "Draft " + id + " opened (saved by " + (result.data.draft.saved_by || "?") + ").", true);
  el("title").focus();
}

async function submitChange(event) {
  event.preventDefault();
  clearErrors();
  var doc = readForm();
  var path = state.resubmit ? "/api/changes/" + encodeURIComponent(state.resubmit) + "/revisions" : "/api/changes";
  var result = await api("POST", path, doc);
  if (result.status !== 201) {
    setMessage("form-message", result.data.message || result.data.error);
    showErrors(result.data.fields);
    if (!result.data.customers) return;
  } else {
    setMessage("form-message", "", true);
  }
  var rows = el("result-rows");
  rows.textContent = "";
  result.data.customers.forEach(function (c) {
    var row = document.createElement("tr");
    row.id = "trigger-" + c.customer;
    cell(row, c.customer);
    cell(row, c.trigger_written ? "trigger written" : "NOT written");
    rows.appendChild(row);
  });
  el("result-summary").textContent = result.data.change_id + " revision " + result.data.revision + " archived.";
  el("result-link").href = "/change.html?id=" + encodeURIComponent(result.data.change_id);
  el("result").hidden = false;
  el("result-link").focus();
}

async function startEdit() {
  await loadCustomers();
  var params = new URLSearchParams(window.location.search);
  var id = params.get("change");
  if (id) {
    var current = await api("GET", "/api/changes/" + encodeURIComponent(id));
    if (current.status === 200) {
      fillForm(current.data.document);
      el("change_id").readOnly = true;
      state.resubmit = id;
      el("form-heading").textContent = "Resubmit " + id + " (revision " + (current.data.revision + 1) + ")";
    }
  }
  el("validate-button").addEventListener("click", validate);
  el("save-draft-button").addEventListener("click", saveDraft);
  el("open-draft").addEventListener("submit", openDraft);
  el("change-form").addEventListener("submit", submitChange);
}

// ---- a change's page -------------------------------------------------------------------------
function fact(list, name, value) {
  var dt = document.createElement("dt"); dt.textContent = name;
  var dd = document.createElement("dd"); dd.textContent = value === null || value === undefined ? "—" : String(value);
  list.appendChild(dt); list.appendChild(dd);
}

function when(start, end) {
  var show = function (iso) { return iso ? new Date(iso).toLocaleString() : "—"; };
  return show(start) + " → " + show(end);
}

// The meeting in words: what the coordinator scheduled (or cancelled), else what the change asks for.
function renderMeeting(node, scheduled, asked) {
  node.textContent = "";
  if (scheduled && scheduled.cancelled) {
    node.textContent = "Cancelled (revision " + scheduled.revision + ").";
    return;
  }
  if (!scheduled) {
    node.textContent = asked ? "Requested for " + when(asked.start_time, asked.end_time) + ", not scheduled yet."
      : "No meeting requested.";
    return;
  }
  var attendees = scheduled.attendees_total !== null && scheduled.attendees_total !== undefined
    ? scheduled.attendees_total : (scheduled.attendees || []).length;
  var parts = [
    "Scheduled: " + (scheduled.subject || "(no subject)"),
    when(scheduled.start_time, scheduled.end_time),
    attendees + " attendees",
  ];
  if (scheduled.organizer) parts.push("organizer " + scheduled.organizer);
  if (scheduled.location) parts.push("at " + scheduled.location);
  if (scheduled.revision) parts.push("revision " + scheduled.revision);
  node.textContent = parts.join(" · ");
  if (/^https:\/\//.test(scheduled.join_url || "")) {
    var link = document.createElement("a");
    link.href = scheduled.join_url; link.textContent = "Join the Teams meeting"; link.rel = "noopener";
    node.appendChild(document.createTextNode(" · "));
    node.appendChild(link);
  }
}

function renderChange(data) {
  el("change-heading").textContent = data.change_id + ": " + (data.title || "");
  var facts = el("change-facts"); facts.textContent = "";
  fact(facts, "Status", data.status);
  fact(facts, "Revision", data.revision);
  fact(facts, "Processing", data.complete ? "complete" : "running (pending: " + (data.pending.join(", ") || "none") + ")");
  fact(facts, "Implementation", (data.document.implementation_start || "—") + " → " + (data.document.implementation_end || "—"));
  var rows = el("customer-rows"); rows.textContent = "";
  data.customers.forEach(function (c) {
    var row = document.createElement("tr");
    row.id = "customer-" + c.customer;
    cell(row, c.customer);
    cell(row, c.state_text || c.state).className = "state";
    cell(row, (c.processed_revisions || []).join(", "));
    cell(row, c.emails_sent);
    cell(row, [c.sent, c.rejected, c.recipients].map(function (v) { return v === null ? "—" : v; }).join(" / "));
    cell(row, c.trigger ? "present" : "none");
    rows.appendChild(row);
  });
  renderMeeting(el("meeting"), data.meeting_metadata, data.meeting);
  var audit = el("audit-rows"); audit.textContent = "";
  data.modifications.forEach(function (m) {
    var row = document.createElement("tr");
    cell(row, m.timestamp); cell(row, m.user_id); cell(row, m.modification_type);
    cell(row, m.revision); cell(row, (m.customers || []).join(", ") || m.customer_code);
    audit.appendChild(row);
  });
  el("revisions").textContent = (data.revisions || []).map(function (r) { return "revision " + r; }).join(", ");
}

async function refreshChange(id) {
  var result = await api("GET", "/api/changes/" + encodeURIComponent(id));
  if (result.status !== 200) { setMessage("change-message", result.data.message); return; }
  setMessage("change-message", result.data.complete ? "Processed for every customer." : "Processing… this page refreshes every 3 seconds.", result.data.complete);
  renderChange(result.data);
  if (!result.data.complete) window.setTimeout(function () { refreshChange(id); }, 3000);
}

function startChange() {
  var id = new URLSearchParams(window.location.search).get("id") || "";
  el("resubmit-link").href = "/index.html?change=" + encodeURIComponent(id);
  refreshChange(id);
}

document.addEventListener("DOMContentLoaded", function () {
  showIdentity();
  if (document.body.dataset.page === "edit") startEdit();
  else if (document.body.dataset.page === "change") startChange();
});
