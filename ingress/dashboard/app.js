// Landlord's dashboard: the tenant list (filtered, a page at a time) and a tenant's page with the
// timeline of its runs, live from the ingress's Server-Sent Events. Plain browser modules, no library:
// every value from the API is put into the page as text (never as HTML).

const TOKEN_KEY = "landlord.token";
const main = document.getElementById("main");
const PAGE = 50;

const STATUSES = ["pending", "provisioning", "active", "suspended", "awaiting_operator", "moving", "failed",
  "offboarding", "deleted"];

function token() { return localStorage.getItem(TOKEN_KEY); }

/** An element with attributes and children (strings become text). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "className") node.className = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

class Unauthorized extends Error {}

/** Calls the admin API with the token; a 401 asks for the token again. */
async function api(path, options = {}) {
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  if (token()) headers.Authorization = `Bearer ${token()}`;
  if (options.body) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { ...options, headers });
  if (res.status === 401) {
    localStorage.removeItem(TOKEN_KEY);
    throw new Unauthorized();
  }
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    const message = body.error ? `${body.error.code}: ${body.error.message}` : `HTTP ${res.status}`;
    throw new Error(message);
  }
  return body;
}

function age(since) {
  const s = Math.max(0, (Date.now() - new Date(since).getTime()) / 1000);
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}

function badge(status) { return el("span", { className: `badge st-${status}` }, status); }

function showLogin(message) {
  main.replaceChildren(el("form", { className: "login", onsubmit: (e) => {
    e.preventDefault();
    const value = e.target.elements.token.value.trim();
    if (!value) return;
    localStorage.setItem(TOKEN_KEY, value);
    route();
  } },
  el("h2", {}, "Admin token"),
  el("p", { className: "muted" }, message || "Enter an admin or viewer token (LANDLORD_ADMIN_TOKENS). It is kept in this browser."),
  el("input", { name: "token", type: "password", autocomplete: "off", "aria-label": "token" }),
  el("button", { type: "submit" }, "Open")));
}

// ---- the tenant list ----

async function showList(params, current) {
  const query = new URLSearchParams();
  for (const key of ["search", "status", "package_id", "failing_step", "after"]) {
    if (params.get(key)) query.set(key, params.get(key));
  }
  query.set("limit", String(PAGE));
  const page = await api(`/v1/tenants?${query}`);
  if (!current()) return;
  const filters = el("form", { className: "filters", onsubmit: (e) => {
    e.preventDefault();
    const f = new URLSearchParams();
    for (const key of ["search", "status", "package_id", "failing_step"]) {
      const v = e.target.elements[key].value.trim();
      if (v) f.set(key, v);
    }
    location.hash = `#/?${f}`;
  } },
  el("label", {}, "subdomain or email starts with", el("input", { name: "search", size: 18, maxLength: 100, value: params.get("search") || "" })),
  el("label", {}, "status", el("select", { name: "status" }, el("option", { value: "" }, "any"),
    STATUSES.map((s) => el("option", { value: s, selected: params.get("status") === s }, s)))),
  el("label", {}, "package", el("input", { name: "package_id", size: 6, value: params.get("package_id") || "" })),
  el("label", {}, "failing step", el("input", { name: "failing_step", size: 14, value: params.get("failing_step") || "" })),
  el("button", { type: "submit" }, "Filter"));
  const rows = page.tenants.map((t) => el("tr", { "data-tenant": t.id },
    el("td", {}, el("a", { href: `#/tenants/${t.id}` }, t.subdomain)),
    el("td", {}, badge(t.status)),
    el("td", {}, t.plan.name || `${t.plan.package_id}/${t.plan.subscription_type_id}`),
    el("td", {}, t.step ? el("span", { className: `st-${t.step.status}` }, `${t.step.name} (${t.step.status === "started" ? "running" : t.step.status})`) : ""),
    el("td", {}, age(t.created_at))));
  const next = new URLSearchParams(params);
  next.set("after", page.next_after || "");
  const first = new URLSearchParams(params);
  first.delete("after");
  main.replaceChildren(el("h2", {}, "Tenants"), filters,
    el("table", { id: "tenants" }, el("thead", {}, el("tr", {}, ["Subdomain", "Status", "Plan", "Step", "Age"].map((h) => el("th", {}, h)))),
      el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: 5, className: "muted" }, "No tenant matches.")))),
    el("div", { className: "pager" },
      params.get("after") ? el("a", { href: `#/?${first}` }, "First page") : null,
      page.next_after ? el("a", { href: `#/?${next}`, id: "next-page" }, "Next page") : null,
      el("span", { className: "muted" }, `${page.tenants.length} shown`)));
}

