// ferrymq web console: plain JavaScript over the admin REST API (/api), no build step.
// Views are chosen by the URL hash (#/topics/orders); each view renders into <main id="view">.
"use strict";

const TOKEN_KEY = "ferrymq.adminToken";
let pollTimer = null; // the active view's refresh timer, stopped on every navigation
let routeGen = 0; // a render that finishes after a newer one started is dropped

// ---- helpers -------------------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function table(headers, rows, opts = {}) {
  const numeric = new Set(opts.numeric || []);
  return h("table", { id: opts.id },
    h("thead", {}, h("tr", {}, headers.map((t, i) => h("th", { class: numeric.has(i) ? "num" : null }, t)))),
    h("tbody", {}, rows.length
      ? rows.map((r) => h("tr", {}, r.map((c, i) => h("td", { class: numeric.has(i) ? "num" : null }, c))))
      : h("tr", {}, h("td", { colspan: headers.length, class: "muted" }, opts.empty || "none"))));
}

const fmtTime = (ms) => (ms ? new Date(ms).toLocaleString() : "—");
const fmtBytes = (n) => {
  if (n === null || n === undefined) return "—";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
};
const fmtUptime = (s) => {
  if (s === null || s === undefined) return "—";
  const d = Math.floor(s / 86400), hr = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  return d ? `${d}d ${hr}h` : hr ? `${hr}h ${m}m` : `${m}m ${Math.floor(s % 60)}s`;
};
const link = (href, text) => h("a", { href }, text);
const enc = encodeURIComponent;

function notice(text, kind = "error") {
  const el = document.getElementById("notice");
  el.textContent = text;
  el.className = kind === "info" ? "info" : "";
  el.hidden = !text;
}

class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const token = localStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (resp.status === 401) {
    askToken();
    throw new ApiError(401, "this broker needs an admin token");
  }
  if (resp.status === 204) return null;
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    let detail = data.detail;
    if (Array.isArray(detail)) detail = detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
    throw new ApiError(resp.status, `${resp.status}: ${detail || resp.statusText}`);
  }
  return data;
}

function askToken() {
  const dialog = document.getElementById("token-dialog");
  if (!dialog.open) dialog.showModal();
}

function formValues(form) {
  return Object.fromEntries(new FormData(form).entries());
}

// ---- views ---------------------------------------------------------------------------------

async function viewOverview(root) {
  const c = await api("GET", "/api/cluster");
  const me = c.brokers.find((b) => b.local) || {};
  const topics = await api("GET", "/api/topics?kind=normal");
  const groups = await api("GET", "/api/groups");
  root.append(
    h("h1", {}, "Cluster"),
    h("div", { class: "cards" },
      h("div", { class: "card" }, h("b", {}, c.brokers.length), h("span", {}, "brokers")),
      h("div", { class: "card" }, h("b", {}, topics.length), h("span", {}, "topics")),
      h("div", { class: "card" }, h("b", {}, groups.length), h("span", {}, "consumer groups")),
      h("div", { class: "card" }, h("b", {}, fmtUptime(me.uptime_seconds)), h("span", {}, "uptime")),
      h("div", { class: "card" }, h("b", {}, fmtBytes(me.disk_used_bytes)), h("span", {}, "store on disk"))),
    h("h2", {}, "Name servers"),
    table(["address", "status"], c.name_servers.map((n) => [
      n.addr, h("span", { class: n.reachable ? "ok" : "bad" }, n.reachable ? "reachable" : "unreachable")])),
    h("h2", {}, "Brokers"),
    table(["cluster", "broker", "id", "address", "role", "replication", "version", "uptime", "disk", "disk use",
      "in", "out"],
      c.brokers.map((b) => [
        b.cluster, b.broker_name + (b.local ? " (this)" : ""), b.broker_id, b.addr,
        (b.replication && b.replication.broker_role) || b.role, fmtReplication(b.replication),
        b.version || "—", fmtUptime(b.uptime_seconds), fmtBytes(b.disk_used_bytes),
        b.disk_used_ratio === null ? "—" : `${(b.disk_used_ratio * 100).toFixed(1)}%`,
        b.put_messages ?? "—", b.get_messages ?? "—"]),
      { id: "brokers", numeric: [2, 10, 11] }),
    ...replicaTables(c.brokers));
  const charts = [
    [chartBox("chart-broker-in", "Messages in per second (broker)"), "broker_in_rate", {}, fmtRate],
    [chartBox("chart-broker-out", "Messages out per second (broker)"), "broker_out_rate", {}, fmtRate],
    [chartBox("chart-topic-in", "Messages in per second by topic"), "topic_in_rate", {}, fmtRate],
    [chartBox("chart-topic-out", "Messages out per second by topic"), "topic_out_rate", {}, fmtRate],
    [chartBox("chart-group-lag", "Consumer lag by group"), "group_lag", {}, fmtCount],
    [chartBox("chart-disk", "Store disk use"), "disk_used_bytes", {}, fmtBytes],
  ];
  if (c.brokers.some((b) => b.local && b.replication && b.replication.slaves.length)) {
    charts.push([chartBox("chart-replication", "Replication lag by slave"), "replication_lag_bytes", {}, fmtBytes]);
  }
  root.querySelector("h2").before(h("h2", {}, "Last hour"), h("div", { class: "charts" }, charts.map((x) => x[0])));
  return { every: 2000, refresh: () => refreshCharts(charts), charts };
}

