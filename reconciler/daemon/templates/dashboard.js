"use strict";
// The status page's refresh, sort and filter. The server renders the first view (dashboard.html);
// this re-draws the same parts every few seconds from the same view as JSON (`?view=json`,
// dashboard.py's `view`: the problems, labels and counts are worked out there, never here).
// Text only (textContent), never HTML from data. The colours come in #dashboard-config.
(function () {
  const config = JSON.parse(document.getElementById("dashboard-config").textContent);
  const $ = (id) => document.getElementById(id);
  let sortKey = "name";
  let sortDir = 1;
  let lastText = null;

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== null && v !== undefined && v !== false) el.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c !== null && c !== undefined && c !== "") el.append(c instanceof Node ? c : String(c));
    }
    return el;
  }
  const tone = (kind, value) => config.tones[kind][value] || "plain";
  const badge = (kind, value, text) => h("span", { class: "badge " + tone(kind, value) }, text || value);

  function relative(iso, now) {
    const when = Date.parse(iso);
    if (Number.isNaN(when)) return "";
    const seconds = (when - now) / 1000;
    const span = Math.abs(seconds);
    if (span < 1) return "just now";
    let text;
    if (span < 120) text = Math.round(span) + " s";
    else if (span < 7200) text = Math.round(span / 60) + " min";
    else if (span < 172800) text = Math.round(span / 3600) + " h";
    else text = Math.round(span / 86400) + " d";
    return seconds > 0 ? "in " + text : text + " ago";
  }
  const when = (iso) =>
    iso ? h("time", { class: "age", datetime: iso, title: iso }, relative(iso, Date.now()))
      : h("span", { class: "muted" }, "never");
  const named = (c) => c.title || `${c.action} ${c.kind} ${c.name}`;

  function renderHeader(view) {
    const status = view.status;
    const last = status.last_reconcile;
    $("role").replaceChildren(status.role || "leader");
    $("ready").replaceChildren(badge("result", status.ready ? "success" : "failure",
      status.ready ? "ready" : "not ready"));
    $("revision").replaceChildren(h("code", {}, (status.revision || "-").slice(0, 12)));
    const busy = status.in_flight;
    $("last").replaceChildren(...(last
      ? [badge("result", last.result), ` ${last.trigger}, `, when(last.time)]
      : [h("span", { class: "muted" }, "none yet")]),
    ...(busy ? ["; ", h("span", { class: "badge info" }, "reconciling now"), ` ${busy.trigger}`]
      : []));
    $("next").replaceChildren(when(status.next_resync),
      ...(status.next_retry ? [" (retry ", when(status.next_retry), ")"] : []));
    const suspended = view.suspended === undefined ? null : view.suspended;
    $("suspended-term").hidden = $("suspended").hidden = suspended === null;
    $("suspended").replaceChildren(String(suspended || 0));
    const windows = status.sync_windows;
    $("mode").replaceChildren(status.dry_run ? "dry run (observing)"
      : windows && !windows.may_apply_now ? "not applying: " + windows.reason : "applying");
    $("windows-term").hidden = $("windows").hidden = !windows;
    $("windows").replaceChildren((windows ? windows.windows : []).map((w) =>
      `${w.kind} ${w.schedule} ${w.duration} ${w.timeZone}${w.active ? " (open)" : ""}`
    ).join("; "));
  }

  function renderProblems(view) {
    const status = view.status;
    const list = view.problems.map((p) => [p.where, p.what]);
    $("problems").hidden = list.length === 0;
    // A tab in the background still says something is wrong.
    const count = list.length ? `(${list.length} problem${list.length === 1 ? "" : "s"}) ` : "";
    document.title = `${count}border0-reconciler · ${status.instance}`;
    $("problem-list").replaceChildren(...list.map(([where, what]) =>
      h("li", {}, where ? [h("code", {}, where), ": "] : "", what)));
  }

  function socketRow(s) {
    const label = s.state_label;
    const conn = s.connector_label;
    const restarts = s.connector_restarts || 0;
    const ports = s.ports || [];
    const policies = s.policies || [];
    const td = (sort, ...children) => h("td", { "data-sort": sort }, ...children);
    return h("tr", { "data-state": s.state_key, class: s.failing ? "failing" : null },
      td(s.name, h("strong", {}, s.name),
        s.description ? h("div", { class: "muted" }, s.description) : ""),
      td(s.type || "", s.type || "-"),
      td(s.dns_name || "", s.dns_name || "-"),
      td(ports.length ? String(ports[0]) : "", ports.join(", ") || "-"),
      td(label, badge("state", label)),
      td(conn, badge("connector", conn),
        restarts ? [" ", h("span", { class: "restarts" },
          `${restarts} restart${restarts === 1 ? "" : "s"}`)] : "",
        s.connector_error ? h("div", { class: "error-text" }, s.connector_error) : ""),
      td(policies.join(" "), policies.join(", ") || "-"));
  }

  function applySortAndFilter() {
    const body = $("socket-rows");
    const headers = [...document.querySelectorAll("#sockets thead th")];
    const column = headers.findIndex((th) => th.dataset.key === sortKey);
    headers.forEach((th, i) => {
      if (i === column) th.setAttribute("aria-sort", sortDir > 0 ? "ascending" : "descending");
      else th.removeAttribute("aria-sort");
    });
    const rows = [...body.rows];
    const key = (row) => row.cells[column].dataset.sort || "";
    rows.sort((a, b) => sortDir * key(a).localeCompare(key(b), undefined, { numeric: true }));
    body.append(...rows);
    const text = $("filter-text").value.trim().toLowerCase();
    const state = $("filter-state").value;
    let shown = 0;
    for (const row of rows) {
      const match = (!state || row.dataset.state === state)
        && (!text || row.textContent.toLowerCase().includes(text));
      row.hidden = !match;
      if (match) shown += 1;
    }
    $("no-match").hidden = shown > 0;
    $("no-match").textContent = rows.length ? "No socket matches the filter." : "No sockets yet.";
  }

  function renderSockets(view) {
    const page = view.page;
    $("socket-count").textContent = String(page.total);
    $("socket-rows").replaceChildren(...view.sockets.map(socketRow));
    const pager = $("pager");
    pager.hidden = page.previous === null && page.next === null;
    const link = (offset, text) => offset === null ? "" : h("a", { href: `?offset=${offset}` }, text);
    pager.replaceChildren(`Sockets ${page.total ? page.offset + 1 : 0}–${page.offset + page.shown}`
      + ` of ${page.total} `, link(page.previous, "previous"), " ", link(page.next, "next"));
    applySortAndFilter();
  }

  function historyItem(e) {
    const changes = e.changes || [];
    const drift = e.drift_corrected || [];
    const count = changes.length + (e.changes_omitted || 0);
    const list = (items, render) => items.length
      ? h("ul", {}, items.map((c) => h("li", {}, render(c))))
      : h("p", { class: "muted" }, "None.");
    const change = (c) => [named(c),
      c.ok === false ? [" — ", h("span", { class: "error-text" },
        "failed" + (c.message ? ": " + c.message : ""))]
        : c.ok === null ? [" ", h("span", { class: "muted" }, "(not applied)")] : ""];
    const changeList = list(changes, change);
    if (e.changes_omitted && changes.length) {
      changeList.append(h("li", { class: "muted" }, `and ${e.changes_omitted} more`));
    }
    const access = e.access_changes || [];
    return h("li", { class: e.result !== "success" ? "failed" : null },
      h("details", { "data-key": e.time },
        h("summary", {}, when(e.time), " ", badge("result", e.result),
          ` ${e.trigger} · ${e.duration_seconds} s · ${count} change(s) · `
          + `${drift.length} drift corrected`,
          e.revision ? [" · ", h("code", {}, e.revision.slice(0, 12))] : ""),
        h("div", { class: "detail" },
          h("p", { class: "muted" }, `${e.time}, stage ${e.stage}`),
          e.error ? h("p", { class: "error-text" }, e.error) : "",
          h("h3", {}, "Changes"), changeList,
          h("h3", {}, "Drift corrected"), list(drift, named),
          access.length ? [h("h3", {}, "Access changes"), list(access, accessText)] : "")));
  }
  const accessText = (a) =>
    `${a.change}: ${a.principal_type} ${a.principal} — ${a.action} on ${a.socket}`;

  function renderHistory(view) {
    const open = new Set([...document.querySelectorAll("#history details[open]")]
      .map((d) => d.dataset.key));
    const entries = view.history;
    $("history").replaceChildren(...(entries.length ? entries.map(historyItem)
      : [h("li", { class: "muted" }, "No reconcile yet.")]));
    for (const d of document.querySelectorAll("#history details")) {
      if (open.has(d.dataset.key)) d.open = true;
    }
  }

  function renderAccess(view) {
    const applied = view.last_applied;
    const access = applied ? applied.access_changes || [] : [];
    let content;
    if (!applied) content = [h("p", { class: "muted" }, "No plan applied in the reconciles shown.")];
    else if (!access.length) {
      content = [h("p", { class: "muted" }, "None recorded for the plan applied ", when(applied.time),
        ".")];
    } else {
      const th = (t) => h("th", { scope: "col" }, t);
      content = [h("p", {}, "Applied ", when(applied.time), ":"), h("table", {},
        h("caption", { class: "visually-hidden" }, "Who gained or lost access"),
        h("thead", {}, h("tr", {}, ["Change", "Who", "Action", "Socket", "Policies"].map(th))),
        h("tbody", {}, access.map((a) => h("tr", {}, h("td", {}, a.change),
          h("td", {}, `${a.principal_type} ${a.principal}`), h("td", {}, a.action),
          h("td", {}, a.socket),
          h("td", {}, (a.policies || []).map((p) => p.name || p).join(", ")))))) ];
    }
    $("access").replaceChildren(...content);
  }

  function render(view) {
    renderHeader(view);
    renderProblems(view);
    renderSockets(view);
    renderHistory(view);
    renderAccess(view);
  }

  function updateAges() {
    const now = Date.now();
    for (const t of document.querySelectorAll("time.age")) {
      t.textContent = relative(t.getAttribute("datetime"), now);
    }
  }

  async function refresh() {
    const updated = $("updated");
    try {
      const query = new URLSearchParams(location.search);
      query.set("view", "json");
      const response = await fetch("?" + query, { cache: "no-store", headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(`the page's data answered ${response.status}`);
      const text = await response.text();
      const view = JSON.parse(text);
      const status = view.status;
      // Unchanged: leave the DOM alone (a selection or a focused control survives).
      if (text !== lastText) render(view);
      lastText = text;
      updateAges();
      const now = new Date().toISOString();
      updated.className = "";
      updated.replaceChildren("Updated ", h("time", { datetime: now }, now), `; ${status.path};`
        + ` version ${status.version}; every ${config.refresh} s`);
    } catch (err) {
      updated.className = "stale";
      updated.textContent = `Not updated: ${err.message}. Retrying every ${config.refresh} s.`;
    }
    setTimeout(refresh, config.refresh * 1000);
  }

  for (const th of document.querySelectorAll("#sockets thead th")) {
    th.querySelector("button").addEventListener("click", () => {
      sortDir = sortKey === th.dataset.key ? -sortDir : 1;
      sortKey = th.dataset.key;
      applySortAndFilter();
    });
  }
  $("filters").hidden = false;
  $("filters").addEventListener("submit", (event) => event.preventDefault());
  $("filter-text").addEventListener("input", applySortAndFilter);
  $("filter-state").addEventListener("change", applySortAndFilter);
  applySortAndFilter();
  refresh();
})();