// ---- one tenant ----

let stream = null;

/** Follows `path` as Server-Sent Events (with the token), reconnecting after the last id seen. */
function follow(path, onEvent) {
  const controller = new AbortController();
  let last = null;
  (async () => {
    while (!controller.signal.aborted) {
      try {
        const headers = { Authorization: `Bearer ${token()}`, Accept: "text/event-stream" };
        if (last !== null) headers["Last-Event-ID"] = last;
        const res = await fetch(path, { headers, signal: controller.signal });
        if (res.status === 401) { localStorage.removeItem(TOKEN_KEY); showLogin(); return; }
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const frame = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            let id = null, data = "";
            for (const line of frame.split("\n")) {
              if (line.startsWith("id:")) id = line.slice(3).trim();
              else if (line.startsWith("data:")) data += line.slice(5).trimStart();
            }
            if (id !== null && data) { last = id; onEvent(JSON.parse(data)); }
          }
        }
      } catch (e) {
        if (controller.signal.aborted) return;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  })();
  return controller;
}

const ACTIONS = [
  { label: "Retry", path: "provision", when: ["failed", "awaiting_operator"], verb: "Retry provisioning of" },
  { label: "Suspend", path: "suspend", when: ["active"], verb: "Suspend" },
  { label: "Resume", path: "resume", when: ["suspended"], verb: "Resume" },
  { label: "Offboard", offboard: "", when: ["active", "suspended"], verb: "Offboard (suspend now, delete after the grace period)", danger: true },
  { label: "Offboard now", offboard: "?now=true", when: ["failed", "awaiting_operator", "offboarding"], verb: "Offboard now (delete the database, DNS records and stack of)", danger: true },
];