// a master's in-sync slaves and worst lag, a slave's link to its master
function fmtReplication(r) {
  if (!r) return "—";
  if (r.broker_role === "SLAVE") {
    return h("span", { class: r.master_connected ? "ok" : "bad" },
      `master ${r.master_ha_addr || "?"} ${r.master_connected ? "up" : "down"}`);
  }
  if (!r.slaves.length) return "no slaves";
  const lag = Math.max(...r.slaves.map((s) => s.lag_bytes));
  const msgs = Math.max(...r.slaves.map((s) => s.lag_messages ?? 0));
  const epoch = r.epoch == null ? "" : `epoch ${r.epoch}, `;
  return `${epoch}in sync ${r.in_sync_slaves}/${r.slaves.length}, lag ${fmtBytes(lag)}, ${msgs} msgs`;
}

// one table per master with slaves: each slave's acknowledged offset, lag and whether it is in sync
function replicaTables(brokers) {
  return brokers.filter((b) => b.replication && b.replication.slaves.length).flatMap((b) => [
    h("h2", {}, `Slaves of ${b.broker_name} (${b.addr})`),
    table(["slave", "acknowledged offset", "lag", "lag (messages)", "in sync"], b.replication.slaves.map((s) => [
      s.addr, s.ack_offset, fmtBytes(s.lag_bytes), s.lag_messages ?? "—",
      h("span", { class: s.in_sync ? "ok" : "bad" }, s.in_sync ? "yes" : "no")]),
    { id: `slaves-${b.broker_name}`, numeric: [1] })]);
}

async function viewTopics(root) {
  const showAll = sessionStorage.getItem("ferrymq.allTopics") === "1";
  const topics = await api("GET", "/api/topics");
  const shown = topics.filter((t) => showAll || t.kind === "normal");
  const form = h("form", { class: "panel", id: "create-topic" },
    h("div", { class: "row" },
      h("label", {}, "name", h("input", { name: "name", id: "create-topic-name", required: true, pattern: "[%|a-zA-Z0-9_\\-]+" })),
      h("label", {}, "queues", h("input", { name: "queues", id: "create-topic-queues", type: "number", min: 1, max: 1024, value: 8 })),
      h("label", {}, "permission", h("select", { name: "perm", id: "create-topic-perm" },
        h("option", { value: 6 }, "read + write"), h("option", { value: 4 }, "read only"), h("option", { value: 2 }, "write only"))),
      h("button", { id: "create-topic-submit" }, "Create topic")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const v = formValues(form);
    try {
      await api("POST", "/api/topics", { name: v.name, queues: Number(v.queues), perm: Number(v.perm) });
      notice(`topic ${v.name} created`, "info");
      location.hash = `#/topics/${enc(v.name)}`;
    } catch (e) { notice(e.message); }
  });
  const toggle = h("label", { style: "flex-direction:row;gap:6px" },
    h("input", { type: "checkbox", checked: showAll, onchange: (e) => {
      sessionStorage.setItem("ferrymq.allTopics", e.target.checked ? "1" : "0"); route(); } }),
    "show system, retry and DLQ topics");
  root.append(h("h1", {}, "Topics"), form, toggle,
    table(["topic", "kind", "read queues", "write queues", "perm", "messages"],
      shown.map((t) => [link(`#/topics/${enc(t.name)}`, t.name), t.kind, t.read_queues, t.write_queues, t.perm_text, t.messages]),
      { id: "topics", numeric: [2, 3, 5], empty: "no topics yet: create one above" }));
}

async function viewTopic(root, name) {
  const t = await api("GET", `/api/topics/${enc(name)}`);
  const routeRows = t.route ? t.route.broker_datas.map((b) => {
    const q = t.route.queue_datas.find((x) => x.broker_name === b.broker_name) || {};
    return [b.cluster, b.broker_name, Object.entries(b.addrs).map(([id, a]) => `${id}: ${a}`).join(", "),
      q.read_queues ?? "—", q.write_queues ?? "—", q.perm ?? "—"];
  }) : [];
  const edit = h("form", { class: "panel", id: "update-topic" },
    h("div", { class: "row" },
      h("label", {}, "read queues", h("input", { name: "read_queues", type: "number", min: 1, max: 1024, value: t.read_queues })),
      h("label", {}, "write queues", h("input", { name: "write_queues", type: "number", min: 1, max: 1024, value: t.write_queues })),
      h("label", {}, "permission", h("select", { name: "perm" },
        [[6, "read + write"], [4, "read only"], [2, "write only"]].map(([v, l]) =>
          h("option", { value: v, selected: t.perm % 8 === v || (t.perm & 6) === v }, l)))),
      h("button", {}, "Update"),
      h("button", { type: "button", class: "plain", id: "delete-topic", onclick: async () => {
        if (!confirm(`Delete topic ${name}?`)) return;
        try { await api("DELETE", `/api/topics/${enc(name)}`); notice(`topic ${name} deleted`, "info"); location.hash = "#/topics"; }
        catch (e) { notice(e.message); }
      } }, "Delete")));
  edit.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const v = formValues(edit);
    try {
      await api("PATCH", `/api/topics/${enc(name)}`, { read_queues: Number(v.read_queues), write_queues: Number(v.write_queues), perm: Number(v.perm) });
      notice(`topic ${name} updated`, "info");
      route();
    } catch (e) { notice(e.message); }
  });
  root.append(
    h("h1", {}, `Topic ${t.name}`),
    h("p", {}, `${t.kind} · permission ${t.perm_text} · ${t.messages} messages · `,
      link(`#/send?topic=${enc(t.name)}`, "send a message"), " · ",
      link(`#/messages?topic=${enc(t.name)}`, "browse messages")),
    edit,
    h("h2", {}, "Queues"),
    table(["queue", "min offset", "max offset", "messages", "last stored", ""],
      t.queues.map((q) => [q.queue_id, q.min_offset, q.max_offset, q.messages, fmtTime(q.last_store_time),
        q.messages ? link(`#/messages?topic=${enc(t.name)}&queue=${q.queue_id}`, "view") : ""]),
      { id: "queues", numeric: [0, 1, 2, 3] }),
    h("h2", {}, "Route (from the name servers)"),
    table(["cluster", "broker", "addresses", "read queues", "write queues", "perm"], routeRows,
      { empty: "not registered yet" }));
}

async function viewGroups(root) {
  const groups = await api("GET", "/api/groups");
  root.append(h("h1", {}, "Consumer groups"),
    table(["group", "protocol", "state", "members", "topics", "total lag"],
      groups.map((g) => [link(`#/groups/${enc(g.name)}`, g.name), g.protocol, g.state, g.member_count,
        g.topics.join(", "), g.total_lag]),
      { id: "groups", numeric: [3, 5], empty: "no consumer groups yet" }));
}

// ---- charts: uPlot (static/uPlot.iife.min.js) over GET /api/timeseries ------------------------

const PALETTE = ["#2358c9", "#e8590c", "#2f9e44", "#ae3ec9", "#f08c00", "#0c8599", "#c2255c", "#5c940d"];
const MAX_LINES = 8; // a chart draws at most this many series: the busiest ones