async function showTenant(id, current) {
  const view = el("div", { id: "tenant" });
  main.replaceChildren(view);
  // A purchase the workers have not recorded yet: its events come first, the tenant with them.
  let tenant = await api(`/v1/tenants/${encodeURIComponent(id)}`).catch((e) => {
    if (e instanceof Unauthorized || !String(e.message).startsWith("tenant_not_found")) throw e;
    return { id, subdomain: id, store_name: "not recorded yet", status: "pending", plan: {}, created_at: new Date().toISOString() };
  });
  // Another page was asked for while this one loaded: that one owns the screen and the live stream.
  if (!current()) return;
  const head = el("div");
  const reason = el("div");
  const actions = el("div", { className: "actions" });
  const notice = el("div", { className: "notice", id: "notice" });
  const timeline = el("div", { id: "timeline" });
  view.replaceChildren(head, reason, actions, notice, el("h3", {}, "Timeline"), timeline);

  function render() {
    head.replaceChildren(el("h2", {}, tenant.subdomain, " ", badge(tenant.status)),
      el("p", { className: "muted" }, `${tenant.store_name} · ${tenant.plan.name || ""} · ${tenant.id} · created ${age(tenant.created_at)} ago`));
    const waiting = tenant.status === "awaiting_operator";
    const why = waiting ? (tenant.awaiting && tenant.awaiting.reason) || tenant.last_error : tenant.last_error;
    const failing = tenant.step && tenant.step.status === "failed" ? tenant.step.name : null;
    reason.replaceChildren(...(why && ["failed", "awaiting_operator", "offboarding"].includes(tenant.status)
      ? [el("div", { className: `reason${waiting ? " waiting" : ""}`, id: "reason" },
          failing ? `${failing} failed: ` : "", why)]
      : []));
    actions.replaceChildren(...ACTIONS.filter((a) => a.when.includes(tenant.status)).map((a) =>
      el("button", { type: "button", className: a.danger ? "danger" : "", "data-action": a.label.toLowerCase().replace(" ", "-"), onclick: () => act(a) }, a.label)));
  }

  async function act(action) {
    if (!confirm(`${action.verb} tenant ${tenant.subdomain} (${tenant.id})?`)) return;
    try {
      const answer = action.path
        ? await api(`/v1/tenants/${tenant.id}/${action.path}`, { method: "POST" })
        : await api(`/v1/tenants/${tenant.id}${action.offboard}`, { method: "DELETE" });
      notice.textContent = `${action.label} requested: command ${answer.command_id}`;
    } catch (e) {
      if (e instanceof Unauthorized) return showLogin();
      notice.textContent = `${action.label} refused: ${e.message}`;
    }
  }

  // One read of the tenant for a burst of status changes (history replays many at once); only the
  // newest answer is shown.
  let pending = null, asked = 0;
  function refresh() {
    clearTimeout(pending);
    pending = setTimeout(() => {
      const mine = ++asked;
      api(`/v1/tenants/${encodeURIComponent(id)}`).then((t) => { if (mine === asked) { tenant = t; render(); } }).catch(() => {});
    }, 250);
  }

  // The timeline: one box per run, one line per step, updated by every event.
  const runs = new Map();
  function runBox(runId, at) {
    if (!runs.has(runId)) {
      const steps = el("div");
      const box = el("div", { className: "run", "data-run": runId }, el("h3", {}, `Run started ${new Date(at).toLocaleString()}`), steps);
      timeline.prepend(box);
      runs.set(runId, { steps, lines: new Map() });
    }
    return runs.get(runId);
  }
  function onEvent(ev) {
    if (ev.kind === "status_changed") refresh();
    if (!ev.step || !ev.run_id) return;
    const run = runBox(ev.run_id, ev.at);
    let line = run.lines.get(ev.step);
    if (!line) {
      line = { state: el("span"), attempts: el("span"), detail: el("span", { className: "detail" }), history: [] };
      run.lines.set(ev.step, line);
      run.steps.append(el("div", { className: "step", "data-step": ev.step }, el("strong", {}, ev.step), line.state, line.attempts, line.detail));
    }
    const states = { step_started: "running", step_succeeded: "succeeded", step_failed: "failed", step_retrying: "retrying", step_skipped: "skipped", step_undone: "undone" };
    const state = states[ev.kind] || "running";
    line.state.className = `st-${state}`;
    line.state.textContent = state;
    line.state.parentElement.dataset.state = state;
    if (ev.attempt) line.attempts.textContent = `attempt ${ev.attempt}`;
    if (ev.kind !== "step_started") {
      const took = ev.duration_ms !== undefined && ev.duration_ms !== null ? `${ev.duration_ms} ms` : "";
      const text = [took, ev.message].filter(Boolean).join(" · ");
      line.history.push(ev.error ? el("div", { className: "err" }, `${took ? took + " · " : ""}${ev.error.code}: ${ev.error.message}`) : el("div", {}, text));
      line.detail.replaceChildren(...line.history.slice(-4));
    }
  }
  render();
  if (stream) stream.abort();
  stream = follow(`/v1/tenants/${encodeURIComponent(id)}/events`, onEvent);
}

// ---- routing ----

// Which navigation is the newest: a page whose data arrives after the next page was asked for is dropped.
let navigation = 0;

async function route() {
  const mine = ++navigation;
  const current = () => mine === navigation;
  if (stream) { stream.abort(); stream = null; }
  document.getElementById("forget").hidden = !token();
  if (!token()) return showLogin();
  const hash = location.hash.slice(1) || "/";
  const [path, search] = hash.split("?");
  try {
    const match = path.match(/^\/tenants\/([0-9a-f-]{36})$/);
    if (match) await showTenant(match[1], current);
    else await showList(new URLSearchParams(search || ""), current);
  } catch (e) {
    if (!current()) return;
    if (e instanceof Unauthorized) return showLogin("That token was refused; enter another.");
    main.replaceChildren(el("p", { className: "reason" }, e.message));
  }
}

document.getElementById("forget").addEventListener("click", () => { localStorage.removeItem(TOKEN_KEY); route(); });
window.addEventListener("hashchange", route);
route();