async function timeseries(metric, filter = {}) {
  const q = new URLSearchParams({ metric });
  for (const [k, v] of Object.entries(filter)) if (v !== undefined && v !== null) q.set(k, v);
  return api("GET", `/api/timeseries?${q}`);
}

// a series' legend: its labels in this order, less those the chart is filtered on (unless that is all)
const seriesName = (labels, filter = {}) => {
  const names = (keep) => ["group", "topic", "queue", "slave"].filter((k) => k in labels && keep(k)).map((k) => labels[k]);
  return (names((k) => !(k in filter)).join(" / ") || names(() => true).join(" / ")) || "broker";
};
const fmtRate = (v) => (v === null || v === undefined ? "—" : v >= 100 ? v.toFixed(0) : v.toFixed(2));
const fmtCount = (v) => (v === null || v === undefined ? "—" : Number.isInteger(v) ? String(v) : v.toFixed(1));

// a titled box whose chart is (re)drawn by drawChart; the uPlot instance and its data stay on the box
function chartBox(id, title) {
  return h("section", { class: "chart", id }, h("h3", {}, title), h("div", { class: "plot" }));
}

function drawChart(box, ts, fmt, filter) {
  const busiest = ts.series
    .map((s) => [s, s.values.reduce((a, v) => a + (v || 0), 0)])
    .sort((a, b) => b[1] - a[1]).slice(0, MAX_LINES).map((x) => x[0]);
  const data = [ts.timestamps.map((t) => t / 1000), ...busiest.map((s) => s.values)];
  const names = busiest.map((s) => seriesName(s.labels, filter));
  const plot = box.querySelector(".plot");
  box.dataset.points = String(ts.timestamps.length);
  box.dataset.series = JSON.stringify(names);
  const width = Math.max(300, plot.clientWidth || box.clientWidth - 28 || 560);
  const u = box._uplot;
  if (u && u.series.length - 1 === names.length && names.every((n, i) => u.series[i + 1].label === n)) {
    u.setData(data);
    if (Math.abs(u.width - width) > 4) u.setSize({ width, height: 180 });
    return;
  }
  if (u) u.destroy();
  plot.replaceChildren();
  if (!names.length) {
    plot.append(h("p", { class: "muted" }, ts.timestamps.length ? "nothing to draw yet" : "no samples yet"));
    box._uplot = null;
    return;
  }
  box._uplot = new uPlot({
    width, height: 180,
    legend: { live: true },
    cursor: { drag: { x: true, y: false } },
    scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
    axes: [{ stroke: "#687085", grid: { stroke: "#eef0f4" } },
      { stroke: "#687085", grid: { stroke: "#eef0f4" }, size: 76, values: (_u, vals) => vals.map(fmt) }],
    series: [{}, ...names.map((label, i) => ({
      label, stroke: PALETTE[i % PALETTE.length], width: 2, spanGaps: false,
      fill: names.length === 1 ? "rgba(35, 88, 201, .10)" : undefined, value: (_u, v) => fmt(v) }))],
  }, data, plot);
}

// boxes redrawn from the time-series API: [box, metric, filter, formatter]
async function refreshCharts(charts) {
  const all = await Promise.all(charts.map(([, metric, filter]) => timeseries(metric, filter)));
  charts.forEach(([box, , filter, fmt], i) => drawChart(box, all[i], fmt, filter));
  return all;
}

async function viewGroup(root, name) {
  const g = await api("GET", `/api/groups/${enc(name)}`);
  const reset = h("form", { class: "panel", id: "reset-offset" },
    h("div", { class: "row" },
      h("label", {}, "reset to", h("select", { name: "to" },
        h("option", { value: "latest" }, "latest (skip everything)"),
        h("option", { value: "earliest" }, "earliest (re-consume)"),
        h("option", { value: "time" }, "a point in time"))),
      h("label", {}, "time", h("input", { name: "time", type: "datetime-local" })),
      h("label", {}, "topic", h("select", { name: "topic" }, h("option", { value: "" }, "all topics"),
        g.topics.map((t) => h("option", { value: t }, t)))),
      h("label", { style: "flex-direction:row;gap:6px" }, h("input", { type: "checkbox", name: "force" }), "even with live members"),
      h("button", {}, "Reset offsets")));
  const live = h("div", {});
  const charts = [
    [chartBox("chart-group-lag", "Lag over time"), "group_lag", { group: name }, fmtCount],
    [chartBox("chart-queue-lag", "Lag per queue"), "queue_lag", { group: name }, fmtCount],
  ];
  // the parts that change: redrawn every poll, while the form above and the charts stay
  const draw = (g) => {
    live.replaceChildren(
      h("div", { class: "cards" },
        h("div", { class: "card" }, h("b", { id: "group-total-lag" }, g.total_lag), h("span", {}, "total lag")),
        h("div", { class: "card" }, h("b", {}, g.member_count), h("span", {}, "members")),
        h("div", { class: "card" }, h("b", {}, g.state), h("span", {}, `state (${g.protocol})`))),
      h("h2", {}, "Queues"),
      table(["topic", "queue", "broker offset", "committed", "lag", "last stored"],
        g.queues.map((q) => [q.topic, q.queue_id, q.broker_offset, q.committed_offset ?? "—", q.lag, fmtTime(q.last_store_time)]),
        { id: "group-queues", numeric: [1, 2, 3, 4] }),
      h("h2", {}, "Members"),
      table(["client id", "address", "client", "version", "last heartbeat"],
        g.members.map((m) => [m.client_id, m.address, m.client, m.version,
          m.last_seen_ms_ago === null ? "—" : `${(m.last_seen_ms_ago / 1000).toFixed(0)} s ago`]),
        { empty: "no live members" }),
      h("h2", {}, "Subscriptions"),
      table(["topic", "expression"], g.subscriptions.map((s) => [s.topic, s.expression])));
  };
  const refresh = async () => {
    draw(await api("GET", `/api/groups/${enc(name)}`));
    await refreshCharts(charts);
  };
  reset.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const v = formValues(reset);
    const body = { to: v.to === "time" ? new Date(v.time).getTime() : v.to, force: v.force === "on" };
    if (v.topic) body.topic = v.topic;
    try {
      const r = await api("POST", `/api/groups/${enc(name)}/reset-offset`, body);
      notice(`reset ${r.offsets.length} queue(s)`, "info");
      await refresh();
    } catch (e) { notice(e.message); }
  });
  draw(g);
  root.append(h("h1", {}, `Group ${g.name}`),
    h("div", { class: "charts" }, charts.map((c) => c[0])), live, h("h2", {}, "Reset offsets"), reset);
  return { every: 2000, refresh, charts };
}

function messageTable(messages) {
  return table(["stored", "topic", "queue", "offset", "tags", "keys", "body", ""],
    messages.map((m) => [fmtTime(m.store_timestamp), m.topic, m.queue_id, m.queue_offset, m.tags || "",
      m.keys.join(" "), m.body_encoding === "text" ? m.body.slice(0, 80) : `(${m.body_size} bytes, binary)`,
      link(`#/message/${enc(m.msg_id)}`, "view")]),
    { id: "search-results", numeric: [2, 3], empty: "no messages found" });
}

async function viewMessages(root, params) {
  const topics = (await api("GET", "/api/topics")).filter((t) => t.kind !== "system");
  const topicSelect = (id, selected) => h("select", { name: "topic", id },
    topics.map((t) => h("option", { value: t.name, selected: t.name === selected }, t.name)));
  const byKey = h("form", { class: "panel", id: "search-form" },
    h("div", { class: "row" },
      h("label", {}, "topic", topicSelect("search-topic", params.get("topic"))),
      h("label", {}, "key (KEYS or unique key; empty: newest)", h("input", { name: "key", id: "search-key", value: params.get("key") || "" })),
      h("button", { id: "search-submit" }, "Search")));
  const byId = h("form", { class: "panel", id: "lookup-form" },
    h("div", { class: "row" },
      h("label", {}, "message id", h("input", { name: "id", id: "lookup-id", size: 40 })),
      h("button", {}, "Look up")));
  const byQueue = h("form", { class: "panel", id: "queue-form" },
    h("div", { class: "row" },
      h("label", {}, "topic", topicSelect("queue-topic", params.get("topic"))),
      h("label", {}, "queue", h("input", { name: "queue", type: "number", min: 0, value: params.get("queue") || 0 })),
      h("label", {}, "offset (empty: newest)", h("input", { name: "offset", type: "number", min: 0, value: params.get("offset") || "" })),
      h("button", {}, "Read queue")));
  const results = h("div", { id: "results" });
  byKey.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = formValues(byKey);
    location.hash = `#/messages?topic=${enc(v.topic)}&key=${enc(v.key)}&run=1`;
  });
  byId.addEventListener("submit", (ev) => {
    ev.preventDefault();
    location.hash = `#/message/${enc(formValues(byId).id.trim())}`;
  });
  byQueue.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = formValues(byQueue);
    location.hash = `#/messages?topic=${enc(v.topic)}&queue=${enc(v.queue)}&offset=${enc(v.offset)}`;
  });
  root.append(h("h1", {}, "Messages"), byKey, byId, byQueue, results);
  const topic = params.get("topic");
  if (topic && params.has("queue")) {
    const q = new URLSearchParams({ count: "32" });
    if (params.get("offset")) q.set("offset", params.get("offset"));
    const r = await api("GET", `/api/topics/${enc(topic)}/queues/${enc(params.get("queue"))}/messages?${q}`);
    results.append(h("p", { class: "muted" }, `queue ${r.queue_id}: offsets ${r.min_offset}..${r.max_offset}, next ${r.next_offset}`),
      messageTable(r.messages));
  } else if (topic && params.get("run")) {
    const q = new URLSearchParams({ topic });
    if (params.get("key")) q.set("key", params.get("key"));
    results.append(messageTable(await api("GET", `/api/messages?${q}`)));
  }
}

async function viewMessage(root, id) {
  const m = await api("GET", `/api/messages/${enc(id)}`);
  root.append(h("h1", {}, "Message"),
    h("section", { id: "message-view" },
      table(["field", "value"], [
        ["message id", m.msg_id], ["unique key", m.unique_key || "—"], ["topic", link(`#/topics/${enc(m.topic)}`, m.topic)],
        ["queue / offset", `${m.queue_id} / ${m.queue_offset}`], ["commit-log offset", m.commit_log_offset],
        ["tags", m.tags || "—"], ["keys", m.keys.join(" ") || "—"], ["born", `${fmtTime(m.born_timestamp)} from ${m.born_host}`],
        ["stored", `${fmtTime(m.store_timestamp)} on ${m.store_host}`], ["reconsume times", m.reconsume_times],
        ["body", h("span", {}, `${m.body_size} bytes, ${m.body_encoding}`)]]),
      h("h2", {}, "Body"), h("pre", { id: "message-body" }, m.body),
      h("h2", {}, "Properties"),
      table(["name", "value"], Object.entries(m.properties).map(([k, v]) => [k, v]))),
    h("h2", {}, "Trace"), await traceSection(id));
}

// where the message was stored and who consumed it when (RMQ_SYS_TRACE_TOPIC, written by clients
// with trace on)
async function traceSection(id) {
  let t;
  try { t = await api("GET", `/api/messages/${enc(id)}/trace`); } catch (e) { return h("p", { class: "bad" }, e.message); }
  const s = t.stored;
  const fmtOk = (ok) => (ok === null ? h("span", { class: "muted" }, "in progress")
    : h("span", { class: ok ? "ok" : "bad" }, ok ? "success" : "failed"));
  return h("section", { id: "message-trace" },
    s ? h("p", { id: "trace-stored" }, `stored on ${s.broker} (${s.store_host}) in ${s.topic}, queue ${s.queue_id}, `
      + `offset ${s.queue_offset}, at ${fmtTime(s.store_timestamp)}`) : h("p", { class: "muted" }, "not stored on this broker"),
    t.trace_records ? null : h("p", { class: "muted" }, "no trace records: the clients did not have message trace on"),
    table(["producer group", "topic", "sent", "took", "result", "store host"], t.published.map((p) => [
      p.producer_group, p.topic, fmtTime(p.timestamp), `${p.cost_ms} ms`, fmtOk(p.success), p.store_host]),
    { id: "trace-published", empty: "no send recorded" }),
    table(["consumer group", "delivered", "took", "result", "retries"], t.consumed.map((c) => [
      c.group, fmtTime(c.begin_timestamp), c.cost_ms === null ? "—" : `${c.cost_ms} ms`, fmtOk(c.success), c.retry_times]),
    { id: "trace-consumed", empty: "no consumption recorded" }));
}

async function viewSend(root, params) {
  const topics = (await api("GET", "/api/topics")).filter((t) => t.kind === "normal");
  const form = h("form", { class: "panel", id: "send-form" },
    h("div", { class: "row" },
      h("label", {}, "topic", h("select", { name: "topic", id: "send-topic" },
        topics.map((t) => h("option", { value: t.name, selected: t.name === params.get("topic") }, t.name)))),
      h("label", {}, "tags", h("input", { name: "tags", id: "send-tags" })),
      h("label", {}, "keys (space separated)", h("input", { name: "keys", id: "send-keys" }))),
    h("label", { style: "display:flex" }, "body", h("textarea", { name: "body", id: "send-body" })),
    h("label", { style: "display:flex" }, "properties (name=value per line)", h("textarea", { name: "props", id: "send-props", style: "min-height:40px" })),
    h("button", { id: "send-submit" }, "Send"));
  const result = h("div", { id: "send-result" });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const v = formValues(form);
    const properties = {};
    for (const line of v.props.split("\n")) {
      const i = line.indexOf("=");
      if (i > 0) properties[line.slice(0, i).trim()] = line.slice(i + 1).trim();
    }
    const body = { body: v.body, properties };
    if (v.tags) body.tags = v.tags;
    const keys = v.keys.split(/\s+/).filter(Boolean);
    if (keys.length) body.keys = keys;
    try {
      const r = await api("POST", `/api/topics/${enc(v.topic)}/messages`, body);
      result.replaceChildren(h("section", {}, "Sent: ", link(`#/message/${enc(r.msg_id)}`, r.msg_id),
        ` (queue ${r.queue_id}, offset ${r.queue_offset})`));
    } catch (e) { notice(e.message); }
  });
  root.append(h("h1", {}, "Send a message"),
    topics.length ? form : h("p", {}, "No topics yet: ", link("#/topics", "create one")), result);
}

// ---- routing -------------------------------------------------------------------------------

async function route() {
  clearTimeout(pollTimer);
  pollTimer = null;
  const gen = ++routeGen;
  const hash = location.hash.slice(1) || "/overview";
  const [path, query] = hash.split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const views = {
    overview: () => viewOverview,
    topics: () => (parts[1] !== undefined ? (r) => viewTopic(r, parts[1]) : viewTopics),
    groups: () => (parts[1] !== undefined ? (r) => viewGroup(r, parts[1]) : viewGroups),
    messages: () => (r) => viewMessages(r, params),
    message: () => (r) => viewMessage(r, parts[1]),
    send: () => (r) => viewSend(r, params),
  };
  const name = views[parts[0]] ? parts[0] : "overview";
  for (const a of document.querySelectorAll("nav a")) {
    a.classList.toggle("active", a.dataset.view === name || (name === "message" && a.dataset.view === "messages"));
  }
  const fresh = h("main", { id: "view" });
  let result = null;
  try {
    result = await views[name]()(fresh);
  } catch (e) {
    fresh.append(h("p", { class: "bad" }, e.message));
  }
  if (gen !== routeGen) return;
  document.getElementById("view").replaceWith(fresh);
  if (result && result.charts) {
    try { await refreshCharts(result.charts); } catch (e) { notice(e.message); }
  }
  if (result && result.refresh) {
    const tick = async () => {
      if (gen !== routeGen) return;
      try { await result.refresh(); } catch (e) { notice(e.message); }
      if (gen === routeGen) pollTimer = setTimeout(tick, result.every);
    };
    pollTimer = setTimeout(tick, result.every);
  }
}

document.getElementById("token-button").addEventListener("click", askToken);
document.getElementById("token-cancel").addEventListener("click", () => document.getElementById("token-dialog").close());
document.getElementById("token-form").addEventListener("submit", () => {
  const v = document.getElementById("token-input").value.trim();
  if (v) localStorage.setItem(TOKEN_KEY, v);
  else localStorage.removeItem(TOKEN_KEY);
  setTimeout(route, 0);
});
window.addEventListener("hashchange", () => { notice(""); route(); });
route();
